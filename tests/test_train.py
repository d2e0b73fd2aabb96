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
    with pytest.raises(ValueError, match="no val_loader"):
        fit(model, data, None, nn.MSELoss(), opt, epochs=1, device=CPU, checkpoint="x",
            monitor="val_loss")
    with pytest.raises(ValueError, match="mixed precision"):
        fit(model, data, None, nn.MSELoss(), opt, epochs=1, device=torch.device("mps"), amp=True)
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


# --- monitor: direction and spelling are checked before training ---------------------------

def _tiny_regression():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    return [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]


def test_monitor_direction_is_explicit_for_ambiguous_names(tmp_path):
    data = _tiny_regression()
    mae = {"mae": lambda out, y: (out - y).abs().mean()}
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.raises(ValueError, match="minimised or maximised"):
        fit(model, data, data, nn.MSELoss(), opt, epochs=1, device=CPU, metrics=mae,
            checkpoint=tmp_path / "m", monitor="val_mae", progress=False, verbose=False)
    # With mode="min" the kept epoch is the one with the smallest val_mae (the loss falls).
    h = fit(model, data, data, nn.MSELoss(), opt, epochs=4, device=CPU, metrics=mae,
            checkpoint=tmp_path / "m", monitor="val_mae", mode="min", progress=False,
            verbose=False)
    maes = h.val_metrics["mae"]
    assert h.best_epoch == maes.index(min(maes)) and maes[-1] < maes[0]


def test_misspelt_monitor_fails_before_training(tmp_path):
    model = nn.Linear(3, 1)
    before = [p.clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    data = _tiny_regression()
    with pytest.raises(ValueError, match="val_accuracy.*not a recorded"):
        fit(model, data, data, nn.MSELoss(), opt, epochs=1, device=CPU,
            metrics={"acc": lambda o, y: 0.0}, checkpoint=tmp_path / "m",
            monitor="val_accuracy")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="no effect without checkpoint"):
        fit(model, data, data, nn.MSELoss(), opt, epochs=1, device=CPU, monitor="val_loss")


def test_monitor_mode_inference():
    from labutils.train import monitor_mode

    assert monitor_mode("val_loss") == "min" and monitor_mode("train_loss") == "min"
    assert monitor_mode("val_acc") == "max" and monitor_mode("val_top5_acc") == "max"
    assert monitor_mode("val_dice", "max") == "max"
    with pytest.raises(ValueError):
        monitor_mode("val_dice")
    with pytest.raises(ValueError, match="'min' or 'max'"):
        monitor_mode("val_loss", "down")


# --- mixed precision and channels_last on the CPU -------------------------------------------

def test_cpu_bf16_detection_reads_the_cpu_flags():
    from labutils.device import _cpu_flags_have_bf16

    assert _cpu_flags_have_bf16("processor: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n")
    assert _cpu_flags_have_bf16("Features\t: fp asimd bf16 i8mm\n")
    assert not _cpu_flags_have_bf16("flags\t\t: fpu sse avx2 avx512f\n")
    assert not _cpu_flags_have_bf16("")


def test_amp_default_follows_native_bf16(monkeypatch):
    import labutils.train.amp as amp

    monkeypatch.setattr(amp, "cpu_has_native_bf16", lambda: True)
    assert amp.resolve_amp(CPU, None) is True
    assert amp.resolve_amp(CPU, False) is False
    monkeypatch.setattr(amp, "cpu_has_native_bf16", lambda: False)
    assert amp.resolve_amp(CPU, None) is False
    amp._warn_emulated_bf16.cache_clear()
    with pytest.warns(RuntimeWarning, match="native bfloat16"):
        assert amp.resolve_amp(CPU, True) is True
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second request does not warn again
        amp.resolve_amp(CPU, True)


class _ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        self.seen_channels_last = x.is_contiguous(memory_format=torch.channels_last)
        self.seen_dtype = self.conv(x).dtype
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))


def test_fit_bf16_channels_last_learns_and_keeps_float32_losses():
    torch.manual_seed(0)
    x = torch.randn(128, 3, 8, 8)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    data = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 128, 32)]
    model = _ConvNet()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    seen = []
    loss_fn = lambda out, t: (seen.append(out.dtype), nn.functional.cross_entropy(out, t))[1]  # noqa: E731
    h = fit(model, data, data, loss_fn, opt, epochs=6, device=CPU, amp=True,
            channels_last=True, progress=False, verbose=False)
    assert h.amp_dtype == "bfloat16" and h.channels_last
    assert model.seen_channels_last and model.seen_dtype == torch.bfloat16
    assert model.conv.weight.dtype == torch.float32  # master weights stay fp32
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert set(seen) == {torch.float32}
    assert h.train_loss[-1] < 0.7 * h.train_loss[0]


def test_fit_fp32_path_when_amp_off():
    model = _ConvNet()
    data = [(torch.randn(8, 3, 8, 8), torch.randint(0, 2, (8,)))]
    h = fit(model, data, None, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=1, device=CPU, amp=False, channels_last=False, progress=False, verbose=False)
    assert h.amp_dtype is None and not h.channels_last and model.seen_dtype == torch.float32
    assert not model.seen_channels_last
