"""How far does a two-process run drift from a one-process run, as the steps add up?

Chapter 5 trains LeNet-5 on 9,984 CIFAR-10 images (78 global batches of 128) for 2 epochs, once
in one process and once data-parallel in two (scripts/train_distributed.py, float32, SGD with
momentum), and finds the final weights apart by about 2e-2, far above float32 rounding, although
every step sees the same images. The chapter's explanation, which its run does not isolate:
the two runs sum the same gradient in a different order (each process averages its half of the
batch, then the halves are averaged), and training amplifies these rounding differences.

This script tests that explanation. It runs the same pair of trainings for an increasing number
of steps (whole global batches only, one epoch each, then the chapter's 2 epochs) and prints the
largest weight difference after each. Rounding amplified by training predicts a difference near
float32 rounding after one step that can grow with the steps; a systematic difference (other
data, another initialisation) would show as a large difference from the first step on. Each row
trains on its own first N images of the fixed random subset, so the rows are separate runs, not
points of one trajectory.
Usage: LAB_DATA=../shared/data .venv/bin/python benchmarks/ddp_drift.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "train_distributed.py"
BATCH = 128


def train(nproc: int, subset: int, epochs: int, out: Path) -> dict[str, torch.Tensor]:
    """Train LeNet-5 as the chapter does; return rank 0's final weights."""
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc_per_node={nproc}"] if nproc > 1 else [sys.executable])
    args = ["--dataset", "cifar10", "--model", "lenet5", "--epochs", str(epochs), "--subset",
            str(subset), "--amp", "off", "--lr", "0.02", "--batch-size", str(BATCH),
            "--out", str(out), "--save-rank-weights"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    done = subprocess.run(launcher + [str(SCRIPT)] + args, capture_output=True, text=True,
                          env=env)
    if done.returncode:
        raise SystemExit(f"{nproc} process(es) failed:\n{done.stderr[-2000:]}")
    json.loads((out / "history.json").read_text())  # the run finished and wrote its history
    return load_file(str(out / "rank0.safetensors"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 10, 78],
                        help="global batches of 128 per epoch (78: the chapter's 9,984 images)")
    args = parser.parse_args()
    plan = [(b, 1) for b in args.batches] + [(max(args.batches), 2)]
    print(f"{'steps':>6} {'images':>7} {'epochs':>6}  largest |w1 - w2|  relative to max |w1|")
    with tempfile.TemporaryDirectory() as tmp:
        for batches, epochs in plan:
            subset = batches * BATCH
            one = train(1, subset, epochs, Path(tmp) / f"one-{subset}-{epochs}")
            two = train(2, subset, epochs, Path(tmp) / f"two-{subset}-{epochs}")
            diff = max((one[k] - two[k]).abs().max().item() for k in one)
            scale = max(one[k].abs().max().item() for k in one)
            print(f"{batches * epochs:>6} {subset:>7,} {epochs:>6}  {diff:>17.2e}  "
                  f"{diff / scale:>19.2e}", flush=True)
    print(f"float32 machine epsilon: {torch.finfo(torch.float32).eps:.2e}")


if __name__ == "__main__":
    main()
