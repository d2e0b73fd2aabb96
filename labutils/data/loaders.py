"""Decoded uint8 tensors (cached), ``TensorLoader`` that batches them, and index splits."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from labutils.data.datasets import cifar10, mnist
from labutils.data.integrity import cache_dir, data_root


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


def subset_indices(n: int, size: int, rng: np.random.Generator, *,
                   labels: torch.Tensor | np.ndarray | None = None) -> np.ndarray:
    """``size`` distinct random indices of ``range(n)``, in random order (never the first N).

    With ``labels`` (n,) the draw is stratified: each class gets its share of ``size`` in
    proportion to its count (rounded by largest remainder), so a data set stored class by class
    still gives every class. Any prefix of the result is itself a random subset.
    """
    if not 0 <= size <= n:
        raise ValueError(f"size must be in [0, {n}] (the data set's length), got {size}")
    if labels is None:
        return rng.permutation(n)[:size]
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    classes, counts = np.unique(labels, return_counts=True)
    quota = size * counts / n
    take = np.floor(quota).astype(int)
    order = np.argsort(-(quota - take), kind="stable")  # largest remainders first
    take[order[:size - take.sum()]] += 1
    picks = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
             for c, k in zip(classes, take)]
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
