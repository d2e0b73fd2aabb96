"""The airbench-style recipe: whitening against NumPy, schedule, lookahead, flips, TTA, and a
short real training run that must learn."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labutils import speedrun
from labutils.speedrun import recipe
from labutils.data import CIFAR10_MEAN, CIFAR10_STD, load_tensors
from labutils.speedrun import (Lookahead, SpeedrunConfig, SpeedrunNet, SpeedrunResult,
                               epochs_for_budget, evaluate_tta, flip_plan, lr_factor,
                               make_optimizer, normalise, predict_tta, train_speedrun, tta_logits,
                               whitening_filters)

CPU = torch.device("cpu")


def _patch_second_moment_numpy(x, size):
    """Second-moment matrix of all size x size patches, with explicit NumPy slicing."""
    x = x.numpy().astype(np.float64)
    n, c, h, w = x.shape
    rows = [x[:, :, i:i + size, j:j + size].reshape(n, -1)
            for i in range(h - size + 1) for j in range(w - size + 1)]
    # reshape(n, -1) orders a patch as (C, s, s), like the filters' weight layout
    p = np.concatenate(rows)
    return p.T @ p / len(p)


def test_whitening_filters_decorrelate_patches():
    gen = torch.Generator().manual_seed(0)
    # correlated channels: a mixing matrix applied to noise
    x = torch.einsum("dc,nchw->ndhw", torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0],
                                                    [0.5, 0.5, 0.7]]),
                     torch.randn(64, 3, 10, 10, generator=gen))
    eps = 1e-3
    filters = whitening_filters(x, eps=eps)
    assert filters.shape == (24, 3, 2, 2)
    assert torch.equal(filters[12:], -filters[:12])
    moment = _patch_second_moment_numpy(x, 2)
    eigenvalues = np.linalg.eigvalsh(moment)
    out = F.conv2d(x.double(), filters[:12].double())  # (N, 12, 9, 9)
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12).numpy()
    got = flat.T @ flat / len(flat)
    np.testing.assert_allclose(got, np.diag(eigenvalues / (eigenvalues + eps)), atol=1e-5)


def test_net_shapes_and_frozen_scales():
    net = SpeedrunNet((8, 16, 16))
    assert net(torch.randn(5, 3, 32, 32)).shape == (5, 10)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 6 and not any(m.weight.requires_grad for m in norms)
    assert all(m.bias.requires_grad for m in norms)
    assert not any(m.weight.requires_grad for m in SpeedrunNet((8, 8, 8)).modules()
                   if isinstance(m, torch.nn.BatchNorm2d))
    learned = SpeedrunNet((8, 8, 8), frozen_bn_scale=False)
    assert all(m.weight.requires_grad for m in learned.modules()
               if isinstance(m, torch.nn.BatchNorm2d))


def test_whitening_bias_starts_at_zero_and_learned_scales_join_the_fast_group():
    net = SpeedrunNet((8, 16, 16))
    assert torch.count_nonzero(net.whiten.bias) == 0
    learned = SpeedrunNet((8, 16, 16), frozen_bn_scale=False)
    fast, _ = make_optimizer(learned, SpeedrunConfig()).param_groups
    norms = [m for m in learned.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(fast["params"]) == 2 * len(norms)


def test_optimizer_groups_decouple_weight_decay_from_lr():
    net = SpeedrunNet((8, 16, 16))
    decays = []
    for lr in (5.0, 20.0):
        cfg = SpeedrunConfig(lr=lr)
        opt = make_optimizer(net, cfg)
        bias_group, other = opt.param_groups
        assert bias_group["lr"] == pytest.approx(other["lr"] * cfg.bias_lr_scale)
        assert other["nesterov"] and other["momentum"] == cfg.momentum
        decays.append([g["lr"] * g["weight_decay"] for g in opt.param_groups])
        n_params = sum(len(g["params"]) for g in opt.param_groups)
        assert n_params == sum(1 for p in net.parameters() if p.requires_grad)
    # the decay applied per step is the same for both groups and both learning rates
    assert np.allclose(decays, decays[0][0])


def test_lr_schedule_is_triangular():
    total = 100
    f = [lr_factor(s, total) for s in range(total + 1)]
    assert f[0] == pytest.approx(0.2) and max(f) == pytest.approx(1.0)
    assert int(np.argmax(f)) == 23 and f[-1] == pytest.approx(0.07)
    assert all(a <= b for a, b in zip(f[:23], f[1:24])) and all(a >= b for a, b in zip(f[23:], f[24:]))


def test_lookahead_moves_toward_the_model_and_copies_back():
    net = torch.nn.Linear(3, 2)
    la = Lookahead(net)
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    la.update(net, decay=0.75)  # slow = start + 0.25 * 1
    assert torch.allclose(net.weight, start + 0.25)
    with torch.no_grad():
        net.weight.add_(1.0)
    la.update(net, decay=1.0)   # slow unchanged, model reset to it
    assert torch.allclose(net.weight, start + 0.25)


def test_alternating_flips_show_every_image_both_ways():
    plans = [flip_plan(1000, torch.Generator().manual_seed(7), e, True) for e in range(4)]
    assert torch.equal(plans[1], ~plans[0]) and torch.equal(plans[2], plans[0])
    assert 0.45 < plans[0].float().mean() < 0.55
    random_plans = [flip_plan(1000, torch.Generator().manual_seed(7 + e), e, False)
                    for e in range(2)]
    agree = (random_plans[0] == random_plans[1]).float().mean()
    assert 0.4 < agree < 0.6  # independent coins, not a fixed alternation


def test_tta_levels():
    torch.manual_seed(0)
    net = SpeedrunNet((8, 8, 8)).eval()
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(tta_logits(net, x, 0), net(x))
    assert torch.allclose(tta_logits(net, x, 1), tta_logits(net, x.flip(3), 1), atol=1e-6)
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    expected = 0.5 * tta_logits(net, x, 1) + 0.25 * (tta_logits(net, padded[..., :32, :32], 1)
                                                     + tta_logits(net, padded[..., 2:, 2:], 1))
    assert torch.allclose(tta_logits(net, x, 2), expected, atol=1e-6)
    with pytest.raises(ValueError):
        tta_logits(net, x, 3)


def test_a_short_run_learns_real_cifar10(real_data):
    images, labels = load_tensors("cifar10", "train")
    test_images, test_labels = load_tensors("cifar10", "test")
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:4096]
    pick_t = torch.randperm(len(test_images), generator=torch.Generator().manual_seed(1))[:1000]
    train = (normalise(images[pick], CIFAR10_MEAN, CIFAR10_STD), labels[pick])
    test = (normalise(test_images[pick_t], CIFAR10_MEAN, CIFAR10_STD), test_labels[pick_t])
    cfg = SpeedrunConfig(widths=(32, 64, 64), epochs=5, batch_size=128)
    result = train_speedrun(cfg, train, test, device=CPU, seed=0)
    assert len(result.epoch_acc) == 5 and result.train_seconds > 0
    assert result.epoch_acc[-1] > 0.45  # chance is 0.10
    assert result.test_acc > 0.45
    assert result.time_to(0.0) == result.epoch_seconds[0] and result.time_to(1.01) is None


def test_predict_tta_in_batches_equals_one_pass():
    torch.manual_seed(0)
    net = SpeedrunNet((8, 16, 16), num_classes=4).eval()
    x = torch.randn(10, 3, 32, 32)
    labels = torch.randint(0, 4, (10,))
    for level in (0, 1, 2):
        batched = predict_tta(net, x, level=level, amp=False, batch_size=3, channels_last=False)
        assert torch.allclose(batched, tta_logits(net, x, level), atol=1e-5)
        expected = (tta_logits(net, x, level).argmax(1) == labels).float().mean().item()
        assert evaluate_tta(net, x, labels, level=level, amp=False, batch_size=4,
                            channels_last=False) == pytest.approx(expected)


def test_train_speedrun_sizes_a_fresh_net_and_fine_tunes_a_given_one():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(160, 3, 32, 32, generator=gen), torch.arange(160) % 3
    cfg = SpeedrunConfig(widths=(8, 16, 16), epochs=1, batch_size=16, tta_level=0, amp=False,
                         channels_last=False)
    fresh = train_speedrun(cfg, (x, y), (x[:16], y[:16]), device=CPU, seed=0)
    assert fresh.model.head.out_features == 3  # from the labels
    wider = train_speedrun(cfg, (x, y), (x[:16], y[:16]), device=CPU, seed=0, num_classes=4)
    assert wider.model.head.out_features == 4  # a subset may lack the last class
    with pytest.raises(ValueError, match="outputs"):
        train_speedrun(cfg, (x, y), (x[:16], y[:16]), device=CPU, seed=0, num_classes=4,
                       model=SpeedrunNet((8, 16, 16), num_classes=5))
    start = SpeedrunNet((8, 16, 16), num_classes=5)
    start.whiten.weight.data.normal_(generator=gen)
    whiten, body = start.whiten.weight.clone(), start.groups[0].conv1.weight.clone()
    tuned = train_speedrun(cfg, (x, y), (x[:16], y[:16]), device=CPU, seed=0, model=start)
    assert tuned.model is start and start.head.out_features == 5  # the given net, in place
    assert torch.equal(start.whiten.weight, whiten)  # its whitening filters are kept
    assert not torch.equal(start.groups[0].conv1.weight, body)  # and the rest trained


class _Clock:
    """A stand-in for the time module whose perf_counter advances one second per call."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1.0
        return self.now


def test_epochs_for_budget_scales_the_probe_time_to_the_budget(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(512, 3, 32, 32, generator=gen), torch.arange(512) % 4
    cfg = SpeedrunConfig(widths=(8, 16, 16), epochs=99, batch_size=64, tta_level=0, amp=False,
                         channels_last=False)
    # train_speedrun reads the clock at the start and end of each epoch: the probe (half an
    # epoch: 4 of 8 steps) takes 1 fake second, so an epoch takes 2 and a minute buys 30
    monkeypatch.setattr(recipe, "time", _Clock())
    assert epochs_for_budget(cfg, (x, y), 1.0, device=CPU) == 30.0
    assert epochs_for_budget(cfg, (x, y), 0.0527, device=CPU) == 1.5   # 1.581 rounds down
    # a probe of a quarter epoch (2 steps) in the same second: an epoch takes 4 seconds
    assert epochs_for_budget(cfg, (x, y), 1.0, device=CPU, probe_epochs=0.25) == 15.0
    with pytest.raises(ValueError, match="positive"):
        epochs_for_budget(cfg, (x, y), 0.0, device=CPU)
    with pytest.raises(ValueError, match="no batch"):
        epochs_for_budget(cfg, (x[:32], y[:32]), 1.0, device=CPU)
    with pytest.raises(ValueError, match="tenth"):   # 0.06 s: 0.03 of an epoch
        epochs_for_budget(cfg, (x, y), 0.001, device=CPU)


def test_epochs_for_budget_divides_by_the_steps_the_probe_ran(monkeypatch):
    """A stand-in trainer charges 0.1 s per step it would run: the estimate must count the
    same steps as train_speedrun (ceil of epochs x steps per epoch), whatever the rounding."""
    steps_run = []

    def trainer(cfg, train, test, **kw):
        assert train[0] is x and len(test[0]) < len(x)   # the probe trains on all of train
        steps = math.ceil(cfg.epochs * (len(train[0]) // cfg.batch_size))
        steps_run.append(steps)
        return SpeedrunResult(0.0, 0.0, 0.1 * steps)

    monkeypatch.setattr(recipe, "train_speedrun", trainer)
    cfg = SpeedrunConfig(batch_size=16)
    x, y = torch.zeros(29 * 16, 3, 4, 4), torch.zeros(29 * 16, dtype=torch.long)
    # 29 steps per epoch, so an epoch takes 2.9 s and 30 s buy 10.34 epochs
    for probe_epochs, steps in ((0.5, 15), (0.01, 1), (3.0, 29)):
        assert epochs_for_budget(cfg, (x, y), 0.5, device=CPU,
                                 probe_epochs=probe_epochs) == 10.3
        assert steps_run[-1] == steps   # at least one step, at most one epoch
