import shutil
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

from labutils import data
from labutils.data import integrity, loaders
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
        isbi_membranes(root=tmp_path, download=False)


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

    monkeypatch.setenv("LAB_CACHE", str(tmp_path / "cache"))  # a cache no other test has filled
    folder = tmp_path / "images"
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                folder / cls / f"{i}.png")
    monkeypatch.setattr(loaders, "cifar10", lambda split, root=None: ImageFolder(str(folder)))
    images, labels = load_tensors("cifar10", "train")
    assert images.shape == (6, 3, 32, 32) and labels.tolist() == [0, 0, 0, 1, 1, 1]
    first = np.array(Image.open(folder / "a" / "0.png"))
    assert torch.equal(images[0], torch.from_numpy(first).permute(2, 0, 1))
    assert len(list(data.cache_dir().glob("cifar10-jpeg-train-*.pt"))) == 1

    def no_scan(split, root=None):
        raise AssertionError("the cache must be found before the image folders are scanned")

    monkeypatch.setattr(loaders, "cifar10", no_scan)
    again, _ = load_tensors("cifar10", "train")
    assert torch.equal(again, images)
    # Another data root has its own cache: it is decoded, not served from the first one.
    with pytest.raises(AssertionError, match="scanned"):
        load_tensors("cifar10", "train", root=tmp_path / "elsewhere")


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


def test_tensor_loader_order_follows_seed_everything():
    from labutils.device import seed_everything

    images, labels = torch.zeros(50, 1, 2, 2), torch.arange(50)

    def first_epoch(seed):
        seed_everything(seed)
        loader = TensorLoader(images, labels, batch_size=10, shuffle=True)
        return torch.cat([y for _, y in loader])

    assert torch.equal(first_epoch(1), first_epoch(1))
    assert not torch.equal(first_epoch(1), first_epoch(2))
    assert sorted(first_epoch(3).tolist()) == list(range(50))


@pytest.mark.parametrize("n,batch,world", [(40, 4, 2), (37, 4, 2), (37, 5, 3), (3, 4, 2)])
def test_tensor_loader_shards_global_batches(n, batch, world):
    images, labels = torch.zeros(n, 1, 2, 2), torch.arange(n)
    single = TensorLoader(images, labels, batch_size=batch * world, shuffle=True, seed=7)
    shards = [TensorLoader(images, labels, batch_size=batch, shuffle=True, seed=7, rank=r,
                           world_size=world) for r in range(world)]
    lengths = {len(s) for s in shards}
    assert lengths == {len(single)}  # every rank runs the same number of steps (DDP needs it)
    for global_batch, *parts in zip(single, *shards):
        together = torch.cat([y for _, y in parts])
        # Each global batch is the single-process batch, filled up by wrap-around at the end.
        assert torch.equal(together[:len(global_batch[1])], global_batch[1])
        assert all(len(y) == batch for _, y in parts)
    # Evaluation (no shuffle): every sample exactly once over all ranks, no padding.
    evals = [TensorLoader(images, labels, batch_size=batch, rank=r, world_size=world)
             for r in range(world)]
    seen = torch.cat([y for e in evals for _, y in e])
    assert sorted(seen.tolist()) == list(range(n))
    with pytest.raises(ValueError, match="rank"):
        TensorLoader(images, labels, batch_size=batch, rank=world, world_size=world)


# ---------------------------------------------------------------------------------------------
# Faults (issue 9)

def fake_manifest_entry(folder):
    import hashlib

    target = folder / "blob.bin"
    target.write_bytes(b"a" * 1000)
    return target, {"fake": {"files": {"blob.bin": {
        "size": 1000, "sha256": hashlib.sha256(b"a" * 1000).hexdigest()}}}}


def test_same_size_edit_with_mtime_restored_is_not_trusted(tmp_path, monkeypatch):
    import os
    import time

    target, manifest = fake_manifest_entry(tmp_path)
    monkeypatch.setattr(integrity, "_manifest", lambda: manifest)
    verify_dataset("fake", tmp_path)  # hashed and remembered
    stat = target.stat()
    time.sleep(0.02)  # let the clock that stamps ctime move on
    with open(target, "r+b") as f:  # edit in place: same inode, same size
        f.write(b"b")
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # put the old mtime back
    assert target.stat().st_mtime_ns == stat.st_mtime_ns and target.stat().st_size == 1000
    with pytest.raises(DataIntegrityError, match="blob.bin"):
        verify_dataset("fake", tmp_path)


def test_replaced_file_with_same_size_and_mtime_is_not_trusted(tmp_path, monkeypatch):
    import os

    target, manifest = fake_manifest_entry(tmp_path)
    monkeypatch.setattr(integrity, "_manifest", lambda: manifest)
    verify_dataset("fake", tmp_path)
    stat = target.stat()
    other = tmp_path / "other.bin"
    other.write_bytes(b"c" * 1000)
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(other, target)  # a different file (new inode) under the old name
    with pytest.raises(DataIntegrityError, match="blob.bin"):
        verify_dataset("fake", tmp_path)


def test_isbi_missing_message_with_downloads_off_says_what_to_do(tmp_path):
    with pytest.raises(DataMissingError) as err:
        isbi_membranes(root=tmp_path, download=False)
    msg = str(err.value)
    assert "download=False" in msg and "Set LAB_DATA to the folder that holds the datasets" in msg
    assert "so that it can be downloaded" not in msg and "machines" not in msg


@pytest.mark.parametrize("fashion", [False, True])
def test_failed_download_leaves_no_empty_folders(tmp_path, monkeypatch, fashion):
    from torchvision.datasets import mnist as tv_mnist

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", no_network)
    root = tmp_path / "fresh" / "root"  # does not exist yet, nor does its parent
    with pytest.raises(DataMissingError, match="Downloading it failed"):
        mnist("train", root=root, fashion=fashion)
    assert not (tmp_path / "fresh").exists()
    (tmp_path / "keep").mkdir()  # folders that were there before stay
    (tmp_path / "keep" / "MNIST").mkdir()
    with pytest.raises(DataMissingError):
        mnist("train", root=tmp_path / "keep")
    assert (tmp_path / "keep" / "MNIST").is_dir() and not (tmp_path / "keep" / "MNIST" / "raw").exists()


def test_unreadable_verification_cache_is_rebuilt(tmp_path, monkeypatch):
    _, manifest = fake_manifest_entry(tmp_path)
    monkeypatch.setattr(integrity, "_manifest", lambda: manifest)
    stamp_file = data.cache_dir() / "verified.json"
    stamp_file.write_text('{"fake|')  # e.g. cut short by an older, non-atomic writer
    verify_dataset("fake", tmp_path)
    assert f"fake|{tmp_path.resolve()}" in __import__("json").loads(stamp_file.read_text())


def test_interrupted_stamp_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    import os

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(integrity.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        integrity._atomic_write_text(tmp_path / "verified.json", "{}")
    assert os.listdir(tmp_path) == []


def test_svhn_offline_is_a_clear_error(tmp_path, monkeypatch):
    from torchvision import datasets

    from labutils.data import svhn

    with pytest.raises(DataMissingError, match="SVHN.*Downloading is switched off"):
        svhn("train", root=tmp_path, download=False)

    def no_network(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(datasets.SVHN, "download", no_network)
    with pytest.raises(DataMissingError, match="SVHN.*Downloading it failed.*LAB_DATA"):
        svhn("test", root=tmp_path)
    assert not (tmp_path / "SVHN").exists()  # no empty folder left behind


def test_oxford_pets_offline_is_a_clear_error(tmp_path, monkeypatch):
    from torchvision import datasets

    from labutils.data import oxford_pets

    with pytest.raises(DataMissingError, match="Oxford-IIIT Pet.*Downloading is switched off"):
        oxford_pets(root=tmp_path, download=False)

    def no_network(self):
        self._base_folder.mkdir(parents=True)   # as a real download starts: the folder exists
        raise OSError("no network")

    monkeypatch.setattr(datasets.OxfordIIITPet, "_download", no_network)
    with pytest.raises(DataMissingError, match="Oxford-IIIT Pet.*Downloading it failed.*LAB_DATA"):
        oxford_pets("test", root=tmp_path)
    assert not (tmp_path / "oxford-iiit-pet").exists()  # no empty folder left behind
    with pytest.raises(ValueError, match="split"):
        oxford_pets("train", root=tmp_path)
