import pytest
import torch
from torch import nn

from labutils.checkpoint import load_checkpoint
from labutils.data import MNIST_MEAN, MNIST_STD, TensorLoader, load_tensors
from labutils.metrics import accuracy
from labutils.models import TinyCNN
from labutils.train import History, evaluate, fit, train_one_epoch

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def mnist_small():
    images, labels = load_tensors("mnist", "train")
    return images[:2000], labels[:2000], images[2000:2500], labels[2000:2500]


def loaders(mnist_small, batch_size=64):
    xtr, ytr, xva, yva = mnist_small
    kw = dict(mean=MNIST_MEAN, std=MNIST_STD)
    return (TensorLoader(xtr, ytr, batch_size=batch_size, shuffle=True, **kw),
            TensorLoader(xva, yva, batch_size=batch_size, **kw))


def test_fit_learns_real_digits(real_data, mnist_small, tmp_path):
    torch.manual_seed(0)
    model = TinyCNN(width=8)
    train, val = loaders(mnist_small)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    calls = []
    history = fit(model, train, val, nn.CrossEntropyLoss(), opt, epochs=3, device=CPU,
                  metrics={"acc": accuracy}, scheduler=sched, checkpoint=tmp_path / "best",
                  monitor="val_acc", on_epoch_end=lambda e, h: calls.append((e, h.epochs)),
                  progress=False, verbose=False)
    assert history.epochs == 3 and len(history.val_loss) == 3 and len(history.seconds) == 3
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_metrics["acc"][-1] > 0.85  # chance is 0.10
    assert history.lr == pytest.approx([3e-3, 1.5e-3, 7.5e-4])
    assert calls == [(0, 1), (1, 2), (2, 3)]
    best = history.best_epoch
    assert history.val_metrics["acc"][best] == max(history.val_metrics["acc"])
    meta = load_checkpoint(TinyCNN(width=8), tmp_path / "best")
    assert meta["metrics"]["epoch"] == best + 1


def test_metrics_are_weighted_by_samples_not_batches():
    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    x, y = torch.randn(10, 3), torch.randint(0, 4, (10,))
    batches = [(x[:8], y[:8]), (x[8:], y[8:])]  # uneven batches: 8 and 2
    got = evaluate(model, batches, nn.CrossEntropyLoss(), CPU, metrics={"acc": accuracy})
    with torch.no_grad():
        out = model(x)
    assert got["loss"] == pytest.approx(nn.functional.cross_entropy(out, y).item(), rel=1e-6)
    assert got["acc"] == pytest.approx(accuracy(out, y).item())


def test_evaluate_leaves_no_gradients_and_sets_eval_mode():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    evaluate(model, [(torch.randn(4, 3), torch.randn(4, 3))], nn.MSELoss(), CPU)
    assert not model.training and all(p.grad is None for p in model.parameters())


def test_regression_targets_work():
    """Denoising-style: image in, image out, MSE."""
    torch.manual_seed(0)
    model = nn.Conv2d(1, 1, 3, padding=1)
    clean = torch.rand(32, 1, 8, 8)
    data = [(clean[i:i + 8] + 0.1 * torch.randn(8, 1, 8, 8), clean[i:i + 8]) for i in range(0, 32, 8)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    h = fit(model, data, data, nn.MSELoss(), opt, epochs=5, device=CPU, progress=False, verbose=False)
    assert h.val_loss[-1] < h.val_loss[0] and h.train_metrics == {}


def test_batch_scheduler_steps_every_batch():
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 ** step)
    data = [(torch.randn(4, 2), torch.randn(4, 1))] * 3
    fit(model, data, None, nn.MSELoss(), opt, epochs=2, device=CPU, scheduler=sched,
        step_scheduler_every_batch=True, progress=False, verbose=False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 ** 6)


def test_nan_loss_stops_training():
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = [(torch.full((4, 2), float("nan")), torch.zeros(4, 1))]
    with pytest.raises(FloatingPointError, match="learning rate"):
        train_one_epoch(model, data, nn.MSELoss(), opt, CPU)


def test_fit_rejects_bad_arguments():
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = [(torch.randn(4, 2), torch.randn(4, 1))]
    with pytest.raises(ValueError, match="epochs"):
        fit(model, data, None, nn.MSELoss(), opt, epochs=0, device=CPU)
    with pytest.raises(ValueError, match="val_loader"):
        fit(model, data, None, nn.MSELoss(), opt, epochs=1, device=CPU, checkpoint="x")
    with pytest.raises(ValueError, match="mixed precision"):
        fit(model, data, None, nn.MSELoss(), opt, epochs=1, device=CPU, amp=True)
    with pytest.raises(ValueError, match="no samples"):
        train_one_epoch(model, [], nn.MSELoss(), opt, CPU)


def test_fit_prints_one_line_per_epoch(capsys):
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = [(torch.randn(4, 2), torch.randn(4, 1))]
    fit(model, data, data, nn.MSELoss(), opt, epochs=2, device=CPU, progress=False)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch   2/2  train_loss")


def test_history_last_and_dict():
    h = History(train_loss=[2.0, 1.0], val_loss=[2.5, 1.5], val_metrics={"acc": [0.1, 0.2]})
    assert h.epochs == 2
    assert h.last() == {"train_loss": 1.0, "val_loss": 1.5, "val_acc": 0.2}
    assert h.to_dict()["val_metrics"] == {"acc": [0.1, 0.2]}
    assert History().last() == {}


def test_progress_bar_shows_unless_disabled(monkeypatch):
    from labutils.train import _progress
    from tqdm import tqdm

    data = [1, 2, 3]
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    bar = _progress(data, True, "train")
    assert isinstance(bar, tqdm) and list(bar) == data
    bar.close()
    assert _progress(data, False, "train") is data
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert _progress(data, True, "train") is data
