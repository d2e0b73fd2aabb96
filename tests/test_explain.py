"""Grad-CAM against captum's LayerGradCam, frozen bodies, and the randomisation check."""

import pytest
import torch
import torchvision
from torch import nn

from labutils.explain import grad_cam, randomized_copy, rank_correlation
from labutils.models import ThreeBlockCNN
from device_spy import first_input_device  # tests/device_spy.py


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


def _inplace_model():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(8, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 4))


@pytest.mark.parametrize("build,name,size", [
    (_inplace_model, "0", 12),                      # conv followed by ReLU(inplace=True)
    (lambda: torchvision.models.resnet18(weights=None, num_classes=5), "layer4", 64),
    (lambda: torchvision.models.resnet18(weights=None, num_classes=5), "layer4.0.bn1", 64),
    (lambda: torchvision.models.resnet18(weights=None, num_classes=5), "layer4.1.bn2", 64),
])
def test_grad_cam_keeps_an_activation_that_is_overwritten_in_place_downstream(build, name, size):
    # bn1 is followed by an in-place ReLU, bn2 by ``out += identity`` and an in-place ReLU
    torch.manual_seed(0)
    model = build().eval()
    layer = model.get_submodule(name)
    x = torch.randn(3, 3, size, size)
    target = torch.tensor([0, 2, 3])
    ours = grad_cam(model, layer, x, target, relu=False)
    from captum.attr import LayerGradCam
    ref = LayerGradCam(model, layer).attribute(x, target=target).squeeze(1).detach()
    assert torch.allclose(ours, ref, atol=1e-5 * ref.abs().max(), rtol=1e-5)
    assert ref.abs().max() > 0


def test_grad_cam_moves_the_input_to_the_models_device():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2)).to("meta")
    x = torch.randn(1, 3, 8, 8)
    assert first_input_device(model[0], lambda: grad_cam(model, model[0], x)).type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_grad_cam_on_a_gpu_model_returns_on_the_inputs_device():
    torch.manual_seed(0)
    model = ThreeBlockCNN().eval()
    x = torch.randn(2, 3, 32, 32)
    cpu = grad_cam(model, model.features[8], x, 1)
    model.cuda()
    gpu = grad_cam(model, model.features[8], x, 1)
    assert gpu.device == x.device
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)


def test_grad_cam_checks_the_target():
    model = ThreeBlockCNN().eval()
    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"target.*\[0, 10\)"):
        grad_cam(model, model.features[8], x, 10)
    with pytest.raises(ValueError, match="one target per image"):
        grad_cam(model, model.features[8], x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="empty batch"):
        grad_cam(model, model.features[8], x[:0])
    with pytest.raises(TypeError, match="floating-point"):
        grad_cam(model, model.features[8], (x * 100).to(torch.uint8))
