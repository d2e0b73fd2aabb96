"""Where the data lives, how it is checked, and how chapters load it.

One setting finds the data: the environment variable ``LAB_DATA`` (default: the repository's
``data/`` folder). Below it the layout is torchvision's (``MNIST/raw``, ``FashionMNIST/raw``,
``cifar-10-batches-py``) plus two offline copies: ``cifar10-jpeg/{train,test}/<class>/*.jpg`` and
``isbi2012-membranes``. Files the loaders read are checked once against ``manifest.json``.

Two ways to feed a model:
- the idiomatic one that chapters teach: a torchvision ``Dataset`` with transforms and a
  ``DataLoader`` (``mnist``, ``cifar10``);
- a fast one for small images: decode once into uint8 tensors (``load_tensors``, cached in a
  git-ignored folder) and batch them with ``TensorLoader``, which can keep them on the GPU.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = Path(__file__).with_name("manifest.json")

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
# Statistics of the original CIFAR-10 training set (the JPEG copy differs by < 0.004).
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class DataMissingError(FileNotFoundError):
    """A dataset is not under the data root and could not be downloaded."""


class DataIntegrityError(RuntimeError):
    """A dataset file does not match the checksums in the manifest."""


def data_root() -> Path:
    """The data root: ``$LAB_DATA`` if set, else the repository's ``data/`` folder."""
    return Path(os.environ.get("LAB_DATA") or REPO_ROOT / "data").expanduser().resolve()


def cache_dir() -> Path:
    """A writable, git-ignored folder for decoded tensors and other caches (``$LAB_CACHE``)."""
    path = Path(os.environ.get("LAB_CACHE") or REPO_ROOT / "data" / ".cache").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _missing(dataset: str, root: Path, looked_for: str, how: str, *,
             downloadable: bool = True) -> DataMissingError:
    online = (", or run on a machine with internet access so that torchvision can download it"
              if downloadable else "")
    return DataMissingError(
        f"{dataset} was not found under the data root {root} (looked for {looked_for}). "
        f"{how} Set LAB_DATA to the folder that holds it (on this project's machines: "
        f"LAB_DATA=../shared/data){online}.")


# ---------------------------------------------------------------------------------------------
# Integrity

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_digest(folder: Path) -> dict:
    """File count, byte count and one SHA-256 over every file below ``folder`` (sorted paths)."""
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    digest, total = hashlib.sha256(), 0
    for rel in files:
        data = (folder / rel).read_bytes()
        total += len(data)
        digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return {"files": len(files), "bytes": total, "sha256": digest.hexdigest()}


def _fingerprint(paths: list[Path]) -> str:
    """Cheap stand-in for the content: name, size, mtime, ctime and inode of every file.

    mtime alone can be set back (``touch -d``, ``os.utime``); ctime cannot be set by a user and
    changes with any write, and a file replaced under the same name gets a new inode.
    """
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_dev}|{st.st_ino}\n"
                 .encode())
    return h.hexdigest()


@lru_cache(maxsize=None)
def _manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def verify_dataset(name: str, root: Path | None = None, *, force: bool = False) -> None:
    """Check ``name``'s files under ``root`` against the manifest; raise ``DataIntegrityError``.

    A successful check is remembered in the cache folder (keyed by path, size, mtime, ctime and
    inode of each file), so the hashing happens once per copy of the data, not once per notebook.
    """
    root = Path(root) if root is not None else data_root()
    entry = _manifest().get(name)
    if entry is None:
        raise KeyError(f"no manifest entry for {name!r}; known: {sorted(_manifest())}")
    if "files" in entry:
        paths = [root / rel for rel in entry["files"]]
    else:
        paths = [p for p in (root / name).rglob("*") if p.is_file()]
    stamp_file = cache_dir() / "verified.json"
    try:
        stamps = json.loads(stamp_file.read_text())
    except (FileNotFoundError, ValueError):  # no cache yet, or an unreadable one: hash again
        stamps = {}
    key, fingerprint = f"{name}|{root.resolve()}", _fingerprint(paths)
    if not force and stamps.get(key) == fingerprint:
        return
    if "files" in entry:
        for rel, want in entry["files"].items():
            path = root / rel
            size = path.stat().st_size
            if size != want["size"] or _sha256(path) != want["sha256"]:
                raise DataIntegrityError(
                    f"{path} does not match the manifest (size {size}, expected {want['size']}, "
                    f"or its SHA-256 differs): the copy is damaged or a different version. "
                    f"Delete it and let torchvision download it again, or point LAB_DATA at a "
                    f"good copy.")
    else:
        got, want = tree_digest(root / name), entry["tree"]
        if got != want:
            raise DataIntegrityError(
                f"{root / name} does not match the manifest: found {got['files']} files, "
                f"{got['bytes']} bytes, expected {want['files']} files, {want['bytes']} bytes "
                f"(or the contents differ). Restore the folder from a good copy.")
    stamps[key] = fingerprint
    _atomic_write_text(stamp_file, json.dumps(stamps, indent=1))


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:  # gone after a successful rename; after an error or interrupt, clean up
        tmp.unlink(missing_ok=True)


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


def isbi_membranes(split: str = "train", *, root: Path | None = None) -> Segmentation:
    """The ISBI 2012 EM slices (30 train with masks, 30 test without), 512x512 grey.

    In a mask, 1 is cell interior (white in the PNG) and 0 is membrane (black).
    """
    from PIL import Image

    _check_split(split)
    root = Path(root) if root is not None else data_root()
    base = root / "isbi2012-membranes"
    image_dir = base / "train" / "image" if split == "train" else base / "test"
    if not image_dir.is_dir():
        raise _missing("The ISBI 2012 membrane data", root, str(image_dir),
                       "torchvision cannot download it: get the 'ISBI 2012 EM segmentation "
                       "challenge' training and test volumes and save the slices as "
                       "train/image/N.png, train/label/N.png and test/N.png.",
                       downloadable=False)
    verify_dataset("isbi2012-membranes", root)
    ids = sorted(int(p.stem) for p in image_dir.glob("*.png"))

    def read(folder: Path) -> torch.Tensor:
        arrays = [np.asarray(Image.open(folder / f"{i}.png").convert("L")) for i in ids]
        return torch.from_numpy(np.stack(arrays)).unsqueeze(1)  # (N, 1, H, W) uint8

    images = read(image_dir).float() / 255
    masks = (read(base / "train" / "label") > 127).float() if split == "train" else None
    return Segmentation(images, masks)


# ---------------------------------------------------------------------------------------------
# In-memory tensors (the fast path)

def load_tensors(name: str, split: str = "train", *,
                 root: Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 (N, C, H, W) and labels as int64 (N,) for a small-image dataset.

    ``name`` is ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``. JPEG-decoded CIFAR-10 is cached
    in ``cache_dir()`` so that the 60,000 files are decoded once.
    """
    if name in ("mnist", "fashion-mnist"):
        ds = mnist(split, fashion=name == "fashion-mnist", root=root)
        return ds.data.unsqueeze(1).contiguous(), ds.targets.long()
    if name != "cifar10":
        raise ValueError(f"unknown dataset {name!r}; expected 'mnist', 'fashion-mnist' or 'cifar10'")
    root = Path(root) if root is not None else data_root()
    # The decoded cache is looked for first (the file scan and checks below cost seconds) and
    # is keyed by the data root, so two copies of the data never share a cache.
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    cache = cache_dir() / f"cifar10-jpeg-{split}-{key}.pt"
    if cache.exists() and not (root / "cifar-10-batches-py").is_dir():
        try:
            stored = torch.load(cache, weights_only=True)
            return stored["images"], stored["labels"]
        except Exception:  # unreadable (e.g. a disk error): decode again below
            cache.unlink(missing_ok=True)
    ds = cifar10(split, root=root)
    if hasattr(ds, "data"):  # torchvision's original: (N, 32, 32, 3) uint8 array
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return images, torch.tensor(ds.targets, dtype=torch.long)
    from PIL import Image

    images = torch.from_numpy(np.stack([np.asarray(Image.open(p).convert("RGB"))
                                        for p, _ in ds.samples])).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor(ds.targets, dtype=torch.long)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:  # written under a temporary name: an interrupt never leaves a half cache behind
        torch.save({"images": images, "labels": labels}, tmp)
        os.replace(tmp, cache)
    finally:
        tmp.unlink(missing_ok=True)
    return images, labels


class TensorLoader:
    """Mini-batches from in-memory tensors, like a ``DataLoader`` without worker overhead.

    uint8 images are moved to ``device`` once, converted to float in [0, 1] per batch, normalised
    with ``mean``/``std`` per channel if given, then passed through ``augment`` (a function of a
    float batch (N, C, H, W), e.g. ``labutils.augment.BatchAugment``) if given.

    Shuffling uses its own generator, seeded by ``seed`` or, when ``seed`` is None, from torch's
    global RNG at construction, so ``seed_everything`` fixes the batch order.

    Under ``torchrun`` (or with explicit ``rank``/``world_size``) every process takes its own
    ``batch_size`` slice of each global batch of ``batch_size * world_size``, so the processes
    together see what one process with the global batch would. With ``even_shards`` (default:
    when shuffling, i.e. for training) the last global batch is filled up by wrapping around the
    epoch's order (``DistributedSampler`` pads only to a multiple of the number of processes and
    keeps a short last batch), so that every process runs the same number of full steps (DDP
    needs equal steps); without it (evaluation) every sample is seen exactly once.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int,
                 shuffle: bool = False, device: torch.device | str = "cpu",
                 mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                 augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 drop_last: bool = False, seed: int | None = None,
                 rank: int | None = None, world_size: int | None = None,
                 even_shards: bool | None = None):
        from labutils import distributed

        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if len(images) == 0:
            raise ValueError("TensorLoader got no images")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.rank = distributed.rank() if rank is None else rank
        self.world_size = distributed.world_size() if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank {self.rank}, "
                             f"world_size {self.world_size}")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.even_shards = shuffle if even_shards is None else even_shards
        self.augment = augment
        channels = images.shape[1]
        self.mean = self._per_channel(mean, channels, 0.0)
        self.std = self._per_channel(std, channels, 1.0)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.generator = torch.Generator().manual_seed(seed)

    def _per_channel(self, values, channels: int, default: float) -> torch.Tensor:
        values = (default,) * channels if values is None else tuple(values)
        if len(values) != channels:
            raise ValueError(f"expected {channels} per-channel values, got {len(values)}")
        return torch.tensor(values, device=self.device).view(1, -1, 1, 1)

    def _global_batches(self) -> int:
        n, size = len(self.images), self.batch_size * self.world_size
        return n // size if self.drop_last else -(-n // size)

    def _slices(self, n: int) -> list[slice]:
        from labutils.distributed import shard_slices

        slices = shard_slices(self._global_batches(), self.batch_size, self.rank, self.world_size)
        return [s for s in slices if s.start < n]

    def _padded_length(self) -> int:
        n = len(self.images)
        if self.world_size > 1 and self.even_shards and not self.drop_last:
            return self._global_batches() * self.batch_size * self.world_size
        return n

    def __len__(self) -> int:
        return len(self._slices(self._padded_length()))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.images)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        total = self._padded_length()
        if total > n:  # wrap around so that every process gets full batches
            order = order.repeat(-(-total // n))[:total]
        order = order.to(self.device)
        for part in self._slices(total):
            idx = order[part]
            x = self.images[idx]
            x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
            x = (x - self.mean) / self.std
            if self.augment is not None:
                x = self.augment(x)
            yield x, self.labels[idx]


# ---------------------------------------------------------------------------------------------
# Subsets

def stratified_indices(labels: torch.Tensor | np.ndarray, per_class: int,
                       rng: np.random.Generator) -> np.ndarray:
    """``per_class`` random indices of every class, shuffled together."""
    labels = np.asarray(labels)
    picks = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"class {c} has {len(members)} samples, fewer than {per_class}")
        picks.append(rng.choice(members, size=per_class, replace=False))
    out = np.concatenate(picks)
    rng.shuffle(out)
    return out


def split_indices(n: int, val_fraction: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random train/validation split of ``range(n)``."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    order = rng.permutation(n)
    n_val = int(round(n * val_fraction))
    return order[n_val:], order[:n_val]
