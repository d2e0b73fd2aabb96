import pytest
import torch
from torch import nn

from labutils import checkpoint as ckpt
from labutils.checkpoint import (CheckpointMismatchError, load_checkpoint, load_metadata,
                                 save_checkpoint)
from labutils.models import TinyCNN


def test_round_trip_gives_identical_predictions(tmp_path):
    torch.manual_seed(0)
    model = TinyCNN(width=4)
    x = torch.randn(3, 1, 28, 28)
    path = save_checkpoint(model, tmp_path / "tiny", arch="TinyCNN", kwargs={"width": 4},
                           metrics={"val_acc": 0.9})
    assert path.name == "tiny.safetensors" and (tmp_path / "tiny.json").exists()
    fresh = TinyCNN(width=4)
    meta = load_checkpoint(fresh, tmp_path / "tiny.safetensors")
    assert meta["kwargs"] == {"width": 4} and meta["metrics"] == {"val_acc": 0.9}
    assert torch.equal(model.eval()(x), fresh.eval()(x))
    assert load_metadata(tmp_path / "tiny")["arch"] == "TinyCNN"


def test_buffers_are_saved(tmp_path):
    model = nn.BatchNorm2d(3)
    model(torch.randn(8, 3, 4, 4) * 5 + 2)
    save_checkpoint(model, tmp_path / "bn")
    fresh = nn.BatchNorm2d(3)
    load_checkpoint(fresh, tmp_path / "bn")
    assert torch.equal(fresh.running_mean, model.running_mean)


def test_mismatched_model_gives_clear_error(tmp_path):
    save_checkpoint(TinyCNN(width=4), tmp_path / "tiny", kwargs={"width": 4})
    with pytest.raises(CheckpointMismatchError, match=r"\{'width': 4\}.*shape mismatch"):
        load_checkpoint(TinyCNN(width=8), tmp_path / "tiny")
    with pytest.raises(CheckpointMismatchError, match="missing in checkpoint"):
        load_checkpoint(nn.Sequential(nn.Linear(2, 2)), tmp_path / "tiny")


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="train the model first"):
        load_checkpoint(TinyCNN(), tmp_path / "nothing")


def test_interrupted_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    torch.manual_seed(0)
    old = TinyCNN(width=4)
    save_checkpoint(old, tmp_path / "m")
    before = (tmp_path / "m.safetensors").read_bytes()

    def crash(state, filename):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(TinyCNN(width=4), tmp_path / "m")
    assert (tmp_path / "m.safetensors").read_bytes() == before
    monkeypatch.undo()
    load_checkpoint(TinyCNN(width=4), tmp_path / "m")  # still loads
