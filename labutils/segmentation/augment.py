"""Joint image/mask augmentation (transforms v2), with the paper's coarse-grid elastic warp."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
