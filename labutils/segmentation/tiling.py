"""Training tiles (a grid or random crops) and overlap-tile inference with mirrored borders."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def grid_tiles(images: torch.Tensor, masks: torch.Tensor, size: int
               ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(image, mask) pairs of ``size`` x ``size`` tiles on a regular grid, row by row, each
    pair holding that tile of every slice: (N, C, size, size). Height and width must be
    multiples of ``size``. A fixed, unaugmented set, e.g. for a validation loss."""
    _check_pairs(images, masks)
    h, w = images.shape[-2:]
    if size < 1 or h % size or w % size:
        raise ValueError(f"size {size} does not divide the image size {(h, w)}")
    return [(images[:, :, r:r + size, c:c + size], masks[:, :, r:r + size, c:c + size])
            for r in range(0, h, size) for c in range(0, w, size)]


def _check_pairs(images: torch.Tensor, masks: torch.Tensor) -> None:
    if images.ndim != 4 or masks.ndim != 4 or images.shape[0] != masks.shape[0] \
            or images.shape[-2:] != masks.shape[-2:]:
        raise ValueError(f"images {tuple(images.shape)} and masks {tuple(masks.shape)} must "
                         f"be (N, C, H, W) with the same N, H and W")


# ---------------------------------------------------------------------------------------------
# Tiled inference


@torch.no_grad()
def predict_tiled(model: nn.Module, image: torch.Tensor, *, tile: int, margin: int) -> torch.Tensor:
    """Logits of ``model`` for a whole image (N, C, H, W), computed tile by tile.

    Overlap-tile: the image is mirrored by ``margin`` pixels at its borders; each output tile of
    ``tile - 2 * margin`` pixels is predicted from a ``tile``-pixel input window around it and only
    its centre is kept, so every output pixel sees ``margin`` pixels of context. With a margin
    at least the network's receptive-field radius (and window offsets that keep the pooling
    grid, e.g. multiples of 2**depth for a U-Net), the result equals predicting the mirrored
    image in one piece, for any H and W (the image is mirrored once; the windows that run past
    its mirrored border read zeros there, which only outputs outside the image see). The model
    runs on the device of its parameters and is not switched to eval mode (do that first); the
    logits (N, K, H, W) come back on ``image``'s device. ``image`` is not changed.

    Raises:
        ValueError: an image that is not (N, C, H, W) or is empty, ``tile <= 2 * margin``, a
            negative margin, or a margin not smaller than the height and width (mirroring
            needs that).
    """
    if image.ndim != 4:
        raise ValueError(f"expected a batch of images (N, C, H, W), got shape "
                         f"{tuple(image.shape)}; for one image (C, H, W) pass "
                         f"image.unsqueeze(0)")
    n, c, h, w = image.shape
    if n == 0 or h == 0 or w == 0:
        raise ValueError(f"got an empty batch or image, shape {tuple(image.shape)}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    step = tile - 2 * margin
    if step < 1:
        raise ValueError(f"tile ({tile}) must be larger than 2 * margin ({2 * margin})")
    if margin >= min(h, w):
        raise ValueError(f"the margin ({margin}) must be smaller than the image's height and "
                         f"width {(h, w)} to mirror it; use a smaller margin or a larger image")
    device = next((p.device for p in model.parameters()), image.device)
    # mirror the margin once, then zeros up to a whole number of steps: the zeros lie more than
    # ``margin`` pixels from every kept output pixel
    ph, pw = -h % step, -w % step
    padded = F.pad(image, (margin,) * 4, mode="reflect") if margin else image
    padded = F.pad(padded, (0, pw, 0, ph)) if ph or pw else padded
    out = None
    for top in range(0, h + ph, step):
        for left in range(0, w + pw, step):
            window = padded[:, :, top:top + tile, left:left + tile].to(device)
            logits = model(window)
            if out is None:
                out = logits.new_zeros(n, logits.shape[1], h + ph, w + pw, device=image.device)
            out[:, :, top:top + step, left:left + step] = \
                logits[:, :, margin:margin + step, margin:margin + step].to(image.device)
    return out[:, :, :h, :w]


class RandomTiles:
    """Training batches of random ``tile`` x ``tile`` crops of (image, mask) pairs, augmented
    jointly, for ``labutils.train.fit``: ``steps`` batches of ``batch_size`` per pass.

    ``images`` and ``masks`` are (N, C, H, W) float tensors. Each crop is cut with ``context``
    extra pixels on every side from the slices mirrored at their borders, passed through
    ``augment(tv_tensors.Image, tv_tensors.Mask)`` (e.g. ``joint_augment``), and centre-cropped
    to ``tile``, so that elastic deformation never pulls in empty fill. Crop positions come from
    a generator seeded with ``seed``; the augmentation draws from torch's global generator.
    """

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, *, tile: int, batch_size: int,
                 steps: int, augment=None, context: int = 0, seed: int = 0):
        _check_pairs(images, masks)
        window = tile + 2 * context
        if context < 0 or tile < 1 or window > min(images.shape[-2:]) + 2 * context \
                or context >= min(images.shape[-2:]):
            raise ValueError(f"tile {tile} with context {context} does not fit images of "
                             f"{tuple(images.shape[-2:])}")
        if batch_size < 1 or steps < 1:
            raise ValueError(f"batch_size and steps must be >= 1, got {batch_size}, {steps}")
        pad = (context,) * 4
        self.images = F.pad(images, pad, mode="reflect") if context else images
        self.masks = F.pad(masks, pad, mode="reflect") if context else masks
        self.tile, self.context, self.window = tile, context, window
        self.batch_size, self.steps, self.augment = batch_size, steps, augment
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        from torchvision import tv_tensors

        n, _, h, w = self.images.shape
        c, t = self.context, self.tile
        for _ in range(self.steps):
            xs, ys = [], []
            for _ in range(self.batch_size):
                i = int(torch.randint(n, (1,), generator=self.generator))
                top = int(torch.randint(h - self.window + 1, (1,), generator=self.generator))
                left = int(torch.randint(w - self.window + 1, (1,), generator=self.generator))
                x = self.images[i, :, top:top + self.window, left:left + self.window]
                y = self.masks[i, :, top:top + self.window, left:left + self.window]
                if self.augment is not None:
                    x, y = self.augment(tv_tensors.Image(x), tv_tensors.Mask(y))
                xs.append(x[:, c:c + t, c:c + t].as_subclass(torch.Tensor))
                ys.append(y[:, c:c + t, c:c + t].as_subclass(torch.Tensor))
            yield torch.stack(xs), torch.stack(ys)
