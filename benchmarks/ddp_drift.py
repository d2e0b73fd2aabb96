"""How far does a two-process run drift from a one-process run, as the steps add up?

Chapter 5 trains LeNet-5 on 9,984 CIFAR-10 images (78 global batches of 128) for 2 epochs, once
in one process and once data-parallel in two (scripts/train_distributed.py, float32, SGD with
momentum), and finds the final weights apart by about 2e-2, far above float32 rounding, although
every step sees the same images. The explanation offered there: the two runs round differently
(another summation order in the gradient average, kernels that run on half the batch, and other
thread counts: torchrun gives each worker one thread unless OMP_NUM_THREADS is set), and
training sometimes amplifies these rounding differences.

This script tests whether the difference starts at rounding level. It runs the same pair of
trainings on the first 128 * B images of a fixed random subset for 1 and 2 epochs, for each B
of ``--batches``, and prints the largest weight difference after each, also in units in the last
place (ulps) of the one-process weight where it occurs. A systematic difference (other data,
another initialisation, another shuffle) would show far above 1 ulp from the first step on.
Each row is a separate pair of runs, not a point of one trajectory. As a control, the longest
configuration is also run twice with one process and twice with two: a difference there would
mean a configuration is not reproducible on its own.
Usage: LAB_DATA=../shared/data .venv/bin/python benchmarks/ddp_drift.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a clone without pip
from labutils.distributed import launch_command  # noqa: E402

SCRIPT = REPO / "scripts" / "train_distributed.py"
BATCH = 128


def train(nproc: int, subset: int, epochs: int, out: Path) -> dict[str, torch.Tensor]:
    """Train LeNet-5 as the chapter does; return rank 0's final weights."""
    args = ["--dataset", "cifar10", "--model", "lenet5", "--epochs", str(epochs), "--subset",
            str(subset), "--amp", "off", "--lr", "0.02", "--batch-size", str(BATCH),
            "--out", str(out), "--save-rank-weights"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    done = subprocess.run(launch_command(nproc, SCRIPT, *args), capture_output=True, text=True,
                          env=env)
    if done.returncode:
        raise SystemExit(f"{nproc} process(es) failed:\n{done.stderr[-2000:]}")
    return load_file(str(out / "rank0.safetensors"))


def ulps_apart(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest |a - b| in units of the float32 spacing at |a|."""
    spacing = torch.nextafter(a.abs(), torch.tensor(float("inf"))) - a.abs()
    return ((a - b).abs() / spacing).max().item()


def difference(one: dict, two: dict) -> tuple[float, float]:
    diff = max((one[k] - two[k]).abs().max().item() for k in one)
    return diff, max(ulps_apart(one[k], two[k]) for k in one)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 10, 78],
                        help="global batches of 128 per epoch (78: the chapter's 9,984 images)")
    args = parser.parse_args()
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; one-process run: "
          f"{torch.get_num_threads()} threads")
    print(f"{'steps':>6} {'images':>7} {'epochs':>6}  largest |w1 - w2|  ulps apart (max)")
    with tempfile.TemporaryDirectory() as tmp:
        for batches in args.batches:
            for epochs in (1, 2):
                subset = batches * BATCH
                one = train(1, subset, epochs, Path(tmp) / f"one-{subset}-{epochs}")
                two = train(2, subset, epochs, Path(tmp) / f"two-{subset}-{epochs}")
                diff, ulps = difference(one, two)
                print(f"{batches * epochs:>6} {subset:>7,} {epochs:>6}  {diff:>17.2e}  "
                      f"{ulps:>16.3g}", flush=True)
        subset = max(args.batches) * BATCH
        for nproc in (1, 2):
            a, b = (train(nproc, subset, 2, Path(tmp) / f"control-{nproc}-{i}") for i in (0, 1))
            diff, ulps = difference(a, b)
            print(f"control, {nproc} process(es) twice, {subset:,} images, 2 epochs: largest "
                  f"difference {diff:.2e} ({ulps:.3g} ulps)", flush=True)


if __name__ == "__main__":
    main()
