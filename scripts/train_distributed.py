"""Train a chapter model with labutils' ``fit``, on one process or data-parallel with torchrun.

One process:        python scripts/train_distributed.py --dataset mnist --model lenet5
Two processes:      torchrun --standalone --nproc_per_node=2 scripts/train_distributed.py ...
Several GPUs:       torchrun --standalone --nproc_per_node=4 scripts/train_distributed.py ...
(``labutils.distributed.launch_command`` builds these command lines. With fewer GPUs than
processes, e.g. two on a one-GPU Colab, the processes use gloo on the CPU; ``--backend`` forces
one.)
(On one machine, if the rendezvous cannot resolve the host name, add
``--rdzv-backend=c10d --rdzv-endpoint=127.0.0.1:29500`` instead of ``--standalone``.)

``--batch-size`` is the global batch: each of N processes takes batch/N samples of it, so the
run computes what one process with the whole batch would. Rank 0 prints, saves the checkpoint
and writes ``history.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a clone without pip

from labutils import distributed  # noqa: E402
from labutils.data import (CIFAR10_MEAN, CIFAR10_STD, FASHION_MNIST_MEAN,  # noqa: E402
                           FASHION_MNIST_STD, MNIST_MEAN, MNIST_STD, TensorLoader, load_tensors)
from labutils.device import pick_device, seed_everything  # noqa: E402
from labutils.metrics import accuracy  # noqa: E402
from labutils.train import fit  # noqa: E402

STATS = {"mnist": (MNIST_MEAN, MNIST_STD), "fashion-mnist": (FASHION_MNIST_MEAN, FASHION_MNIST_STD),
         "cifar10": (CIFAR10_MEAN, CIFAR10_STD)}


def build_model(name: str, in_channels: int, size: int = 28) -> nn.Module:
    from labutils import models

    if name == "lenet5":
        return models.LeNet5(in_channels=in_channels, input_size=size)
    if name == "threeblock":
        return models.ThreeBlockCNN(in_channels=in_channels)
    if name == "resnet20":
        return models.resnet20()
    raise ValueError(f"unknown model {name!r}")


class _DieAt:
    """Test hook: this process exits abruptly at a given step (a crashed worker)."""

    def __init__(self, loader, step: int):
        self.loader, self.step = loader, step

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i == self.step:
                print(f"rank {distributed.rank()}: dying on purpose at step {i}", flush=True)
                os._exit(3)
            yield batch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=sorted(STATS), default="mnist")
    p.add_argument("--model", choices=["lenet5", "threeblock", "resnet20"], default="lenet5")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128, help="global batch over all processes")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--subset", type=int, default=0,
                   help="a fixed random N training and N test images (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--amp", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--backend", choices=["auto", "gloo", "nccl"], default="auto",
                   help="under torchrun; auto: nccl with a GPU per process, else gloo")
    p.add_argument("--out", type=Path, default=None, help="folder for history.json and weights")
    p.add_argument("--save-rank-weights", action="store_true", help="every rank saves its weights")
    p.add_argument("--die-rank", type=int, default=-1, help=argparse.SUPPRESS)
    p.add_argument("--die-at-step", type=int, default=-1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if "RANK" in os.environ:
        info = distributed.init_distributed(
            backend=None if args.backend == "auto" else args.backend)
        device = info.device
    else:
        device = pick_device(verbose=False)
    world, rank = distributed.world_size(), distributed.rank()
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {args.batch_size} must be divisible by the {world} processes")
    seed_everything(args.seed)  # the same seed on every rank: same initial weights and order
    images, labels = load_tensors(args.dataset, "train")
    test_images, test_labels = load_tensors(args.dataset, "test")
    if args.subset:  # a fixed random subset: the CIFAR-10 JPEG copy is sorted by class
        pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
        pick_t = torch.randperm(len(test_images), generator=torch.Generator().manual_seed(1))
        images, labels = images[pick[:args.subset]], labels[pick[:args.subset]]
        test_images = test_images[pick_t[:args.subset]]
        test_labels = test_labels[pick_t[:args.subset]]
    mean, std = STATS[args.dataset]
    model = build_model(args.model, images.shape[1], images.shape[-1]).to(device)
    train_loader = TensorLoader(images, labels, batch_size=args.batch_size // world, shuffle=True,
                                device=device, mean=mean, std=std)
    test_loader = TensorLoader(test_images, test_labels, batch_size=1000, device=device,
                               mean=mean, std=std)
    if rank == args.die_rank:
        train_loader = _DieAt(train_loader, args.die_at_step)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    amp = {"auto": None, "on": True, "off": False}[args.amp]
    if distributed.is_main_process():
        print(f"{world} process(es) on {device}, global batch {args.batch_size}, "
              f"{len(images)} training images", flush=True)
    history = fit(model, train_loader, test_loader, nn.CrossEntropyLoss(), optimizer,
                  epochs=args.epochs, device=device, metrics={"acc": accuracy}, amp=amp,
                  progress=False)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        if args.save_rank_weights:
            from safetensors.torch import save_file

            state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            save_file(state, str(args.out / f"rank{rank}.safetensors"))
        if distributed.is_main_process():
            (args.out / "history.json").write_text(json.dumps(history.to_dict(), indent=1))
    distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
