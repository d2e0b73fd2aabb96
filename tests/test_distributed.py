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

from labutils.distributed import (all_reduce_sums, choose_processes, is_distributed,
                                  launch_command, shard_slices, world_size)

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "train_distributed.py"
ARGS = ["--dataset", "mnist", "--model", "lenet5", "--subset", "1024", "--epochs", "2",
        "--batch-size", "64", "--amp", "off", "--seed", "3"]


def _run(nproc, out, extra=(), timeout=300):
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(SCRIPT.parent.parent)}
    return subprocess.run(launch_command(nproc, SCRIPT, *ARGS, "--out", str(out), *extra),
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def runs(real_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    single = _run(1, base / "one")
    two = _run(2, base / "two", ["--save-rank-weights"])
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
    result = _run(2, tmp_path, ["--die-rank", "1", "--die-at-step", "3"], timeout=180)
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


def test_launch_command_runs_torchrun_for_several_processes(tmp_path):
    script = tmp_path / "train.py"
    assert launch_command(2, script, "--epochs", 2) == [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(script), "--epochs", "2"]
    assert launch_command(1, script, "--x") == [sys.executable, str(script), "--x"]
    assert launch_command(1, script, torchrun=True)[1:5] == [
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
    with pytest.raises(ValueError, match="at least 1"):
        launch_command(0, script)
    with pytest.raises(ValueError, match="need torchrun"):
        launch_command(2, script, torchrun=False)


@pytest.mark.parametrize("gpus, wanted, expected", [
    (0, 2, (2, "gloo")),   # a CPU machine
    (1, 2, (2, "gloo")),   # Colab's one GPU: two processes cannot share it with NCCL
    (2, 2, (2, "nccl")),
    (8, 2, (2, "nccl")),
    (3, 4, (3, "nccl")),   # min(wanted, GPUs)
    (1, 1, (1, "gloo")),
])
def test_choose_processes_by_gpu_count(gpus, wanted, expected):
    assert choose_processes(wanted, gpus=gpus) == expected


def test_choose_processes_counts_the_gpus_by_default(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert choose_processes(2) == (2, "nccl")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert choose_processes(2) == (2, "gloo")
    with pytest.raises(ValueError):
        choose_processes(0)


def test_the_default_backend_needs_a_gpu_per_local_process(monkeypatch):
    from labutils.distributed import _default_backend

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert _default_backend(1) == "nccl" and _default_backend(2) == "gloo"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert _default_backend(1) == "gloo"
