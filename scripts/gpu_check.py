"""Run labutils' training paths on a CUDA GPU with real data and check what they compute.

CI has no GPU, so the CUDA code paths (autocast on CUDA, channels_last, data moved by
``TensorLoader``, generators on the CPU feeding GPU batches, NCCL) are exercised here, by hand,
on a machine that has one (a lent GPU machine, or Colab):

    LAB_DATA=/path/to/data python scripts/gpu_check.py [--cifar cifar_subset.pt]

MNIST and the ISBI slices are read from ``LAB_DATA`` as usual. CIFAR-10 can come from there
too, or, where the full copy cannot travel, from a stratified subset of the real images packed
on a machine that has them:

    LAB_DATA=../shared/data python scripts/gpu_check.py --pack-cifar cifar_subset.pt

Every check prints one line: PASS or FAIL, what it measured and its wall-clock seconds. The
exit status is the number of failed checks. ``--notebooks`` then executes every notebook in
quick mode (``LAB_QUICK=1``) twice, once as is and once with ``LAB_AMP_DTYPE=float16`` (the
float16 + GradScaler path that GPUs before compute capability 8.0, such as Colab's T4, take),
and writes the log to ``benchmarks/results/gpu_check_notebooks.txt``:

    LAB_DATA=/path/to/data python scripts/gpu_check.py --notebooks The accuracy floors are far below what each model
reaches (they catch a path that does not learn, not a small regression); the CPU/CUDA
comparisons run in float32 with TF32 switched off, so they compare the arithmetic, not the
precision modes.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a clone without pip

from labutils import data, denoise, explain, models, segmentation, speedrun, transfer  # noqa: E402
from labutils.augment import BatchAugment  # noqa: E402
from labutils.device import describe_device, pick_device, seed_everything  # noqa: E402
from labutils.distributed import choose_processes, launch_command  # noqa: E402
from labutils.metrics import accuracy  # noqa: E402
from labutils.train import AMP_DTYPE_ENV, amp_dtype, fit, resolve_amp  # noqa: E402

RESULTS: list[tuple[str, bool, str, float]] = []


def check(name):
    """Run the decorated function as one check; it returns (passed, what it measured)."""
    def wrap(fn):
        def run(*args, **kwargs):
            torch.cuda.synchronize()
            start = time.perf_counter()
            try:
                passed, what = fn(*args, **kwargs)
            except Exception as err:  # a crash is a failed check, with its traceback shown
                traceback.print_exc()
                passed, what = False, f"raised {type(err).__name__}: {err}"
            torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            RESULTS.append((name, passed, what, seconds))
            print(f"{'PASS' if passed else 'FAIL'}  {name:<22} {what}  ({seconds:.1f} s)",
                  flush=True)
        return run
    return wrap


class exact_float32:
    """No TF32 inside: CUDA matmuls and convolutions in true float32, like the CPU."""

    def __enter__(self):
        self.saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False

    def __exit__(self, *exc):
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.saved


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def cpu_copy(model: nn.Module) -> nn.Module:
    """A CPU copy of a (channels_last, CUDA) model, in the default memory format."""
    return copy.deepcopy(model).cpu().to(memory_format=torch.contiguous_format)


def loaders(x, y, x_test, y_test, device, mean, std, *, batch_size=256, augment=None, seed=0):
    train = data.TensorLoader(x, y, batch_size=batch_size, shuffle=True, device=device,
                              mean=mean, std=std, augment=augment, seed=seed)
    test = data.TensorLoader(x_test, y_test, batch_size=1000, device=device, mean=mean, std=std)
    return train, test


# ---------------------------------------------------------------------------------------------
# The checks


@check("device")
def check_device(device):
    ok = device.type == "cuda" and resolve_amp(device, None)
    return ok, f"{describe_device(device)}, torch {torch.__version__}, autocast " \
               f"{str(amp_dtype(device)).removeprefix('torch.')} by default"


@check("fit cpu == cuda")
def check_fit_matches_cpu(device, mnist):
    """The same LeNet-5, data order and steps on the CPU and on CUDA, float32: same numbers.

    Few steps: two float32 runs that sum in different orders drift apart chaotically as
    training goes on (after 64 SGD steps the weights differed by 2% on the H200), so only a
    short run can be compared tightly."""
    (x, y), _ = mnist
    x, y = x[:1024], y[:1024]
    seed_everything(0)
    net = models.LeNet5()
    results = []
    with exact_float32():
        for where in (torch.device("cpu"), device):
            model = copy.deepcopy(net).to(where)
            train = data.TensorLoader(x, y, batch_size=128, shuffle=True, device=where,
                                      mean=data.MNIST_MEAN, std=data.MNIST_STD, seed=1)
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            hist = fit(model, train, None, nn.CrossEntropyLoss(), opt, epochs=1, device=where,
                       amp=False, channels_last=(where.type == "cuda"), progress=False,
                       verbose=False)
            results.append((hist.train_loss,
                            torch.cat([w.detach().cpu().reshape(-1) for w in model.parameters()])))
    (loss_cpu, w_cpu), (loss_gpu, w_gpu) = results
    loss_gap = max(abs(a - b) / a for a, b in zip(loss_cpu, loss_gpu))
    w_gap = rel_diff(w_gpu, w_cpu)
    return loss_gap < 1e-4 and w_gap < 1e-3, \
        f"mean loss differs by {loss_gap:.1e} (relative), weights by {w_gap:.1e} " \
        f"(max relative to the largest weight) after 8 SGD steps"


@check("mnist fit (autocast)")
def check_mnist_fit(device, mnist):
    (x, y), (xt, yt) = mnist
    seed_everything(0)
    model = models.LeNet5().to(device)
    train, test = loaders(x, y, xt, yt, device, data.MNIST_MEAN, data.MNIST_STD, batch_size=128)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    with tempfile.TemporaryDirectory() as tmp:
        hist = fit(model, train, test, nn.CrossEntropyLoss(), opt, epochs=2, device=device,
                   metrics={"acc": accuracy}, checkpoint=Path(tmp) / "best",
                   progress=False, verbose=False)
        saved = any(Path(tmp).iterdir())
    acc = hist.val_metrics["acc"][-1]
    return acc > 0.97 and saved and hist.amp_dtype is not None and hist.channels_last, \
        f"LeNet-5, 2 epochs on {len(x):,}: test acc {acc:.4f}, {hist.amp_dtype}, channels_last " \
        f"{hist.channels_last}, checkpoint saved {saved}, {hist.seconds[-1]:.1f} s/epoch"


@check("float16 path")
def check_float16(device, mnist, cifar):
    """The T4's path on this GPU: float16 autocast with a GradScaler (LAB_AMP_DTYPE=float16),
    in fit and in the speed run."""
    (x, y), (xt, yt) = mnist
    seed_everything(0)
    model = models.LeNet5().to(device)
    train, test = loaders(x, y, xt, yt, device, data.MNIST_MEAN, data.MNIST_STD, batch_size=128)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    (cx, cy), (cxt, cyt) = cifar
    norm = [speedrun.normalise(t, data.CIFAR10_MEAN, data.CIFAR10_STD) for t in (cx, cxt)]
    saved = os.environ.get(AMP_DTYPE_ENV)
    os.environ[AMP_DTYPE_ENV] = "float16"
    try:
        hist = fit(model, train, test, nn.CrossEntropyLoss(), opt, epochs=2, device=device,
                   metrics={"acc": accuracy}, progress=False, verbose=False)
        result = speedrun.train_speedrun(speedrun.SpeedrunConfig(epochs=5, batch_size=500),
                                         (norm[0], cy), (norm[1], cyt), device=device, seed=0)
    finally:
        if saved is None:
            os.environ.pop(AMP_DTYPE_ENV)
        else:
            os.environ[AMP_DTYPE_ENV] = saved
    acc = hist.val_metrics["acc"][-1]
    ok = acc > 0.97 and result.test_acc > 0.4 and hist.amp_dtype == result.amp_dtype == "float16"
    return ok, f"LeNet-5 on MNIST, 2 epochs in {hist.amp_dtype}: test acc {acc:.4f}; speed run, " \
               f"5 epochs on {len(cx):,} CIFAR-10 images in {result.amp_dtype}: test acc " \
               f"{result.test_acc:.4f}"


@check("speedrun")
def check_speedrun(device, cifar):
    (x, y), (xt, yt) = cifar
    norm = [speedrun.normalise(t, data.CIFAR10_MEAN, data.CIFAR10_STD) for t in (x, xt)]
    cfg = speedrun.SpeedrunConfig(epochs=10, batch_size=500)
    result = speedrun.train_speedrun(cfg, (norm[0], y), (norm[1], yt), device=device, seed=0)
    ok = result.test_acc > 0.5 and result.test_acc >= result.test_acc_plain - 0.02
    return ok, f"SpeedrunNet, 10 epochs on {len(x):,} images: test acc {result.test_acc:.4f} " \
               f"with TTA, {result.test_acc_plain:.4f} without, {result.train_seconds:.1f} s " \
               f"of training"


@check("resnet20 + grad-cam")
def check_resnet_gradcam(device, cifar):
    (x, y), (xt, yt) = cifar
    seed_everything(0)
    model = models.resnet20().to(device)
    train, test = loaders(x, y, xt, yt, device, data.CIFAR10_MEAN, data.CIFAR10_STD,
                          augment=BatchAugment(seed=0))
    epochs = 15
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=epochs * len(train))
    hist = fit(model, train, test, nn.CrossEntropyLoss(), opt, epochs=epochs, device=device,
               metrics={"acc": accuracy}, scheduler=sched, step_scheduler_every_batch=True,
               progress=False, verbose=False)
    acc = hist.val_metrics["acc"][-1]
    # Grad-CAM of the trained network on CUDA and on a CPU copy: the same maps.
    model.eval()
    batch = speedrun.normalise(xt[:32], data.CIFAR10_MEAN, data.CIFAR10_STD)
    cpu_model = cpu_copy(model)
    with exact_float32():
        cam_gpu = explain.grad_cam(model, model.blocks[-1], batch.to(device), size=(32, 32))
        cam_cpu = explain.grad_cam(cpu_model, cpu_model.blocks[-1], batch, size=(32, 32))
    gap = rel_diff(cam_gpu, cam_cpu)
    return acc > 0.45 and gap < 1e-3, \
        f"ResNet-20, {epochs} epochs on {len(x):,} images: test acc {acc:.4f}, " \
        f"{hist.seconds[-1]:.2f} s/epoch; Grad-CAM CUDA vs CPU max relative gap {gap:.1e}"


@check("transfer (frozen body)")
def check_transfer(device, cifar):
    import torchvision

    (x, y), (xt, yt) = cifar
    try:
        transfer.pretrained("resnet18")
        weights = "ImageNet weights found in the hub cache"
    except transfer.WeightsMissingError as err:
        if "checkpoints" not in str(err):
            return False, f"WeightsMissingError without the folder to copy the file to: {err}"
        weights = "offline: WeightsMissingError names the checkpoints folder"
    seed_everything(0)
    model = torchvision.models.resnet18(weights=None)
    head = transfer.replace_head(model, 10)
    model = model.to(device)
    n_trainable = transfer.set_trainable(model, [head, model.layer4])
    frozen_before = model.layer1[0].conv1.weight.detach().clone()
    head_before = head.weight.detach().clone()
    groups = transfer.param_groups(model, head, body_lr=0.01, head_lr=0.1)
    opt = torch.optim.SGD(groups, momentum=0.9)
    train, test = loaders(x, y, xt, yt, device, data.CIFAR10_MEAN, data.CIFAR10_STD)
    fit(model, train, test, nn.CrossEntropyLoss(), opt, epochs=1, device=device,
        metrics={"acc": accuracy}, progress=False, verbose=False)
    frozen_same = torch.equal(model.layer1[0].conv1.weight.detach(), frozen_before)
    head_moved = not torch.equal(head.weight.detach(), head_before)
    return frozen_same and head_moved, \
        f"{n_trainable:,} trainable parameters in 2 groups; frozen conv unchanged " \
        f"{frozen_same}, head updated {head_moved}; {weights}"


@check("dncnn denoising")
def check_denoise(device, mnist):
    (x, _), (xt, _) = mnist
    seed_everything(0)
    model = denoise.DnCNN(channels=1, depth=8, width=32).to(device)
    train = denoise.NoisyBatches(x[:20000], 0.2, 128, seed=0, device=device)
    test = denoise.NoisyBatches(xt[:1000], 0.2, 1000, seed=1, fixed=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    fit(model, train, None, nn.MSELoss(), opt, epochs=2, device=device, progress=False,
        verbose=False)
    noisy, clean = next(iter(test))
    out = denoise.denoise_all(model, noisy)
    gain = float(denoise.psnr(clean, out).mean() - denoise.psnr(clean, noisy).mean())
    cpu_model = cpu_copy(model)
    with exact_float32():
        gap = rel_diff(denoise.denoise_all(model, noisy[:100]),
                       denoise.denoise_all(cpu_model, noisy[:100]))
    return gain > 5 and gap < 1e-3, \
        f"DnCNN-8 at sigma 0.2 on MNIST: PSNR gain {gain:.2f} dB over the noisy input; " \
        f"CUDA vs CPU output max relative gap {gap:.1e}"


@check("u-net (isbi)")
def check_unet(device):
    train_set = data.isbi_membranes("train")
    images, masks = train_set.images, train_set.masks
    seed_everything(0)
    model = segmentation.UNet(base=16, depth=4).to(device)
    tiles = segmentation.RandomTiles(images[:25], masks[:25], tile=256, batch_size=8, steps=50,
                                     augment=segmentation.joint_augment(), context=0, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    hist = fit(model, tiles, None, segmentation.border_weighted_loss(), opt, epochs=3,
               device=device, progress=False, verbose=False)
    model.eval()
    held_out = images[25:].to(device)
    with torch.no_grad():
        tiled = segmentation.predict_tiled(model, held_out, tile=256, margin=64)
    probs = torch.sigmoid(tiled).cpu()
    scores = segmentation.binary_scores(probs > 0.5, masks[25:] > 0.5)
    err = np.mean([segmentation.rand_error(p < 0.5, m < 0.5)
                   for p, m in zip(probs[:, 0].numpy(), masks[25:, 0].numpy())])
    # overlap-tile on CUDA against a CPU copy of the network, float32
    cpu_model = cpu_copy(model)
    with exact_float32(), torch.no_grad():
        gap = rel_diff(segmentation.predict_tiled(model, held_out[:1], tile=256, margin=64),
                       segmentation.predict_tiled(cpu_model, images[25:26], tile=256, margin=64))
    acc = 1 - scores["pixel error"]
    return acc > 0.8 and gap < 1e-3, \
        f"U-Net, 150 steps of 8 tiles: held-out pixel accuracy {acc:.4f}, Rand error " \
        f"{err:.4f}, last epoch loss {hist.train_loss[-1]:.3f}; tiled CUDA vs CPU max " \
        f"relative gap {gap:.1e}"


@check("torchrun + nccl")
def check_ddp(device):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = launch_command(1, Path(__file__).with_name("train_distributed.py"), "--dataset",
                             "mnist", "--model", "lenet5", "--epochs", "1", "--out", tmp,
                             torchrun=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        made = sorted(p.name for p in Path(tmp).iterdir())
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
    ok = proc.returncode == 0 and "history.json" in made
    return ok, f"exit {proc.returncode}, wrote {made}; last lines: {' | '.join(tail)}"


@check("two processes (ch. 5)")
def check_two_processes(device):
    """Chapter 5's demonstration: the processes and backend that choose_processes picks here."""
    nproc, backend = choose_processes(2)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = launch_command(nproc, Path(__file__).with_name("train_distributed.py"),
                             "--dataset", "mnist", "--model", "lenet5", "--epochs", "1",
                             "--subset", "2048", "--amp", "off", "--backend", backend,
                             "--out", tmp)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        made = sorted(p.name for p in Path(tmp).iterdir())
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-2:]
    ok = proc.returncode == 0 and "history.json" in made
    return ok, f"{nproc} processes with {backend} ({torch.cuda.device_count()} GPU(s)): exit " \
               f"{proc.returncode}; last lines: {' | '.join(tail)}"


# ---------------------------------------------------------------------------------------------
# The notebooks


def run_notebooks(log_path: Path, timeout_s: int, pattern: str = "[0-9][0-9]_*.ipynb") -> int:
    """Execute every notebook in quick mode, as is and with float16 forced; write a log."""
    notebooks = sorted((REPO / "notebooks").glob(pattern))
    variants = {"as is": {}, "float16": {AMP_DTYPE_ENV: "float16"}}
    lines = [f"scripts/gpu_check.py --notebooks, {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"{describe_device(torch.device('cuda'))}, compute capability "
             f"{'.'.join(map(str, torch.cuda.get_device_capability()))}, torch "
             f"{torch.__version__}; autocast by default: "
             f"{str(amp_dtype(torch.device('cuda'))).removeprefix('torch.')}",
             "every notebook in quick mode (LAB_QUICK=1), in a fresh kernel, outputs discarded", ""]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for nb in notebooks:
            for variant, extra in variants.items():
                env = {k: v for k, v in os.environ.items() if k != AMP_DTYPE_ENV}
                env.update(LAB_QUICK="1", TQDM_DISABLE="1", MPLBACKEND="agg", **extra)
                cmd = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook",
                       "--execute", f"--ExecutePreprocessor.timeout={timeout_s}",
                       "--ExecutePreprocessor.kernel_name=python3", "--output-dir", tmp,
                       "--output", f"{nb.stem}-{variant.replace(' ', '_')}", str(nb)]
                start = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                seconds = time.perf_counter() - start
                errors = [ln for ln in proc.stderr.splitlines() if "Error" in ln][-1:]
                failed += proc.returncode != 0
                line = f"{'PASS' if proc.returncode == 0 else 'FAIL'}  {nb.name:<36} " \
                       f"{variant:<8} {seconds:7.1f} s" + (f"  {errors[0][:200]}" if errors else "")
                print(line, flush=True)
                lines.append(line)
    lines.append(f"\n{2 * len(notebooks) - failed} of {2 * len(notebooks)} runs passed")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("\n".join(lines) + "\n")
    print(f"log written to {log_path}")
    return failed


# ---------------------------------------------------------------------------------------------


def pack_cifar(path: Path, per_class_train: int = 500, per_class_test: int = 100) -> None:
    """Save a stratified subset of the real CIFAR-10 images (uint8) for machines without it."""
    out = {}
    for split, per_class in (("train", per_class_train), ("test", per_class_test)):
        x, y = data.load_tensors("cifar10", split)
        idx = torch.from_numpy(data.stratified_indices(y, per_class, np.random.default_rng(0)))
        out[split] = (x[idx].clone(), y[idx].clone())
    torch.save(out, path)
    print(f"saved {len(out['train'][0]):,} + {len(out['test'][0]):,} CIFAR-10 images to {path}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cifar", type=Path, help="a subset packed with --pack-cifar (default: the "
                   "full CIFAR-10 from LAB_DATA)")
    p.add_argument("--pack-cifar", type=Path, help="write a CIFAR-10 subset here and stop")
    p.add_argument("--notebooks", action="store_true", help="after the checks, execute every "
                   "notebook in quick mode, as is and with LAB_AMP_DTYPE=float16")
    p.add_argument("--notebooks-only", action="store_true", help="only the notebooks")
    p.add_argument("--log", type=Path, default=REPO / "benchmarks" / "results" /
                   "gpu_check_notebooks.txt", help="where --notebooks writes its log")
    p.add_argument("--notebook-timeout", type=int, default=1800, help="seconds per cell")
    p.add_argument("--notebook-glob", default="[0-9][0-9]_*.ipynb", help="which notebooks")
    args = p.parse_args()
    if args.pack_cifar:
        pack_cifar(args.pack_cifar)
        return 0
    if not torch.cuda.is_available():
        print("no CUDA device here: this script checks the GPU paths; run it where one is")
        return 1
    device = pick_device("cuda")
    if args.notebooks_only:
        return run_notebooks(args.log, args.notebook_timeout, args.notebook_glob)
    mnist = data.load_tensors("mnist", "train"), data.load_tensors("mnist", "test")
    if args.cifar:
        stored = torch.load(args.cifar, weights_only=True)
        cifar = stored["train"], stored["test"]
    else:
        cifar = data.load_tensors("cifar10", "train"), data.load_tensors("cifar10", "test")
    print(f"data from {data.data_root()}: MNIST {len(mnist[0][0]):,} + {len(mnist[1][0]):,}, "
          f"CIFAR-10 {len(cifar[0][0]):,} + {len(cifar[1][0]):,}")
    check_device(device)
    check_fit_matches_cpu(device, mnist)
    check_mnist_fit(device, mnist)
    check_float16(device, mnist, cifar)
    check_speedrun(device, cifar)
    check_resnet_gradcam(device, cifar)
    check_transfer(device, cifar)
    check_denoise(device, mnist)
    check_unet(device)
    check_ddp(device)
    check_two_processes(device)
    failed = [name for name, ok, _, _ in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)} of {len(RESULTS)} checks passed"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    if args.notebooks:
        return len(failed) + run_notebooks(args.log, args.notebook_timeout, args.notebook_glob)
    return len(failed)


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    sys.exit(main())
