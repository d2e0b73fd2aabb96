"""labutils.segmentation.multiclass: checked against scikit-learn and by construction."""

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import confusion_matrix, jaccard_score

from labutils.segmentation import (PET_CLASSES, PetSegmentation, confusion, digit_canvases,
                                   mean_iou, per_class_iou, trimap_to_classes)


def _random_maps(seed, k=5, shape=(3, 17, 13)):
    rng = np.random.default_rng(seed)
    return rng.integers(0, k, shape), rng.integers(0, k, shape)


@pytest.mark.parametrize("seed", range(4))
def test_confusion_matches_sklearn(seed):
    pred, target = _random_maps(seed)
    expected = confusion_matrix(target.ravel(), pred.ravel(), labels=range(5))
    np.testing.assert_array_equal(confusion(pred, target, 5), expected)
    np.testing.assert_array_equal(confusion(torch.from_numpy(pred), torch.from_numpy(target), 5),
                                  expected)


@pytest.mark.parametrize("seed", range(4))
def test_iou_matches_jaccard_score(seed):
    pred, target = _random_maps(seed)
    conf = confusion(pred, target, 5)
    expected = jaccard_score(target.ravel(), pred.ravel(), labels=range(5), average=None)
    np.testing.assert_allclose(per_class_iou(conf), expected, rtol=1e-12)
    assert mean_iou(conf) == pytest.approx(
        jaccard_score(target.ravel(), pred.ravel(), labels=range(5), average="macro"))


def test_absent_class_is_nan_and_left_out_of_the_mean():
    target = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    iou = per_class_iou(confusion(pred, target, 3))
    assert np.isnan(iou[2])
    np.testing.assert_allclose(iou[:2], [0.5, 2 / 3])
    assert mean_iou(confusion(pred, target, 3)) == pytest.approx((0.5 + 2 / 3) / 2)


def test_confusion_rejects_bad_input():
    with pytest.raises(ValueError, match="differ in shape"):
        confusion(np.zeros(3, int), np.zeros(4, int), 2)
    with pytest.raises(ValueError, match="outside"):
        confusion(np.array([0, 2]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="argmax"):
        confusion(np.zeros(3), np.zeros(3, int), 2)


def _digits(m=20, seed=0):
    rng = np.random.default_rng(seed)
    digits = np.zeros((m, 28, 28), np.uint8)
    digits[:, 8:20, 10:18] = rng.integers(0, 256, (m, 12, 8))
    return digits, rng.integers(0, 10, m)


def test_digit_canvases_shapes_determinism_and_masks():
    digits, labels = _digits()
    x, y = digit_canvases(digits, labels, n=6, size=64, generator=np.random.default_rng(1))
    x2, y2 = digit_canvases(digits, labels, n=6, size=64, generator=np.random.default_rng(1))
    assert x.shape == (6, 1, 64, 64) and x.dtype == torch.float32
    assert y.shape == (6, 64, 64) and y.dtype == torch.int64
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert 0 <= x.min() and x.max() <= 1 and 0 <= y.min() and y.max() <= 10
    assert (x[:, 0][y > 0] > 0.5).all()              # every labelled pixel is bright
    assert set(y.unique().tolist()) - {0} <= set((labels + 1).tolist())


def test_one_digit_canvas_is_the_digit_and_its_class():
    digits, labels = _digits(m=1)
    x, y = digit_canvases(digits, labels, n=1, size=28, per_canvas=(1, 1),
                          generator=np.random.default_rng(0))
    np.testing.assert_allclose(x[0, 0].numpy(), digits[0] / 255)
    np.testing.assert_array_equal(y[0].numpy(), np.where(digits[0] / 255 > 0.5, labels[0] + 1, 0))


def test_digit_canvases_rejects_bad_arguments():
    digits, labels = _digits()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        digit_canvases(digits, labels[:3], n=2, generator=rng)
    with pytest.raises(ValueError):
        digit_canvases(digits, labels, n=2, size=20, generator=rng)
    with pytest.raises(ValueError):
        digit_canvases(digits, labels, n=2, per_canvas=(3, 2), generator=rng)


def test_trimap_to_classes():
    trimap = np.array([[1, 2], [3, 2]], np.uint8)
    out = trimap_to_classes(Image.fromarray(trimap))
    assert out.dtype == torch.int64
    np.testing.assert_array_equal(out.numpy(), [[1, 0], [2, 0]])
    assert PET_CLASSES[1] == "pet" and PET_CLASSES[0] == "background"
    with pytest.raises(ValueError, match="trimap"):
        trimap_to_classes(np.array([[0, 1]]))


class _FakePets:
    """Two items shaped like OxfordIIITPet(target_types="segmentation")'s: PIL RGB + trimap."""

    def __len__(self):
        return 2

    def __getitem__(self, i):
        image = Image.fromarray(np.full((40, 60, 3), 50 * i, np.uint8))
        trimap = np.full((40, 60), 2, np.uint8)
        trimap[10:30, 15:45] = 3
        trimap[14:26, 20:40] = 1
        return image, Image.fromarray(trimap)


def test_pet_segmentation_wrapper():
    pets = PetSegmentation(_FakePets(), size=32, indices=[1])
    assert len(pets) == 1
    x, y = pets[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (32, 32) and y.dtype == torch.int64
    assert torch.allclose(x, torch.full_like(x, 50 / 255))
    assert set(y.unique().tolist()) == {0, 1, 2}
    assert y[16, 16] == 1 and y[0, 0] == 0     # pet in the middle, background in the corner
