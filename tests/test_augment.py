"""Batch augmentation: exact geometry, uniform randomness, reproducible with a seed."""

import pytest
import torch

from labutils.augment import (BatchAugment, cutout, random_flip, random_shifts, random_translate,
                              translate)


def _batch(n=16, c=3, h=8, w=8):
    return torch.arange(n * c * h * w, dtype=torch.float32).view(n, c, h, w)


def test_flipping_twice_is_the_identity():
    x = _batch()
    once = random_flip(x, torch.Generator().manual_seed(3))
    twice = random_flip(once, torch.Generator().manual_seed(3))
    assert torch.equal(twice, x)
    flipped = [not torch.equal(a, b) for a, b in zip(once, x)]
    assert 0 < sum(flipped) < len(x)  # some images flipped, some not
    for a, b, f in zip(once, x, flipped):
        assert torch.equal(a, b.flip(2) if f else b)


@pytest.mark.parametrize("mode", ["reflect", "zeros"])
def test_every_crop_is_a_window_of_the_padded_image(mode):
    x, pad = torch.randn(32, 2, 6, 7), 3
    out = random_translate(x, torch.Generator().manual_seed(0), pad=pad, mode=mode)
    padded = torch.nn.functional.pad(x, (pad,) * 4, mode="reflect" if mode == "reflect" else "constant")
    for img, p in zip(out, padded):
        windows = [p[:, r:r + 6, c:c + 7] for r in range(2 * pad + 1) for c in range(2 * pad + 1)]
        assert any(torch.equal(img, w) for w in windows)


def test_translate_moves_content_by_the_shift():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1
    out = translate(x, torch.tensor([1]), torch.tensor([-2]), pad=2, mode="zeros")
    # Cropping at offset (pad + dy, pad + dx) moves the pixel by (-dy, -dx).
    assert out[0, 0, 1, 4] == 1 and out.sum() == 1
    with pytest.raises(ValueError, match="shifts"):
        translate(x, torch.tensor([3]), torch.tensor([0]), pad=2)


def test_shifts_are_uniform():
    from scipy.stats import chisquare

    dy, dx = random_shifts(90_000, 4, torch.Generator().manual_seed(1))
    for shifts in (dy, dx):
        counts = torch.bincount(shifts + 4, minlength=9)
        assert len(counts) == 9 and shifts.min() == -4 and shifts.max() == 4
        assert chisquare(counts.numpy()).pvalue > 1e-3
    assert abs(torch.corrcoef(torch.stack([dy, dx]).float())[0, 1]) < 0.02


def test_cutout_zeros_one_clipped_square():
    x = torch.ones(200, 1, 10, 10)
    out = cutout(x, torch.Generator().manual_seed(0), size=4)
    zeros = (out == 0).sum((1, 2, 3))
    assert zeros.max() == 16 and zeros.min() >= 4  # a corner centre keeps at least 2x2
    for img in out:
        rows, cols = torch.nonzero(img[0] == 0, as_tuple=True)
        area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert area == len(rows)  # the zeros form one rectangle


def test_same_seed_same_batches_different_seed_different():
    x = torch.randn(64, 3, 8, 8)
    a = BatchAugment(pad=2, cutout_size=3, seed=5)
    b = BatchAugment(pad=2, cutout_size=3, seed=5)
    c = BatchAugment(pad=2, cutout_size=3, seed=6)
    first_a, first_b, first_c = a(x), b(x), c(x)
    assert torch.equal(first_a, first_b) and not torch.equal(first_a, first_c)
    assert not torch.equal(a(x), first_a)  # the generator advances between batches
    torch.manual_seed(11)
    d = BatchAugment()
    torch.manual_seed(11)
    e = BatchAugment()
    assert torch.equal(d(x), e(x))  # without a seed it follows torch's global seed


def test_bad_arguments():
    g = torch.Generator()
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        random_flip(torch.zeros(3, 4, 4), g)
    with pytest.raises(ValueError, match="mode"):
        random_translate(torch.zeros(1, 1, 4, 4), g, mode="wrap")
    with pytest.raises(ValueError, match="size"):
        cutout(torch.zeros(1, 1, 4, 4), g, size=0)


def test_augmentations_of_an_empty_batch_are_empty():
    g = torch.Generator().manual_seed(0)
    empty = torch.rand(0, 3, 8, 8)
    for out in (random_translate(empty, g, pad=2), random_flip(empty, g),
                cutout(empty, g, size=3), BatchAugment(pad=2, cutout_size=3)(empty)):
        assert out.shape == (0, 3, 8, 8)


def test_augmentations_say_what_generator_they_need():
    x = torch.rand(2, 3, 8, 8)
    for call in (lambda: random_translate(x, None), lambda: random_flip(x, None),
                 lambda: cutout(x, None, size=2), lambda: random_shifts(2, 1, None)):
        with pytest.raises(TypeError, match=r"torch\.Generator\(\)\.manual_seed"):
            call()


def test_translate_checks_pad_against_the_image_and_does_not_change_its_input():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 4, 4)
    before = x.clone()
    with pytest.raises(ValueError, match=r"reflect.*smaller than.*\(4, 4\).*zeros"):
        random_translate(x, g, pad=4)
    assert random_translate(x, g, pad=4, mode="zeros").shape == x.shape
    with pytest.raises(ValueError, match="pad must be >= 0"):
        translate(x, torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long), pad=-1)
    for out in (random_translate(x, g, pad=2), random_flip(x, g), cutout(x, g, size=2)):
        assert out.data_ptr() != x.data_ptr()
    assert torch.equal(x, before)
