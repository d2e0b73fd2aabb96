"""Does bf16 autocast cost accuracy? ResNet-20 on a CIFAR-10 subset, fp32 vs bf16, 5 seeds each.

Same recipe, data and seeds for both; prints the test accuracy of every run, mean and spread
per precision, whether the bf16 mean lies within the fp32 seed range, and Welch's 95% interval
for the difference. Usage: LAB_DATA=../shared/data .venv/bin/python benchmarks/bf16_accuracy.py
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from labutils.augment import BatchAugment
from labutils.data import CIFAR10_MEAN, CIFAR10_STD, TensorLoader, load_tensors
from labutils.device import pick_device, seed_everything
from labutils.metrics import accuracy
from labutils.models import resnet20
from labutils.stats import compare, spread
from labutils.train import fit


def run(seed: int, amp: bool, args, device, data) -> tuple[float, float]:
    """Train ResNet-20 once; return (test accuracy, training seconds)."""
    (x, y), (xt, yt) = data
    seed_everything(seed)
    model = resnet20().to(device)
    train = TensorLoader(x, y, batch_size=128, shuffle=True, mean=CIFAR10_MEAN, std=CIFAR10_STD,
                         augment=BatchAugment(pad=4), device=device)
    test = TensorLoader(xt, yt, batch_size=1000, mean=CIFAR10_MEAN, std=CIFAR10_STD,
                        device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=args.epochs,
                                                steps_per_epoch=len(train))
    start = time.perf_counter()
    h = fit(model, train, test, nn.CrossEntropyLoss(), opt, epochs=args.epochs, device=device,
            metrics={"acc": accuracy}, scheduler=sched, step_scheduler_every_batch=True,
            amp=amp, channels_last=True, progress=False, verbose=False)
    return h.val_metrics["acc"][-1], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=8_000, help="training images")
    parser.add_argument("--test", type=int, default=5000, help="test images")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    device = pick_device()
    x, y = load_tensors("cifar10", "train")
    xt, yt = load_tensors("cifar10", "test")
    # The JPEG copy lists images class by class: draw the subsets at random (fixed seed).
    pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:args.train]
    pick_t = torch.randperm(len(xt), generator=torch.Generator().manual_seed(1))[:args.test]
    data = ((x[pick], y[pick]), (xt[pick_t], yt[pick_t]))
    print(f"ResNet-20, {args.train} CIFAR-10 training images, {args.epochs} epochs, "
          f"test on {args.test}; seeds {args.seeds}")
    results = {}
    for label, amp in (("fp32", False), ("bf16", True)):
        accs, secs = [], []
        for seed in args.seeds:
            acc, sec = run(seed, amp, args, device, data)
            accs.append(acc), secs.append(sec)
            print(f"  {label} seed {seed}: test acc {acc:.4f}  ({sec:.0f} s)", flush=True)
        results[label] = spread(accs)
        print(f"{label}: {results[label].format(100, 2, '%')}, mean training time "
              f"{sum(secs) / len(secs):.0f} s")
    fp32, bf16 = results["fp32"], results["bf16"]
    inside = fp32.low <= bf16.mean <= fp32.high
    c = compare(bf16, fp32)
    print(f"bf16 mean {bf16.mean:.4f} within the fp32 seed range "
          f"[{fp32.low:.4f}, {fp32.high:.4f}]: {inside}")
    print(f"bf16 - fp32 = {c.difference * 100:+.2f} points, 95% CI "
          f"[{c.low * 100:+.2f}, {c.high * 100:+.2f}]: {c.verdict('bf16', 'fp32')}")


if __name__ == "__main__":
    main()
