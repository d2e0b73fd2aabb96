"""Grad-CAM against captum's LayerGradCam, frozen bodies, and the randomisation check."""

import pytest
import torch
import torchvision
from torch import nn

from labutils.explain import grad_cam, randomized_copy, rank_correlation
from labutils.models import ThreeBlockCNN


def _reference(model, layer, x, target):
    from captum.attr import LayerGradCam

    return LayerGradCam(model, layer).attribute(x, target=target,
                                                relu_attributions=True).squeeze(1)


@pytest.mark.parametrize("build,layer_of,size", [
    (lambda: ThreeBlockCNN(), lambda m: m.features[8], 32),            # conv of block 3
    (lambda: torchvision.models.resnet18(weights=None, num_classes=5), lambda m: m.layer4, 64),
])
def test_grad_cam_matches_captum(build, layer_of, size):
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(3, 3, size, size)
    target = torch.tensor([0, 2, 4])
    ours = grad_cam(model, layer_of(model), x, target)
    ref = _reference(model, layer_of(model), x, target)
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, atol=1e-5, rtol=1e-5)
    assert (ours >= 0).all() and ours.abs().sum() > 0


def test_grad_cam_default_target_is_the_prediction_and_size_resizes():
    torch.manual_seed(0)
    model = ThreeBlockCNN().eval()
    x = torch.randn(2, 3, 32, 32)
    pred = model(x).argmax(1)
    layer = model.features[8]
    assert torch.allclose(grad_cam(model, layer, x), grad_cam(model, layer, x, pred))
    assert grad_cam(model, model.features[8], x, size=(32, 32)).shape == (2, 32, 32)


def test_grad_cam_works_on_a_frozen_body_and_inside_no_grad():
    torch.manual_seed(0)
    model = ThreeBlockCNN().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():  # the trap: no graph would be built; grad_cam enables it itself
        cam = grad_cam(model, model.features[8], x, 1)
    for p in model.parameters():
        p.requires_grad_(True)
    assert torch.allclose(cam, grad_cam(model, model.features[8], x, 1), atol=1e-6)


def test_grad_cam_rejects_foreign_layers_and_bad_inputs():
    model = ThreeBlockCNN().eval()
    with pytest.raises(ValueError, match="submodule"):
        grad_cam(model, nn.Conv2d(3, 3, 1), torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="N, C, H, W"):
        grad_cam(model, model.features[8], torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match="feature maps"):
        grad_cam(model, model.classifier[1], torch.randn(1, 3, 32, 32))


def test_randomized_model_gives_different_maps():
    torch.manual_seed(0)
    model = ThreeBlockCNN().eval()
    x = torch.randn(4, 3, 32, 32)
    cam = grad_cam(model, model.features[8], x, 3, relu=False)
    clone = randomized_copy(model, seed=1).eval()
    layers = [(a, b) for a, b in zip(model.modules(), clone.modules())
              if isinstance(a, (nn.Conv2d, nn.Linear))]
    assert layers and all(not torch.equal(a.weight, b.weight) for a, b in layers)
    cam_random = grad_cam(clone, clone.features[8], x, 3, relu=False)
    assert rank_correlation(cam, cam) == pytest.approx(1.0)
    assert rank_correlation(cam, cam_random) < 0.9
