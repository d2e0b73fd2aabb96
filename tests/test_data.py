import shutil
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

from labutils import data
from labutils.data import (CIFAR10_CLASSES, DataIntegrityError, DataMissingError, TensorLoader,
                           cifar10, data_root, isbi_membranes, load_tensors, mnist,
                           split_indices, stratified_indices, verify_dataset)

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_data_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DATA", str(tmp_path))
    assert data_root() == tmp_path.resolve()
    monkeypatch.delenv("LAB_DATA")
    assert data_root() == (data.REPO_ROOT / "data").resolve()


def test_mnist_is_the_real_data(real_data):
    images, labels = load_tensors("mnist", "train")
    assert images.shape == (60000, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == MNIST_TRAIN_COUNTS
    assert abs(images.float().mean().item() / 255 - 0.1307) < 1e-3
    _, test_labels = load_tensors("mnist", "test")
    assert torch.bincount(test_labels).tolist() == MNIST_TEST_COUNTS


def test_fashion_mnist_loads(real_data):
    ds = mnist("test", fashion=True)
    assert len(ds) == 10000 and len(ds.classes) == 10


def test_missing_data_offline_says_what_to_do(tmp_path):
    with pytest.raises(DataMissingError) as err:
        mnist("train", root=tmp_path, download=False)
    msg = str(err.value)
    assert "MNIST" in msg and str(tmp_path) in msg and "LAB_DATA" in msg


def test_failed_download_becomes_clear_error(tmp_path, monkeypatch):
    from torchvision import datasets

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(datasets.MNIST, "download", no_network)
    with pytest.raises(DataMissingError, match="Downloading it failed.*URLError"):
        mnist("train", root=tmp_path)
    with pytest.raises(DataMissingError, match="CIFAR-10"):
        cifar10("train", root=tmp_path, download=False)
    with pytest.raises(DataMissingError, match="ISBI"):
        isbi_membranes(root=tmp_path)


def test_corrupted_file_fails_integrity_check(real_data, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(real_data / "MNIST" / "raw", raw)
    verify_dataset("MNIST", tmp_path)  # the intact copy passes
    target = raw / "t10k-labels-idx1-ubyte"
    target.chmod(0o644)
    blob = bytearray(target.read_bytes())
    blob[100] ^= 0xFF
    target.write_bytes(bytes(blob))
    with pytest.raises(DataIntegrityError, match="t10k-labels"):
        verify_dataset("MNIST", tmp_path)


def test_corrupted_tree_fails_integrity_check(real_data, tmp_path):
    shutil.copytree(real_data / "isbi2012-membranes", tmp_path / "isbi2012-membranes")
    (tmp_path / "isbi2012-membranes" / "test" / "0.png").unlink()
    with pytest.raises(DataIntegrityError, match="found 89 files.*expected 90 files"):
        verify_dataset("isbi2012-membranes", tmp_path)


def test_isbi_membranes(real_data):
    train = isbi_membranes("train")
    assert train.images.shape == (30, 1, 512, 512) and train.masks.shape == (30, 1, 512, 512)
    assert 0 <= train.images.min() and train.images.max() <= 1
    assert set(train.masks.unique().tolist()) == {0.0, 1.0}
    assert 0.5 < train.masks.mean() < 0.95  # membranes are the minority class
    test = isbi_membranes("test")
    assert test.images.shape == (30, 1, 512, 512) and test.masks is None


def test_cifar10_jpeg_copy_has_official_class_order(real_data):
    ds = cifar10("test")
    assert len(ds) == 10000 and tuple(ds.classes) == CIFAR10_CLASSES
    image, label = ds[0]
    assert image.size == (32, 32) and label == 0


def test_cifar10_decode_is_cached(tmp_path, monkeypatch):
    from torchvision.datasets import ImageFolder

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / cls / f"{i}.png")
    monkeypatch.setattr(data, "cifar10", lambda split, root=None: ImageFolder(str(tmp_path)))
    images, labels = load_tensors("cifar10", "train")
    assert images.shape == (6, 3, 32, 32) and labels.tolist() == [0, 0, 0, 1, 1, 1]
    first = np.array(Image.open(tmp_path / "a" / "0.png"))
    assert torch.equal(images[0], torch.from_numpy(first).permute(2, 0, 1))
    assert (data.cache_dir() / "cifar10-jpeg-train.pt").exists()
    again, _ = load_tensors("cifar10", "train")
    assert torch.equal(again, images)


def test_load_tensors_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_tensors("svhn")


def test_tensor_loader_batches_normalises_and_shuffles():
    images = torch.arange(10 * 2 * 2 * 2, dtype=torch.float32).view(10, 2, 2, 2).to(torch.uint8)
    labels = torch.arange(10)
    loader = TensorLoader(images, labels, batch_size=4, shuffle=True, mean=(0.5, 0.5),
                          std=(0.25, 0.25))
    batches = list(loader)
    assert len(loader) == 3 and [len(y) for _, y in batches] == [4, 4, 2]
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    x, y = batches[0]
    assert torch.allclose(x, (images[y].float() / 255 - 0.5) / 0.25)
    assert len(TensorLoader(images, labels, batch_size=4, drop_last=True)) == 2


def test_tensor_loader_applies_augment_and_checks_shapes():
    images = torch.zeros(4, 1, 3, 3, dtype=torch.uint8)
    loader = TensorLoader(images, torch.zeros(4), batch_size=2, augment=lambda x: x + 1)
    assert all(torch.all(x == 1) for x, _ in loader)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        TensorLoader(torch.zeros(4, 3, 3), torch.zeros(4), batch_size=2)
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        TensorLoader(images, torch.zeros(3), batch_size=2)
    with pytest.raises(ValueError, match="per-channel"):
        TensorLoader(images, torch.zeros(4), batch_size=2, mean=(0.1, 0.2))


def test_stratified_and_split_indices():
    labels = np.repeat(np.arange(5), 20)
    idx = stratified_indices(labels, 4, np.random.default_rng(0))
    assert len(idx) == 20 and len(set(idx)) == 20
    assert np.bincount(labels[idx]).tolist() == [4] * 5
    with pytest.raises(ValueError, match="fewer than"):
        stratified_indices(labels, 21, np.random.default_rng(0))
    train, val = split_indices(100, 0.2, np.random.default_rng(0))
    assert len(val) == 20 and len(train) == 80 and not set(train) & set(val)
    with pytest.raises(ValueError):
        split_indices(100, 1.0, np.random.default_rng(0))
