"""Training throughput through ``fit``'s own code path: float32, channels_last, bf16, both.

For LeNet-5 (MNIST size), the 3-block CNN, ResNet-20 and an airbench-style net (CIFAR size),
prints images per second of a training step (forward, loss, backward, SGD step) on synthetic
input, and each configuration's speed-up over float32 measured in this same run. Run it on an
otherwise idle machine. Usage: .venv/bin/python benchmarks/cpu_speed.py [--seconds 6]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from labutils.device import cpu_has_native_bf16, describe_device, pick_device
from labutils.models import LeNet5, ThreeBlockCNN, resnet20
from labutils.train import fit


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.GELU())


def airbench_style(widths=(64, 256, 256)) -> nn.Module:
    """The network shape of airbench94 (Jordan, 2024): a 2x2 stem and three conv groups."""
    layers: list[nn.Module] = [nn.Conv2d(3, 24, 2), nn.GELU()]  # 32 -> 31 pixels
    c = 24
    for w in widths:  # 31 -> 15 -> 7 -> 3 pixels
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.MaxPool2d(2),
                   nn.BatchNorm2d(w), nn.GELU(), conv_bn(w, w)]
        c = w
    layers += [nn.MaxPool2d(3), nn.Flatten(), nn.Linear(c, 10, bias=False)]
    return nn.Sequential(*layers)


MODELS = {  # name: (builder, input shape, batch size)
    "LeNet-5": (lambda: LeNet5(), (1, 28, 28), 128),
    "3-block CNN": (lambda: ThreeBlockCNN(), (3, 32, 32), 128),
    "ResNet-20": (lambda: resnet20(), (3, 32, 32), 128),
    "airbench-style": (lambda: airbench_style(), (3, 32, 32), 512),
}
CONFIGS = {"fp32": (False, False), "channels_last": (False, True), "bf16": (True, False),
           "bf16+channels_last": (True, True)}


def throughput(name: str, amp: bool, channels_last: bool, device: torch.device,
               seconds: float) -> float:
    """Images per second of ``fit`` over synthetic batches, after one warm-up epoch."""
    build, shape, batch = MODELS[name]
    torch.manual_seed(0)
    model = build().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape)
    y = torch.randint(0, 10, (batch,))

    def epoch_of(steps: int) -> float:
        start = time.perf_counter()
        fit(model, [(x, y)] * steps, None, nn.CrossEntropyLoss(), opt, epochs=1, device=device,
            amp=amp, channels_last=channels_last, progress=False, verbose=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    warm = epoch_of(3) / 3  # also estimates the step time
    steps = max(3, int(seconds / max(warm, 1e-3)))
    return steps * batch / epoch_of(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="time per measurement")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    device = pick_device(verbose=False)
    print(f"device: {describe_device(device)}; native bf16: {cpu_has_native_bf16()}; "
          f"torch {torch.__version__}")
    header = f"{'model':<16}" + "".join(f"{c:>20}" for c in CONFIGS)
    print("images per second of a training step (speed-up over fp32 in brackets)")
    print(header)
    for name in args.models:
        rates = {c: throughput(name, *CONFIGS[c], device, args.seconds) for c in CONFIGS}
        cells = "".join(f"{rates[c]:>11,.0f} ({rates[c] / rates['fp32']:.2f}x)" for c in CONFIGS)
        print(f"{name:<16}{cells}", flush=True)


if __name__ == "__main__":
    main()
