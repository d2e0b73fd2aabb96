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
