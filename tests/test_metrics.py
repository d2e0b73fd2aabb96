import numpy as np
import pytest
import torch
from sklearn.metrics import recall_score
from torch import nn

from labutils.metrics import accuracy, count_parameters, per_class_accuracy, predict
from device_spy import DeviceSpy  # tests/device_spy.py


def test_accuracy_counts_argmax_hits():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1])).item() == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        accuracy(logits, torch.tensor([0, 1]))


def test_per_class_accuracy_matches_sklearn_recall():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    np.testing.assert_allclose(per_class_accuracy(y, p, 4), recall_score(y, p, average=None))
    assert np.isnan(per_class_accuracy(np.array([0, 0]), np.array([0, 1]), 2)[1])


def test_predict_returns_probabilities():
    model = nn.Linear(3, 5)
    x = torch.randn(7, 3)
    y_true, y_pred, probs = predict(model, [(x[:4], torch.arange(4)), (x[4:], torch.arange(3))],
                                    torch.device("cpu"))
    assert probs.shape == (7, 5) and np.allclose(probs.sum(1), 1, atol=1e-6)
    assert y_true.tolist() == [0, 1, 2, 3, 0, 1, 2]
    assert np.array_equal(y_pred, model(x).argmax(1).numpy())


def test_count_parameters():
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.Linear(4, 2))  # 6*25+6 and 4*2+2
    assert count_parameters(model) == 156 + 10
    model[1].requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 156


def test_per_class_accuracy_rejects_labels_outside_the_classes():
    with pytest.raises(ValueError, match=r"y_true.*\[0, 3\).*found 3"):
        per_class_accuracy(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match=r"y_pred.*\[0, 3\).*found -1"):
        per_class_accuracy(np.array([0, 1]), np.array([0, -1]), 3)
    with pytest.raises(ValueError, match=r"same shape.*\(3,\).*\(2,\)"):
        per_class_accuracy(np.array([0, 1, 2]), np.array([0, 1]), 3)


def test_predict_on_an_empty_loader_is_a_clear_error():
    with pytest.raises(ValueError, match="no batches"):
        predict(nn.Linear(3, 2), [], torch.device("cpu"))


def _ece_by_loops(probs, targets, n_bins):
    """Reference: loop over bins with explicit edges (lo, hi]."""
    total, n = 0.0, len(probs)
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [i for i in range(n) if lo < probs[i].max() <= hi]
        if members:
            conf = np.mean([probs[i].max() for i in members])
            acc = np.mean([probs[i].argmax() == targets[i] for i in members])
            total += len(members) / n * abs(acc - conf)
    return total


def test_expected_calibration_error_matches_a_loop_over_bins():
    from labutils.metrics import calibration_bins, expected_calibration_error

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 10)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    targets = rng.integers(0, 10, 500)
    assert expected_calibration_error(probs, targets, 10) == pytest.approx(
        _ece_by_loops(probs, targets, 10), abs=1e-12)
    conf, acc, count = calibration_bins(probs, targets, 10)
    assert count.sum() == 500 and np.isnan(conf[count == 0]).all()


def test_ece_is_zero_when_confidence_equals_accuracy():
    from labutils.metrics import expected_calibration_error

    # 100 samples at confidence 0.8, 80 of them right: perfectly calibrated
    probs = np.tile([0.8, 0.2], (100, 1))
    targets = np.r_[np.zeros(80, int), np.ones(20, int)]
    assert expected_calibration_error(probs, targets) == pytest.approx(0.0, abs=1e-12)
    # all right at confidence 0.8: under-confident by 0.2
    assert expected_calibration_error(probs, np.zeros(100, int)) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        expected_calibration_error(probs, np.zeros(99, int))


def test_predict_computes_on_the_models_device():
    spy = DeviceSpy("meta", num_classes=3)
    batches = [(torch.randn(4, 2), torch.tensor([0, 1, 2, 0]))]
    y_true, y_pred, _ = predict(spy, batches)
    assert spy.seen == {"meta"}  # the CPU batches were moved to the model
    assert y_pred.tolist() == [0, 1, 2, 0] and y_true.tolist() == [0, 1, 2, 0]
    with pytest.raises(ValueError, match="model is on meta but device=cpu"):
        predict(spy, batches, torch.device("cpu"))
