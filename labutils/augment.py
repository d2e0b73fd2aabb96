"""Data augmentation on whole batches of tensors, on the model's device.

Per-image PIL transforms in a ``DataLoader`` cost more than the network on small images; these
functions transform a float batch (N, C, H, W) at once. Each draws its randomness from a
``torch.Generator`` that the caller passes, so a seed fixes the augmented batches.
``BatchAugment`` bundles them into the ``augment=`` callable that ``TensorLoader`` takes.
"""

from __future__ import annotations

import torch


def _check_batch(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(x.shape)}; for one "
                         f"image pass x.unsqueeze(0)")


def _check_generator(generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"expected a torch.Generator for the random draws, got "
                        f"{type(generator).__name__}; pass e.g. "
                        f"torch.Generator().manual_seed(0) (a fixed seed fixes the batches)")


def _uniform_ints(low: int, high: int, n: int, generator: torch.Generator,
                  device: torch.device) -> torch.Tensor:
    """``n`` integers uniform in [low, high], drawn on the generator's device, moved to ``device``."""
    return torch.randint(low, high + 1, (n,), generator=generator,
                         device=generator.device).to(device)


def random_shifts(n: int, pad: int, generator: torch.Generator,
                  device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column shifts (dy, dx), each uniform in [-pad, pad], for ``n`` >= 0 images,
    int64 on ``device``. ``ValueError`` for a negative pad or n, ``TypeError`` without a
    generator."""
    _check_generator(generator)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    device = torch.device(device)
    return (_uniform_ints(-pad, pad, n, generator, device),
            _uniform_ints(-pad, pad, n, generator, device))


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, *, pad: int,
              mode: str = "reflect") -> torch.Tensor:
    """Shift image i by (dy[i], dx[i]) pixels: pad by ``pad`` (reflect or zeros), then crop.

    Equivalent to a random crop of size (H, W) from the padded image at offset
    (pad + dy, pad + dx). x (N, C, H, W) -> a new (N, C, H, W) tensor on x's device (x is not
    changed); N = 0 gives an empty batch.

    Raises:
        ValueError: a batch that is not (N, C, H, W), an unknown mode, a negative pad, shifts
            beyond ``pad`` or not one per image, or a reflect pad not smaller than H and W.
    """
    _check_batch(x)
    if mode not in ("reflect", "zeros"):
        raise ValueError(f"mode must be 'reflect' or 'zeros', got {mode!r}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    n, c, h, w = x.shape
    if not (len(dy) == len(dx) == n):
        raise ValueError(f"need one shift per image: {n} images, {len(dy)} dy, {len(dx)} dx")
    if pad == 0 or n == 0:
        return x.clone()
    if mode == "reflect" and pad >= min(h, w):
        raise ValueError(f"a reflect pad ({pad}) must be smaller than the image size {(h, w)}; "
                         f"use a smaller pad or mode='zeros'")
    dy, dx = dy.to(x.device), dx.to(x.device)
    if int(dy.abs().max()) > pad or int(dx.abs().max()) > pad:
        raise ValueError(f"shifts must lie in [-{pad}, {pad}]")
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad),
                                     mode="reflect" if mode == "reflect" else "constant")
    rows = (pad + dy).view(n, 1) + torch.arange(h, device=x.device)  # (N, H)
    cols = (pad + dx).view(n, 1) + torch.arange(w, device=x.device)  # (N, W)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    # Advanced indexing picks, for every image, its (H, W) window: result (N, H, W, C).
    out = padded.permute(0, 2, 3, 1)[batch, rows.view(n, h, 1), cols.view(n, 1, w)]
    return out.permute(0, 3, 1, 2)  # a channels_last view: what a channels_last model wants


def random_translate(x: torch.Tensor, generator: torch.Generator, *, pad: int = 4,
                     mode: str = "reflect") -> torch.Tensor:
    """Random translation by up to ``pad`` pixels each way (the classic pad-and-crop); inputs,
    result and errors as for ``translate``, ``TypeError`` without a generator."""
    _check_batch(x)
    _check_generator(generator)
    dy, dx = random_shifts(len(x), pad, generator, x.device)
    return translate(x, dy, dx, pad=pad, mode=mode)


def random_flip(x: torch.Tensor, generator: torch.Generator, *, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p`` in [0, 1]: a new (N, C, H, W)
    tensor (x is not changed). ``ValueError`` for shapes or p, ``TypeError`` without a
    generator."""
    _check_batch(x)
    _check_generator(generator)
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    flip = (torch.rand(len(x), generator=generator, device=generator.device) < p).to(x.device)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def cutout(x: torch.Tensor, generator: torch.Generator, *, size: int) -> torch.Tensor:
    """Zero one ``size`` x ``size`` square per image at a uniform random centre (DeVries and
    Taylor, 2017); the square is clipped at the border, so it may cover less of the image.
    Returns a new tensor (x is not changed); ``ValueError`` for shapes or size < 1,
    ``TypeError`` without a generator."""
    _check_batch(x)
    _check_generator(generator)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    n, _, h, w = x.shape
    cy = _uniform_ints(0, h - 1, n, generator, x.device).view(n, 1, 1)
    cx = _uniform_ints(0, w - 1, n, generator, x.device).view(n, 1, 1)
    top, left = cy - size // 2, cx - size // 2
    r = torch.arange(h, device=x.device).view(1, h, 1)
    c = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (r >= top) & (r < top + size) & (c >= left) & (c < left + size)  # (N, H, W)
    return x.masked_fill(inside.unsqueeze(1), 0.0)


class BatchAugment:
    """Translate, flip and cut out a batch; the ``augment=`` argument of ``TensorLoader``.

    The generator is seeded from ``seed``, or, when ``seed`` is None, from torch's global RNG at
    construction, so that ``seed_everything`` before building it fixes every augmented batch.
    Settings are checked when it is called: see ``translate``, ``random_flip`` and ``cutout``.
    """

    def __init__(self, *, pad: int = 4, mode: str = "reflect", flip: bool = True,
                 cutout_size: int = 0, seed: int | None = None):
        self.pad, self.mode, self.flip, self.cutout_size = pad, mode, flip, cutout_size
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = random_translate(x, self.generator, pad=self.pad, mode=self.mode)
        if self.flip:
            x = random_flip(x, self.generator)
        if self.cutout_size:
            x = cutout(x, self.generator, size=self.cutout_size)
        return x

    def __repr__(self) -> str:
        return (f"BatchAugment(pad={self.pad}, mode={self.mode!r}, flip={self.flip}, "
                f"cutout_size={self.cutout_size})")
