import json
import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from labutils import checkpoint as ckpt
from labutils.checkpoint import (CheckpointCorruptError, CheckpointMismatchError,
                                 load_checkpoint, load_metadata, save_checkpoint)
from labutils.models import TinyCNN


def _crash_mid_write(state, filename, metadata=None):
    """Stands in for safetensors' save_file: writes half a file, then is interrupted."""
    with open(filename, "wb") as f:
        f.write(b"half")
    raise KeyboardInterrupt

def test_round_trip_gives_identical_predictions(tmp_path):
    torch.manual_seed(0)
    model = TinyCNN(width=4)
    x = torch.randn(3, 1, 28, 28)
    path = save_checkpoint(model, tmp_path / "tiny", arch="TinyCNN", kwargs={"width": 4},
                           metrics={"val_acc": 0.9})
    assert path.name == "tiny.safetensors"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["tiny.safetensors"]  # one file
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

    monkeypatch.setattr(ckpt, "save_file", _crash_mid_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(TinyCNN(width=4), tmp_path / "m")
    assert (tmp_path / "m.safetensors").read_bytes() == before
    monkeypatch.undo()
    load_checkpoint(TinyCNN(width=4), tmp_path / "m")  # still loads


# ---------------------------------------------------------------------------------------------
# Faults: a checkpoint is always the old one or the new one, and damage is named (issue 9)

def weights_of(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_weights(model, weights):
    return all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("fail_at", [1, 2])
def test_interrupted_save_never_mixes_old_and_new(tmp_path, monkeypatch, fail_at):
    torch.manual_seed(0)
    old, new = TinyCNN(width=4), TinyCNN(width=4)
    save_checkpoint(old, tmp_path / "m", metrics={"acc": 0.1})
    calls = []
    real_replace = os.replace

    def replace(src, dst):  # an interrupt at the fail_at-th rename of the save
        calls.append(dst)
        if len(calls) == fail_at:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", replace)
    try:
        save_checkpoint(new, tmp_path / "m", metrics={"acc": 0.9})
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    loaded = TinyCNN(width=4)
    meta = load_checkpoint(loaded, tmp_path / "m")
    assert ((meta["metrics"] == {"acc": 0.1} and same_weights(loaded, weights_of(old)))
            or (meta["metrics"] == {"acc": 0.9} and same_weights(loaded, weights_of(new))))
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_interrupted_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "save_file", _crash_mid_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(TinyCNN(width=4), tmp_path / "m")
    assert os.listdir(tmp_path) == []


def test_unserialisable_metadata_fails_before_writing(tmp_path):
    save_checkpoint(TinyCNN(width=4), tmp_path / "m", metrics={"acc": 0.5})
    before = (tmp_path / "m.safetensors").read_bytes()
    with pytest.raises(TypeError, match=r"metrics\['loss'\].*JSON"):
        save_checkpoint(TinyCNN(width=4), tmp_path / "m", metrics={"loss": object()})
    assert (tmp_path / "m.safetensors").read_bytes() == before
    meta = save_checkpoint(TinyCNN(width=4), tmp_path / "n",
                           metrics={"acc": torch.tensor(0.5), "n": torch.tensor(3)})
    assert load_metadata(meta)["metrics"] == {"acc": 0.5, "n": 3}


def test_metadata_lives_in_the_safetensors_header(tmp_path):
    path = save_checkpoint(TinyCNN(width=4), tmp_path / "m", arch="TinyCNN",
                           kwargs={"width": 4}, metrics={"acc": 0.5})
    with safe_open(str(path), framework="pt") as f:
        header = json.loads(f.metadata()["labutils"])
    assert header["arch"] == "TinyCNN" and header["kwargs"] == {"width": 4}
    assert load_metadata(path) == load_checkpoint(TinyCNN(width=4), path)


def test_truncated_checkpoint_names_the_file_and_leaves_the_model_alone(tmp_path):
    path = save_checkpoint(TinyCNN(width=4), tmp_path / "m")
    path.write_bytes(path.read_bytes()[:-100])
    model = TinyCNN(width=4)
    before = weights_of(model)
    with pytest.raises(CheckpointCorruptError, match=rf"{path}.*save the checkpoint again"):
        load_checkpoint(model, path)
    with pytest.raises(CheckpointCorruptError, match=str(path)):
        load_metadata(path)
    assert same_weights(model, before)


def test_flipped_byte_in_the_weights_is_detected(tmp_path):
    path = save_checkpoint(TinyCNN(width=4), tmp_path / "m")
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0xFF
    path.write_bytes(bytes(blob))
    model = TinyCNN(width=4)
    before = weights_of(model)
    with pytest.raises(CheckpointCorruptError, match=rf"{path}.*checksum"):
        load_checkpoint(model, path)
    assert same_weights(model, before)


def test_corrupt_metadata_is_found_before_the_weights_are_replaced(tmp_path):
    state = {k: v.contiguous() for k, v in TinyCNN(width=4).state_dict().items()}
    path = tmp_path / "m.safetensors"
    save_file(state, str(path), metadata={"labutils": "{not json"})
    model = TinyCNN(width=4)
    before = weights_of(model)
    with pytest.raises(CheckpointCorruptError, match=rf"{path}.*metadata"):
        load_checkpoint(model, path)
    assert same_weights(model, before)


def test_old_style_checkpoint_with_a_json_beside_it_still_loads(tmp_path):
    torch.manual_seed(1)
    model = TinyCNN(width=4)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(tmp_path / "old.safetensors"))
    (tmp_path / "old.json").write_text(json.dumps({"arch": "TinyCNN", "kwargs": {"width": 4},
                                                   "metrics": {"acc": 0.7}}))
    fresh = TinyCNN(width=4)
    assert load_checkpoint(fresh, tmp_path / "old")["metrics"] == {"acc": 0.7}
    assert same_weights(fresh, weights_of(model))
    assert load_metadata(tmp_path / "old.safetensors")["arch"] == "TinyCNN"
    # saving again writes the new format and removes the stale JSON
    save_checkpoint(fresh, tmp_path / "old", metrics={"acc": 0.8})
    assert not (tmp_path / "old.json").exists()
    assert load_metadata(tmp_path / "old")["metrics"] == {"acc": 0.8}


def test_old_style_checkpoint_with_a_corrupt_json_fails_before_loading(tmp_path):
    model = TinyCNN(width=4)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(tmp_path / "old.safetensors"))
    (tmp_path / "old.json").write_text('{"arch": "TinyC')
    fresh = TinyCNN(width=4)
    before = weights_of(fresh)
    with pytest.raises(CheckpointCorruptError, match=rf"{tmp_path / 'old.json'}"):
        load_checkpoint(fresh, tmp_path / "old")
    assert same_weights(fresh, before)


def test_checkpoint_without_metadata_loads_with_empty_metadata(tmp_path):
    model = TinyCNN(width=4)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "x.safetensors"))
    assert load_checkpoint(TinyCNN(width=4), tmp_path / "x") == {}
    with pytest.raises(FileNotFoundError, match="no checkpoint metadata"):
        load_metadata(tmp_path / "x")


def test_mismatch_is_found_before_the_weights_are_read(tmp_path, monkeypatch):
    save_checkpoint(TinyCNN(width=4), tmp_path / "tiny", kwargs={"width": 4})
    monkeypatch.setattr(ckpt, "load_file", lambda *a, **k: pytest.fail("read the weights"))
    with pytest.raises(CheckpointMismatchError, match="shape mismatch"):
        load_checkpoint(TinyCNN(width=8), tmp_path / "tiny")
