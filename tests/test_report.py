import json

import torch

from labutils.mode import RunMode
from labutils.report import RunRecord, runs_dir


def test_report_prints_and_saves(capsys):
    run = RunRecord("00-tour", seed=7, mode=RunMode(quick=True), device=torch.device("cpu"))
    record = run.report({"test accuracy": 0.123456, "epochs": 2})
    out = capsys.readouterr().out
    assert out.startswith("Run report") and "test accuracy" in out and "0.1235" in out
    saved = json.loads((runs_dir() / "00-tour-quick.json").read_text())
    assert saved == record
    assert saved["seed"] == 7 and saved["mode"] == "quick" and saved["torch"] == torch.__version__
    assert saved["wall time (s)"] >= 0 and saved["metrics"]["epochs"] == 2
    from labutils.device import cpu_model
    assert saved["CPU"] == cpu_model()
    assert any(line.split()[0] == "CPU" and line.rstrip().endswith(cpu_model())
               for line in out.splitlines()[1:])


def test_report_saves_numpy_and_tensor_metrics():
    import numpy as np

    run = RunRecord("00-np", seed=1, mode=RunMode(quick=True), device=torch.device("cpu"))
    record = run.report({"acc": np.float32(0.25), "n": np.int64(3), "loss": torch.tensor(0.5)})
    saved = json.loads((runs_dir() / "00-np-quick.json").read_text())
    assert saved["metrics"] == {"acc": 0.25, "n": 3, "loss": 0.5} == record["metrics"]


def test_interrupted_report_keeps_the_previous_one(monkeypatch):
    import os

    from labutils import report as report_module

    run = RunRecord("00-int", seed=1, mode=RunMode(quick=True), device=torch.device("cpu"))
    run.report({"acc": 0.5})
    path = runs_dir() / "00-int-quick.json"
    before = path.read_text()

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_module.os, "replace", crash)
    try:
        run.report({"acc": 0.9})
    except KeyboardInterrupt:
        pass
    assert path.read_text() == before
    assert not [f for f in os.listdir(runs_dir()) if f.endswith(".tmp")]


def test_report_records_how_training_ran():
    from labutils.train import History

    run = RunRecord("00-h", seed=1, mode=RunMode(quick=True), device=torch.device("cpu"))
    record = run.report({}, histories=[History(amp_dtype="bfloat16", channels_last=True),
                                       History(amp_dtype=None, channels_last=True)])
    assert record["mixed precision"] == "bfloat16, off (float32)"
    assert record["channels_last"] == "True"
    assert isinstance(record["native bf16 CPU"], bool)
    assert "mixed precision" not in run.report({})


def test_report_records_training_outside_fit():
    from labutils.train import History

    run = RunRecord("00-t", seed=1, mode=RunMode(quick=True), device=torch.device("cpu"))
    run.record_training(amp_dtype=None, channels_last=False)
    record = run.report({})
    assert record["mixed precision"] == "off (float32)" and record["channels_last"] == "False"
    run.record_training(amp_dtype=torch.bfloat16, channels_last=True)
    record = run.report({}, histories=[History(amp_dtype="bfloat16", channels_last=True)])
    assert record["mixed precision"] == "bfloat16, off (float32)"
    assert record["channels_last"] == "False, True"


def test_report_lines_for_training_are_printed(capsys):
    run = RunRecord("00-p", seed=1, mode=RunMode(quick=True), device=torch.device("cpu"))
    run.record_training(amp_dtype="bfloat16", channels_last=True)
    run.report({"test accuracy": "99.12%"})
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[:2] == ["mixed", "precision"] and line.endswith("bfloat16")
               for line in lines)
    assert any(line.split()[0] == "channels_last" and line.endswith("True") for line in lines)
    assert any(line.rstrip().endswith("99.12%") for line in lines)


def test_record_signature_unchanged():
    run = RunRecord("00-s", seed=3, mode=RunMode(quick=True), device=torch.device("cpu"))
    assert (run.chapter, run.seed) == ("00-s", 3)
    assert "_training" not in repr(run)
