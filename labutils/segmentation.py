"""Per-pixel classification: the U-Net, joint augmentation of image and mask, tiled inference
with mirrored borders, and the scores of the ISBI 2012 membrane challenge.

Masks are binary with 1 = the positive class (for the membranes: 1 = membrane, 0 = cell).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------------------
# Scores


def _binary(pred, target) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred).astype(bool), np.asarray(target).astype(bool)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    return pred, target


def binary_scores(pred, target) -> dict[str, float]:
    """Pixel error, Dice (F1) and IoU (Jaccard) of the positive class of two binary masks."""
    pred, target = _binary(pred, target)
    tp = np.sum(pred & target)
    fp, fn = np.sum(pred & ~target), np.sum(~pred & target)
    denom_dice, denom_iou = 2 * tp + fp + fn, tp + fp + fn
    return {"pixel error": float(np.mean(pred != target)),
            "dice": float(2 * tp / denom_dice) if denom_dice else 1.0,
            "iou": float(tp / denom_iou) if denom_iou else 1.0}


def rand_error(pred_membrane, target_membrane, *,
               predicted_membrane: str = "one segment") -> float:
    """The challenge's adapted Rand error of a membrane map against the true one: both are
    turned into cell labellings (connected regions of non-membrane, 4-connectivity) and compared
    with ``skimage.metrics.adapted_rand_error`` (1 - F-score of pixel pairs), ignoring the true
    membrane pixels. A predicted membrane pixel belongs to no cell: ``"singletons"`` (the
    convention of the ISBI challenge's foreground-restricted Rand score in Fiji) makes each one
    a segment of its own; ``"one segment"`` (default, what chapter 8's committed outputs used)
    lumps them all into one segment, which is what passing the labelling with 0 on membranes
    straight to scikit-image does."""
    from skimage.measure import label

    if predicted_membrane not in ("singletons", "one segment"):
        raise ValueError(f"predicted_membrane must be 'singletons' or 'one segment', "
                         f"got {predicted_membrane!r}")
    pred, target = _binary(pred_membrane, target_membrane)
    cells_pred = label(~pred, connectivity=1).astype(np.int64)
    if predicted_membrane == "singletons":
        cells_pred[pred] = cells_pred.max() + 1 + np.arange(int(pred.sum()))
    return cell_rand_error(cells_pred, target)


def cell_rand_error(cells, target_membrane) -> float:
    """The adapted Rand error of a cell labelling (an integer label per pixel, e.g. from
    ``watershed_cells``; equal labels = same cell) against the true membrane map: the true cells
    are the 4-connected regions of non-membrane, true membrane pixels are ignored, and every
    value of ``cells`` (0 included) is a segment. ``skimage.metrics.adapted_rand_error``."""
    from skimage.measure import label
    from skimage.metrics import adapted_rand_error

    cells, target = np.asarray(cells), np.asarray(target_membrane).astype(bool)
    if cells.shape != target.shape:
        raise ValueError(f"cells {cells.shape} and target {target.shape} differ in shape")
    cells_true = label(~target, connectivity=1)   # 0 on membranes: ignored
    # shifted by one so that a label 0 in ``cells`` is a segment like any other
    error, _, _ = adapted_rand_error(cells_true, cells.astype(np.int64) + 1, ignore_labels=(0,))
    return float(error)


def watershed_cells(prob_membrane, threshold: float = 0.5) -> np.ndarray:
    """A cell labelling without membrane pixels from a membrane probability map (H, W): the
    4-connected regions where the probability is below ``threshold`` are the seeds, and a
    watershed on the probability floods the membrane pixels from them, so each membrane pixel
    joins the seed that reaches it over the lowest ridge. A thick predicted membrane then costs
    nothing; a gap in one still merges two cells. Labels 1, 2, ...; one cell if no pixel is
    below ``threshold``."""
    from skimage.measure import label
    from skimage.segmentation import watershed

    prob = np.asarray(prob_membrane, dtype=np.float64)
    if prob.ndim != 2:
        raise ValueError(f"expected one (H, W) probability map, got shape {prob.shape}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    seeds = label(prob < threshold, connectivity=1)
    if seeds.max() == 0:
        return np.ones(prob.shape, np.int64)
    return watershed(prob, seeds).astype(np.int64)


def watershed_rand_error(probs, targets, threshold: float) -> float:
    """Mean over slices of ``cell_rand_error(watershed_cells(prob, threshold), target)``:
    ``probs`` and ``targets`` are stacks of membrane probability maps and true membrane masks,
    (N, H, W) or (N, 1, H, W), arrays or tensors."""
    probs, targets = _stack_2d(probs), _stack_2d(targets)
    if probs.shape != targets.shape:
        raise ValueError(f"probs {probs.shape} and targets {targets.shape} differ in shape")
    return float(np.mean([cell_rand_error(watershed_cells(p, threshold), t)
                          for p, t in zip(probs, targets)]))


def choose_thresholds(probs, targets, *, watershed_thresholds: Iterable[float],
                      pixel_thresholds: Iterable[float]
                      ) -> tuple[float, float, dict[float, float], dict[float, float]]:
    """Two thresholds for membrane probability maps, chosen on slices with known labels:
    the watershed seed threshold with the lowest mean ``watershed_rand_error`` and the
    threshold with the lowest pixel error (share of wrong pixels when probability > t is called
    membrane). ``probs``, ``targets``: (N, H, W) or (N, 1, H, W) stacks, arrays or tensors.
    Returns (watershed threshold, pixel threshold, Rand error by watershed threshold, pixel
    error by threshold); ties go to the smaller threshold. Pass training (or validation)
    slices: thresholds chosen on the test slices make their scores optimistic."""
    # float64: the comparison with a threshold does not depend on the caller's float type
    probs, targets = _stack_2d(probs).astype(np.float64), _stack_2d(targets) > 0.5
    if probs.shape != targets.shape:
        raise ValueError(f"probs {probs.shape} and targets {targets.shape} differ in shape")
    watershed_thresholds, pixel_thresholds = tuple(watershed_thresholds), tuple(pixel_thresholds)
    if not watershed_thresholds or not pixel_thresholds:
        raise ValueError("need at least one watershed and one pixel threshold")
    rand = {float(t): watershed_rand_error(probs, targets, float(t))
            for t in sorted(watershed_thresholds)}
    pixel = {float(t): float(np.mean((probs > t) != targets)) for t in sorted(pixel_thresholds)}
    return min(rand, key=rand.get), min(pixel, key=pixel.get), rand, pixel


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


def _stack_2d(x) -> np.ndarray:
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"expected (N, H, W) or (N, 1, H, W), got shape {x.shape}")
    return x


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, dice_weight: float = 1.0,
                  eps: float = 1.0, pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy on logits plus ``dice_weight`` x (1 - soft Dice) of the positive
    class over the whole batch. Soft Dice = (2 sum(p t) + eps) / (sum(p) + sum(t) + eps) with
    p = sigmoid(logits); ``eps`` keeps it defined on tiles without positives.
    ``pixel_weights`` (same shape): the cross-entropy becomes mean(w * bce) (e.g. the U-Net
    paper's weight map, ``border_weights``); the Dice term is unweighted."""
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ")
    if pixel_weights is not None and pixel_weights.shape != target.shape:
        raise ValueError(f"pixel_weights {tuple(pixel_weights.shape)} and target "
                         f"{tuple(target.shape)} differ")
    target = target.float()
    bce = F.binary_cross_entropy_with_logits(
        logits.float(), target, weight=None if pixel_weights is None else pixel_weights.float())
    p = torch.sigmoid(logits.float())
    dice = (2 * (p * target).sum() + eps) / (p.sum() + target.sum() + eps)
    return bce + dice_weight * (1 - dice)


def border_weights(membrane, *, w0: float = 10.0, sigma: float = 5.0,
                   reach: float = 4.0) -> np.ndarray:
    """The U-Net paper's separation-border weights for a binary membrane mask (H, W):
    1 everywhere, plus ``w0 * exp(-(d1 + d2)**2 / (2 sigma**2))`` on membrane pixels, where d1
    and d2 are the distances to the nearest and the second-nearest cell (connected regions of
    non-membrane, 4-connectivity). Thin membranes between two close cells get the largest
    weights. (The paper also adds a class-balancing term; here the Dice term of
    ``bce_dice_loss`` deals with the imbalance.) Distances beyond ``reach * sigma`` from a cell
    are not computed: the term they would add is below ``w0 * exp(-reach**2 / 2)``."""
    from scipy import ndimage
    from skimage.measure import label

    membrane = np.asarray(membrane).astype(bool)
    if membrane.ndim != 2:
        raise ValueError(f"membrane must be a 2-D mask, got shape {membrane.shape}")
    cells = label(~membrane, connectivity=1)
    d1 = np.full(membrane.shape, np.inf)
    d2 = np.full(membrane.shape, np.inf)
    margin = int(np.ceil(reach * sigma))
    for k, box in enumerate(ndimage.find_objects(cells), start=1):
        if box is None:
            continue
        window = tuple(slice(max(b.start - margin, 0), b.stop + margin) for b in box)
        d = ndimage.distance_transform_edt(cells[window] != k)   # distance to cell k
        a1, a2 = d1[window], d2[window]                            # views: updated in place
        closer = d < a1
        a2[...] = np.where(closer, a1, np.minimum(a2, d))
        a1[...] = np.where(closer, d, a1)
    weights = np.ones(membrane.shape)
    both = membrane & np.isfinite(d2)
    weights[both] += w0 * np.exp(-(d1[both] + d2[both]) ** 2 / (2 * sigma ** 2))
    return weights


def border_weighted_loss(*, w0: float = 10.0, sigma: float = 5.0, dice_weight: float = 1.0):
    """``bce_dice_loss`` with the cross-entropy weighted by ``border_weights`` of each target
    mask (N, 1, H, W), computed on the fly: the weights follow the augmented tiles."""

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        masks = target.detach().float().cpu().numpy()[:, 0] > 0.5
        w = np.stack([border_weights(m, w0=w0, sigma=sigma) for m in masks])[:, None]
        return bce_dice_loss(logits, target, dice_weight=dice_weight,
                             pixel_weights=torch.from_numpy(w).float().to(logits.device))

    return loss


# ---------------------------------------------------------------------------------------------
# The U-Net


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class UNet(nn.Module):
    """U-Net (Ronneberger et al., 2015) with "same" padding and batch norm.

    ``depth`` poolings; widths base, 2 base, ... 2**depth base. The decoder upsamples with 2x2
    transposed convolutions and, with ``skips`` (default), concatenates the encoder's map of the
    same size; ``skips=False`` is the plain encoder-decoder baseline (same layers, the
    decoder's convolutions get only the upsampled map). (N, C, H, W) -> logits (N, K, H, W);
    H and W must be multiples of 2**depth.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 1, *, base: int = 16,
                 depth: int = 4, skips: bool = True):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth, self.skips = depth, skips
        widths = [base * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([_double_conv(in_channels, widths[0])] + [
            _double_conv(widths[i], widths[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in reversed(range(depth))])
        self.merge = nn.ModuleList([_double_conv(widths[i] * (2 if skips else 1), widths[i])
                                    for i in reversed(range(depth))])
        self.out = nn.Conv2d(widths[0], num_classes, 1)

    def deepest_path(self) -> list:
        """The layers of the longest input-to-output path, for
        ``labutils.shapes.receptive_window``: per level two padded 3x3 convolutions and a 2x2
        max-pool of stride 2, the bottleneck's two convolutions, then per level a 2x2 stride-2
        transposed convolution (output o from input o // 2) and two convolutions. The skip
        connections' paths are shorter: their windows lie inside this one's."""
        from labutils.shapes import Layer, Upsample

        conv, d = Layer(3, padding=1), self.depth
        return [conv, conv, Layer(2, stride=2)] * d + [conv, conv] + [Upsample(2), conv, conv] * d

    def forward(self, x):
        multiple = 2 ** self.depth
        if x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise ValueError(f"height and width must be multiples of {multiple}, got "
                             f"{tuple(x.shape[-2:])}; pad or crop the input")
        features = [self.down[0](x)]
        for block in self.down[1:]:
            features.append(block(F.max_pool2d(features[-1], 2)))
        y = features.pop()  # the bottleneck
        for up, merge in zip(self.up, self.merge):
            y = up(y)
            skip = features.pop()
            y = merge(torch.cat([skip, y], dim=1) if self.skips else y)
        return self.out(y)


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
    image in one piece.
    """
    n, c, h, w = image.shape
    step = tile - 2 * margin
    if step < 1:
        raise ValueError(f"tile ({tile}) must be larger than 2 * margin ({2 * margin})")
    # pad to a whole number of steps, then mirror the margin (reflect needs margin < size)
    ph, pw = -h % step, -w % step
    padded = F.pad(image, (0, pw, 0, ph), mode="reflect") if ph or pw else image
    padded = F.pad(padded, (margin,) * 4, mode="reflect")
    out = None
    for top in range(0, h + ph, step):
        for left in range(0, w + pw, step):
            logits = model(padded[:, :, top:top + tile, left:left + tile])
            if out is None:
                out = logits.new_zeros(n, logits.shape[1], h + ph, w + pw)
            out[:, :, top:top + step, left:left + step] = \
                logits[:, :, margin:margin + step, margin:margin + step]
    return out[:, :, :h, :w]


# ---------------------------------------------------------------------------------------------
# Joint augmentation


def _rot90_transform():
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    class RandomRot90(v2.Transform):
        """Rotate every input by the same random multiple of 90 degrees (exact, no resampling)."""

        def make_params(self, flat_inputs):
            return {"k": int(torch.randint(0, 4, ()))}

        def transform(self, inpt, params):
            if not isinstance(inpt, torch.Tensor):
                return inpt
            out = torch.rot90(inpt, params["k"], dims=(-2, -1))
            return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out

    return RandomRot90()


def grid_elastic(points: int = 3, sigma_px: float = 10.0):
    """The U-Net paper's elastic deformation as a transforms v2 transform: random displacement
    vectors on a coarse ``points`` x ``points`` grid over the input (Gaussian, ``sigma_px``
    pixels standard deviation), interpolated bicubically to every pixel. The same field warps
    every input of one call (images bilinearly, ``tv_tensors.Mask`` with nearest neighbours).
    Much cheaper than ``v2.ElasticTransform``, whose dense field is smoothed by a large blur."""
    from torchvision.transforms import v2

    if points < 2 or sigma_px < 0:
        raise ValueError(f"need points >= 2 and sigma_px >= 0, got {points}, {sigma_px}")

    class GridElastic(v2.ElasticTransform):
        def make_params(self, flat_inputs):
            h, w = next(i for i in flat_inputs if isinstance(i, torch.Tensor)).shape[-2:]
            coarse = torch.randn(1, 2, points, points) * sigma_px            # pixels
            field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
            # torchvision's displacement: (1, H, W, 2) as (x, y) in [-1, 1] grid units
            return {"displacement": torch.stack([field[:, 0] * 2 / w, field[:, 1] * 2 / h], -1)}

    return GridElastic()


def joint_augment(*, elastic_alpha: float = 0.0, elastic_sigma: float = 10.0,
                  grid_sigma: float = 0.0, grid_points: int = 3,
                  brightness: float = 0.0, contrast: float = 0.0):
    """A torchvision transforms v2 pipeline applied to ``(image, tv_tensors.Mask)`` together:
    random flips, a random exact multiple of 90 degrees, optional elastic deformation and, for
    the image only, brightness/contrast jitter. Two warps: ``elastic_alpha > 0`` is
    torchvision's dense displacement field smoothed with ``elastic_sigma``; ``grid_sigma > 0``
    the paper's coarse grid (``grid_elastic``). Masks are resampled with nearest neighbours.
    Use it as ``image, mask = augment(tv_tensors.Image(image), tv_tensors.Mask(mask))``;
    randomness comes from torch's global generator (seed it)."""
    from torchvision.transforms import v2

    if elastic_alpha > 0 and grid_sigma > 0:
        raise ValueError("choose one elastic warp: elastic_alpha or grid_sigma")
    steps = [v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(), _rot90_transform()]
    if elastic_alpha > 0:
        steps.append(v2.ElasticTransform(alpha=elastic_alpha, sigma=elastic_sigma))
    if grid_sigma > 0:
        steps.append(grid_elastic(grid_points, grid_sigma))
    if brightness or contrast:  # colour transforms leave tv_tensors.Mask untouched
        steps.append(v2.ColorJitter(brightness=brightness, contrast=contrast))
    return v2.Compose(steps)


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
