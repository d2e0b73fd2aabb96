"""Overhead of labutils' training loop over a bare PyTorch loop, same model and data.

Prints the ratio of median epoch times measured in this run (goal: within 5%), in float32 and
with bf16 autocast + channels_last (where the CPU has native bf16, or on CUDA).
Usage: LAB_DATA=../shared/data .venv/bin/python benchmarks/loop_overhead.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from labutils.data import MNIST_MEAN, MNIST_STD, TensorLoader, load_tensors
from labutils.device import cpu_has_native_bf16, pick_device
from labutils.metrics import accuracy
from labutils.models import TinyCNN
from labutils.train import train_one_epoch


def bare_epoch(model, loader, loss_fn, optimizer, device, amp=False, channels_last=False):
    """The textbook loop: forward, loss, backward, step, and a running accuracy."""
    model.train()
    total_loss, correct, count = 0.0, 0, 0
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for x, y in loader:
        x, y = x.to(device, memory_format=fmt), y.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        loss = loss_fn(out.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(y)
        correct += (out.argmax(1) == y).sum().item()
        count += len(y)
    return total_loss / count, correct / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    device = pick_device()
    images, labels = load_tensors("mnist", "train")
    loader = TensorLoader(images[:args.images], labels[:args.images], batch_size=128,
                          shuffle=True, mean=MNIST_MEAN, std=MNIST_STD, device=device)
    loss_fn = nn.CrossEntropyLoss()
    configs = [("float32", False)]
    if device.type == "cuda" or cpu_has_native_bf16():
        configs.append(("bf16 + channels_last", True))
    print(f"epoch of {args.images} MNIST images, TinyCNN, {args.repeats} repeats (median)")
    for label, fast in configs:
        times = {"bare": [], "labutils": []}
        for r in range(args.repeats + 1):  # round 0 warms up and is discarded
            for name in ("bare", "labutils") if r % 2 else ("labutils", "bare"):
                torch.manual_seed(r)
                model = TinyCNN().to(device)
                if fast:
                    model.to(memory_format=torch.channels_last)
                opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                if name == "bare":
                    bare_epoch(model, loader, loss_fn, opt, device, amp=fast, channels_last=fast)
                else:
                    train_one_epoch(model, loader, loss_fn, opt, device, metrics={"acc": accuracy},
                                    amp=fast, channels_last=fast)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if r > 0:
                    times[name].append(time.perf_counter() - start)
        bare, ours = statistics.median(times["bare"]), statistics.median(times["labutils"])
        print(f"{label}:")
        print(f"  bare PyTorch loop : {bare:.3f} s")
        print(f"  labutils loop     : {ours:.3f} s")
        print(f"  ratio labutils/bare: {ours / bare:.3f} (goal <= 1.05)")

if __name__ == "__main__":
    main()
