"""train_speedrun's argument checks and dtype record; TTA computes on the model's device."""

import pytest
import torch

import labutils.train.amp as amp
from labutils.speedrun import SpeedrunConfig, SpeedrunNet, evaluate_tta, predict_tta, train_speedrun
from device_spy import DeviceSpy  # tests/device_spy.py

CPU = torch.device("cpu")


def _data(n=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=gen), torch.arange(n) % 3


def _cfg(**kw):
    return SpeedrunConfig(**{**dict(widths=(8, 16, 16), epochs=1, batch_size=16, tta_level=0,
                                    amp=False, channels_last=False), **kw})


def test_fewer_training_images_than_one_batch_is_a_clear_error():
    x, y = _data(15)
    with pytest.raises(ValueError, match="15 training images make no batch of 16"):
        train_speedrun(_cfg(), (x, y), (x, y), device=CPU, seed=0)


@pytest.mark.parametrize("epochs", [0, -1.5, float("nan")])
def test_no_epochs_is_a_clear_error(epochs):
    x, y = _data()
    with pytest.raises(ValueError, match="cfg.epochs must be positive"):
        train_speedrun(_cfg(epochs=epochs), (x, y), (x, y), device=CPU, seed=0)


def test_the_result_names_the_autocast_dtype(monkeypatch):
    x, y = _data()
    assert train_speedrun(_cfg(), (x, y), (x[:8], y[:8]), device=CPU, seed=0).amp_dtype is None
    # float16 with a GradScaler, as on a T4, run on the CPU
    monkeypatch.setattr(amp, "amp_dtype", lambda device: torch.float16)
    result = train_speedrun(_cfg(amp=True), (x, y), (x[:8], y[:8]), device=CPU, seed=0)
    assert result.amp_dtype == "float16"
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


def test_predict_tta_computes_on_the_models_device_and_returns_on_the_images_device():
    spy = DeviceSpy("meta", num_classes=4, label=1)
    images = torch.randn(5, 3, 8, 8)
    logits = predict_tta(spy, images, level=2, amp=False, batch_size=2, channels_last=True)
    assert spy.seen == {"meta"}
    assert logits.device == images.device and logits.shape == (5, 4)


def test_evaluate_tta_scores_a_model_on_another_device_than_the_images():
    spy = DeviceSpy("meta", num_classes=4, label=1)
    images, labels = torch.randn(4, 3, 8, 8), torch.tensor([1, 1, 0, 1])
    acc = evaluate_tta(spy, images, labels, level=1, amp=False, channels_last=False)
    assert acc == 0.75 and spy.seen == {"meta"}
