"""The datasets as torchvision ``Dataset`` objects, with their statistics and class names."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from labutils.data.download import download_isbi_membranes
from labutils.data.integrity import DataIntegrityError, _manifest, _missing, data_root, verify_dataset


MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
# Statistics of the original CIFAR-10 training set (the JPEG copy differs by < 0.004).
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


# ---------------------------------------------------------------------------------------------
# torchvision datasets (the idiomatic path)

def _check_split(split: str) -> bool:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split == "train"


def mnist(split: str = "train", *, transform: Callable | None = None, fashion: bool = False,
          root: Path | None = None, download: bool = True) -> Dataset:
    """MNIST (or Fashion-MNIST) as a torchvision dataset, read from the data root.

    Downloads with torchvision when the files are absent and ``download`` is True.
    """
    from torchvision import datasets

    train = _check_split(split)
    cls = datasets.FashionMNIST if fashion else datasets.MNIST
    name = cls.__name__
    root = Path(root) if root is not None else data_root()
    raw = root / name / "raw"
    files = sorted(_manifest()[name]["files"])
    if not all((root / f).exists() for f in files):
        if not download:
            raise _missing(name, root, f"{raw}/*-ubyte", "Downloading is switched off.")
        created = [d for d in (raw, *raw.parents) if not d.exists()]  # deepest first
        try:
            cls(str(root), train=train, download=True)
        except BaseException as err:  # no network, a mirror is down, or an interrupt
            for folder in created:  # remove the folders this download made, if still empty
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            if not isinstance(err, Exception):
                raise
            raise _missing(name, root, f"{raw}/*-ubyte",
                           f"Downloading it failed ({type(err).__name__}: {err}).") from err
    verify_dataset(name, root)
    return cls(str(root), train=train, transform=transform, download=False)


def cifar10(split: str = "train", *, transform: Callable | None = None,
            root: Path | None = None, download: bool = True) -> Dataset:
    """CIFAR-10 as a torchvision dataset: the original batches if present (or downloadable),
    else the JPEG class-folder copy; the class order is the official one in both cases."""
    from torchvision import datasets

    train = _check_split(split)
    root = Path(root) if root is not None else data_root()
    if (root / "cifar-10-batches-py").is_dir():
        return datasets.CIFAR10(str(root), train=train, transform=transform, download=False)
    jpeg = root / "cifar10-jpeg" / split
    if jpeg.is_dir():
        verify_dataset("cifar10-jpeg", root)
        ds = datasets.ImageFolder(str(jpeg), transform=transform)
        if tuple(ds.classes) != CIFAR10_CLASSES:
            raise DataIntegrityError(f"{jpeg} has classes {ds.classes}, expected {CIFAR10_CLASSES}")
        return ds
    if download:
        try:
            return datasets.CIFAR10(str(root), train=train, transform=transform, download=True)
        except Exception as err:
            raise _missing("CIFAR-10", root, "cifar-10-batches-py/ or cifar10-jpeg/",
                           f"Downloading it failed ({type(err).__name__}: {err}).") from err
    raise _missing("CIFAR-10", root, "cifar-10-batches-py/ or cifar10-jpeg/",
                   "Downloading is switched off.")


def svhn(split: str = "train", *, transform: Callable | None = None,
         root: Path | None = None, download: bool = True) -> Dataset:
    """SVHN (Netzer et al., 2011; the source's data set) from ``<root>/SVHN``, downloaded by
    torchvision when absent. Offline and absent, a ``DataMissingError`` says what to do."""
    from torchvision import datasets

    _check_split(split)
    root = Path(root) if root is not None else data_root()
    folder = root / "SVHN"
    if (folder / f"{split}_32x32.mat").exists():
        return datasets.SVHN(str(folder), split=split, transform=transform, download=False)
    if not download:
        raise _missing("SVHN", root, f"{folder}/{split}_32x32.mat", "Downloading is switched off.")
    existed = folder.exists()
    try:
        return datasets.SVHN(str(folder), split=split, transform=transform, download=True)
    except Exception as err:
        if not existed and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise _missing("SVHN", root, f"{folder}/{split}_32x32.mat",
                       f"Downloading it failed ({type(err).__name__}: {err}).") from err


def oxford_pets(split: str = "trainval", *, transforms: Callable | None = None,
                root: Path | None = None, download: bool = True) -> Dataset:
    """Oxford-IIIT Pet (Parkhi et al., 2012) with its trimap masks (the source's U-Net data):
    torchvision's ``OxfordIIITPet(target_types="segmentation")`` under ``<root>``, downloaded
    when absent. ``split`` is ``"trainval"`` or ``"test"``; ``transforms`` gets (image, mask).
    Offline and absent, a ``DataMissingError`` says what to do."""
    from torchvision import datasets

    if split not in ("trainval", "test"):
        raise ValueError(f"split must be 'trainval' or 'test', got {split!r}")
    root = Path(root) if root is not None else data_root()
    folder = root / "oxford-iiit-pet"
    kwargs = dict(split=split, target_types="segmentation", transforms=transforms)
    if (folder / "images").is_dir() and (folder / "annotations").is_dir():
        return datasets.OxfordIIITPet(str(root), download=False, **kwargs)
    if not download:
        raise _missing("Oxford-IIIT Pet", root, f"{folder}/images and annotations",
                       "Downloading is switched off.")
    existed = folder.exists()
    try:
        return datasets.OxfordIIITPet(str(root), download=True, **kwargs)
    except Exception as err:
        if not existed and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise _missing("Oxford-IIIT Pet", root, f"{folder}/images and annotations",
                       f"Downloading it failed ({type(err).__name__}: {err}).") from err


class Segmentation(NamedTuple):
    """Images (N, 1, H, W) float32 in [0, 1] and masks (N, 1, H, W) float32 in {0, 1} or None."""

    images: torch.Tensor
    masks: torch.Tensor | None


def isbi_membranes(split: str = "train", *, root: Path | None = None,
                   download: bool = True) -> Segmentation:
    """The ISBI 2012 EM slices (30 train with masks, 30 test without), 512x512 grey.

    In a mask, 1 is cell interior (white in the PNG) and 0 is membrane (black). When the folder
    is absent and ``download`` is True, the PNGs are downloaded from a fixed commit of
    github.com/zhixuhao/unet and checked against the manifest (``download_isbi_membranes``).
    """
    from PIL import Image

    _check_split(split)
    root = Path(root) if root is not None else data_root()
    base = root / "isbi2012-membranes"
    image_dir = base / "train" / "image" if split == "train" else base / "test"
    if not base.exists() and download:
        download_isbi_membranes(root)
    if not image_dir.is_dir():
        raise _missing("The ISBI 2012 membrane data", root, str(image_dir),
                       "Downloading is switched off (download=False) or the folder is "
                       "incomplete: it holds train/image/N.png, train/label/N.png and "
                       "test/N.png for N = 0..29.", downloadable=False)
    verify_dataset("isbi2012-membranes", root)
    ids = sorted(int(p.stem) for p in image_dir.glob("*.png"))

    def read(folder: Path) -> torch.Tensor:
        arrays = [np.asarray(Image.open(folder / f"{i}.png").convert("L")) for i in ids]
        return torch.from_numpy(np.stack(arrays)).unsqueeze(1)  # (N, 1, H, W) uint8

    images = read(image_dir).float() / 255
    masks = (read(base / "train" / "label") > 127).float() if split == "train" else None
    return Segmentation(images, masks)
