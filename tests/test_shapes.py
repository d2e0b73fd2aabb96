import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labutils.shapes import (Layer, Upsample, conv_output_size, conv_transpose_output_size,
                             receptive_field, receptive_window)

GRID = list(itertools.product([5, 8, 13], [1, 2, 3, 5], [1, 2, 3], [0, 1, 2], [1, 2]))


@pytest.mark.parametrize("n,k,s,p,d", GRID)
def test_conv_output_size_matches_pytorch(n, k, s, p, d):
    if n + 2 * p - d * (k - 1) - 1 < 0:
        with pytest.raises(ValueError, match="does not fit"):
            conv_output_size(n, k, stride=s, padding=p, dilation=d)
        return
    out = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)(torch.zeros(1, 1, n, n))
    assert out.shape[-1] == conv_output_size(n, k, stride=s, padding=p, dilation=d)


@pytest.mark.parametrize("n,k,s,p,ceil", list(itertools.product([5, 7, 8], [2, 3], [1, 2, 3], [0, 1], [False, True])))
def test_pool_output_size_matches_pytorch(n, k, s, p, ceil):
    if p > k // 2:
        return  # PyTorch requires padding <= kernel / 2
    out = nn.MaxPool2d(k, stride=s, padding=p, ceil_mode=ceil)(torch.zeros(1, 1, n, n))
    assert out.shape[-1] == conv_output_size(n, k, stride=s, padding=p, ceil_mode=ceil)


@pytest.mark.parametrize("n,k,s,p,op,d", [c for c in itertools.product([3, 4, 7], [1, 2, 3, 4], [1, 2, 3], [0, 1], [0, 1], [1, 2]) if c[4] < max(c[2], c[5])])
def test_conv_transpose_output_size_matches_pytorch(n, k, s, p, op, d):
    layer = nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, output_padding=op, dilation=d)
    expected = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
    if expected < 1:
        with pytest.raises(ValueError):
            conv_transpose_output_size(n, k, stride=s, padding=p, output_padding=op, dilation=d)
        return
    assert layer(torch.zeros(1, 1, n, n)).shape[-1] == conv_transpose_output_size(
        n, k, stride=s, padding=p, output_padding=op, dilation=d)


def test_transpose_inverts_the_shape_of_a_strided_conv():
    down = conv_output_size(32, 3, stride=2, padding=1)
    assert conv_transpose_output_size(down, 3, stride=2, padding=1, output_padding=1) == 32


def test_bad_arguments():
    with pytest.raises(ValueError, match="stride"):
        conv_output_size(8, 3, stride=0)
    with pytest.raises(ValueError, match="output_padding"):
        conv_transpose_output_size(4, 3, stride=2, output_padding=2)


def empirical_rf(layers, n=64):
    """Receptive field measured with autograd: which inputs move the central output?"""
    mods = [nn.Conv2d(1, 1, l.kernel, stride=l.stride, dilation=l.dilation) for l in layers]
    for m in mods:
        nn.init.constant_(m.weight, 1.0)
    x = torch.ones(1, 1, n, n, requires_grad=True)
    y = nn.Sequential(*mods)(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    cols = (x.grad[0, 0].abs().sum(0) > 0).nonzero().flatten()
    return int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize("seed", range(6))
def test_receptive_field_matches_gradients(seed):
    g = torch.Generator().manual_seed(seed)
    layers = [Layer(int(torch.randint(1, 4, (1,), generator=g)) * 2 - 1,
                    int(torch.randint(1, 3, (1,), generator=g)),
                    int(torch.randint(1, 3, (1,), generator=g))) for _ in range(3)]
    assert receptive_field(layers).size == empirical_rf(layers, n=96)


def test_receptive_field_known_values():
    assert receptive_field([(3,), (3,)]) == (5, 1)
    assert receptive_field([(3, 1), (2, 2), (3, 1)]) == (8, 2)  # conv, pool, conv


# ---------------------------------------------------------------------------------------------
# NumPy integers and PyTorch's ceil_mode edge cases (issue 9)

def torch_pool_size(n, k, s, p, d, ceil):
    """PyTorch's max-pool output length, or None where PyTorch rejects the configuration."""
    try:
        return F.max_pool1d(torch.zeros(1, 1, n), k, stride=s, padding=p, dilation=d,
                            ceil_mode=ceil).shape[-1]
    except RuntimeError:
        return None


@pytest.mark.parametrize("n,k,s,p,d", [(3, 4, 4, 1, 2), (1, 4, 2, 1, 1)])
def test_ceil_mode_accepts_windows_that_pytorch_accepts(n, k, s, p, d):
    assert torch_pool_size(n, k, s, p, d, True) == 1
    assert conv_output_size(n, k, stride=s, padding=p, dilation=d, ceil_mode=True) == 1
    pool2d = nn.MaxPool2d(k, stride=s, padding=p, dilation=d, ceil_mode=True)
    assert pool2d(torch.zeros(1, 1, n, n)).shape[-1] == 1


def test_pool_output_size_matches_pytorch_on_random_configurations():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(600):
        n, k, s, d = (int(v) for v in rng.integers(1, [12, 6, 5, 4]))
        p = int(rng.integers(0, k // 2 + 1))  # PyTorch's pooling wants padding <= kernel / 2
        ceil = bool(rng.integers(0, 2))
        expected = torch_pool_size(n, k, s, p, d, ceil)
        if expected is None:
            with pytest.raises(ValueError, match="does not fit"):
                conv_output_size(n, k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
        else:
            assert conv_output_size(n, k, stride=s, padding=p, dilation=d, ceil_mode=ceil) == \
                expected, (n, k, s, p, d, ceil)
            checked += 1
    assert checked > 300


def test_numpy_integers_are_accepted():
    n, k = np.int64(28), np.int32(5)
    assert conv_output_size(n, k, stride=np.int64(1), padding=np.uint8(2)) == 28
    assert conv_transpose_output_size(np.int64(14), 2, stride=np.int64(2)) == 28
    assert receptive_field([(np.int64(3), np.int64(2))]) == (3, 2)
    assert type(conv_output_size(n, k)) is int


@pytest.mark.parametrize("bad", [True, 3.0, "3", None])
def test_non_integers_are_rejected(bad):
    with pytest.raises(ValueError, match="kernel must be an int"):
        conv_output_size(8, bad)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_receptive_window_of_a_unet_matches_perturbation(depth):
    """With positive weights every layer is monotone, so raising one input column by a lot
    changes an output exactly when the column lies in that output's window (a max-pool passes
    the raised value on). Every position of one pooling period is checked, away from the
    borders; from depth 3 on the windows differ in size between positions."""
    from labutils.segmentation import UNet

    net = UNet(1, 1, base=2, depth=depth).double().eval()
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.constant_(m.weight, 0.1)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    n = 32 * 2 ** depth
    x = torch.rand(1, 1, 8, n, generator=torch.Generator().manual_seed(depth), dtype=torch.float64)
    with torch.no_grad():
        base = net(x)[0, 0, 4]
        changed = torch.stack([(net(x + 100 * (torch.arange(n) == j))[0, 0, 4] - base).abs()
                               > 1e-9 * base.abs().max() for j in range(n)], dim=1)
    sizes = set()
    for out_col in range(n // 2, n // 2 + 2 ** depth):
        cols = changed[out_col].nonzero().flatten()
        first, last = receptive_window(net.deepest_path(), out_col)
        assert 0 < first and last < n - 1
        assert (int(cols.min()), int(cols.max())) == (first, last)
        sizes.add(last - first + 1)
    assert len(sizes) == (1 if depth < 3 else 2)


def test_receptive_window_without_upsampling_has_the_receptive_field_size():
    rng = np.random.default_rng(0)
    for _ in range(50):
        layers = [Layer(int(k), int(s), int(d), int(p)) for k, s, d, p in
                  rng.integers([1, 1, 1, 0], [6, 3, 3, 3], size=(int(rng.integers(1, 5)), 4))]
        first, last = receptive_window(layers, int(rng.integers(0, 20)))
        assert last - first + 1 == receptive_field(layers).size
    assert receptive_window([Layer(3, padding=1)], 5) == (4, 6)
    assert receptive_window([Layer(2, 2), Upsample(2)], 5) == (4, 5)
    with pytest.raises(ValueError, match="receptive_window"):
        receptive_field([Layer(3), Upsample(2)])
