"""Data-parallel training under torchrun (gloo, 2 CPU processes) on a small real MNIST subset."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from labutils.distributed import all_reduce_sums, is_distributed, shard_slices, world_size

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "train_distributed.py"
ARGS = ["--dataset", "mnist", "--model", "lenet5", "--subset", "1024", "--epochs", "2",
        "--batch-size", "64", "--amp", "off", "--seed", "3"]


def _run(cmd, out, extra=(), timeout=300):
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(SCRIPT.parent.parent)}
    return subprocess.run([*cmd, str(SCRIPT), *ARGS, "--out", str(out), *extra],
                          env=env, capture_output=True, text=True, timeout=timeout)


def _torchrun(n):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}"]


@pytest.fixture(scope="module")
def runs(real_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    single = _run([sys.executable], base / "one")
    two = _run(_torchrun(2), base / "two", ["--save-rank-weights"])
    for r in (single, two):
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return base, two


def test_both_ranks_end_with_identical_weights(runs):
    base, _ = runs
    a, b = load_file(str(base / "two" / "rank0.safetensors")), load_file(str(base / "two" / "rank1.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_processes_report_what_one_process_reports(runs):
    base, _ = runs
    one = json.loads((base / "one" / "history.json").read_text())
    two = json.loads((base / "two" / "history.json").read_text())
    assert two["world_size"] == 2 and one["world_size"] == 1
    for key in ("train_loss", "val_loss"):
        assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-5), key
    for split in ("train_metrics", "val_metrics"):
        assert two[split]["acc"] == pytest.approx(one[split]["acc"], abs=2e-3)
    assert one["train_loss"][-1] < one["train_loss"][0]  # it learned


def test_only_rank_zero_prints(runs):
    _, two = runs
    assert two.stdout.count("epoch   2/2") == 1
    assert two.stdout.count("process(es) on") == 1


def test_a_dying_rank_stops_the_job_instead_of_hanging(real_data, tmp_path):
    start = time.monotonic()
    result = _run(_torchrun(2), tmp_path, ["--die-rank", "1", "--die-at-step", "3"], timeout=180)
    assert result.returncode != 0
    assert "dying on purpose" in result.stdout + result.stderr
    assert time.monotonic() - start < 180


def test_single_process_helpers():
    assert not is_distributed() and world_size() == 1
    assert all_reduce_sums([1.0, 2.5]) == [1.0, 2.5]
    assert shard_slices(2, 4, 1, 3) == [slice(4, 8), slice(16, 20)]


def test_init_distributed_outside_torchrun_says_how_to_launch(monkeypatch):
    from labutils.distributed import init_distributed

    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(RuntimeError, match="torchrun --standalone"):
        init_distributed()
