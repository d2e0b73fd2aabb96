import pytest
import torch
from torch import nn

from labutils.metrics import count_parameters
from labutils.models import (BasicBlock, CifarResNet, LayeredCNN, LeNet5, MiniVGG, ThreeBlockCNN,
                             TinyCNN, resnet20, resnet32, resnet56)


@pytest.mark.parametrize("cls,params", [(LeNet5, 61_706), (MiniVGG, 123_502), (TinyCNN, 20_490)])
def test_parameter_counts_match_the_sources(cls, params):
    assert count_parameters(cls()) == params


@pytest.mark.parametrize("cls", [LeNet5, MiniVGG, TinyCNN])
@pytest.mark.parametrize("classes", [10, 3])
def test_output_shapes(cls, classes):
    model = cls(num_classes=classes)
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, classes)


def test_lenet_feature_shapes():
    x = torch.zeros(2, 1, 28, 28)
    shapes = []
    for layer in LeNet5().features:
        x = layer(x)
        if isinstance(layer, nn.MaxPool2d):
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(6, 14, 14), (16, 5, 5)]


@pytest.mark.parametrize("cls", [LeNet5, MiniVGG])
def test_wrong_input_size_fails_loudly(cls):
    with pytest.raises(RuntimeError):
        cls()(torch.zeros(1, 1, 32, 32))


def test_models_can_learn_one_batch():
    torch.manual_seed(0)
    for cls in (LeNet5, MiniVGG):
        model = cls()
        x, y = torch.randn(10, 1, 28, 28), torch.arange(10)
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        first = None
        for _ in range(60):
            loss = nn.functional.cross_entropy(model(x), y)
            first = first if first is not None else loss.item()
            opt.zero_grad(); loss.backward(); opt.step()
        assert loss.item() < 0.2 * first


# Parameter counts of the CIFAR ResNets with option-A shortcuts as published by independent
# implementations (e.g. akamaster/pytorch_resnet_cifar10): 0.27M, 0.46M, 0.85M.
@pytest.mark.parametrize("build,params", [(resnet20, 269_722), (resnet32, 464_154),
                                          (resnet56, 853_018)])
def test_cifar_resnet_parameter_counts(build, params):
    model = build()
    assert sum(p.numel() for p in model.parameters()) == params
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet_shortcut_options_and_plain_variant():
    x = torch.randn(2, 3, 32, 32)
    projection = resnet20(shortcut="B")
    # Option B adds two 1x1 projections with batch norm: 16*32 + 2*32 and 32*64 + 2*64.
    extra = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert sum(p.numel() for p in projection.parameters()) == 269_722 + extra
    plain = resnet20(plain=True)
    assert sum(p.numel() for p in plain.parameters()) == 269_722
    torch.manual_seed(0)
    a = resnet20()
    torch.manual_seed(0)
    b = resnet20(plain=True)
    a.eval(), b.eval()
    assert not torch.allclose(a(x), b(x))  # the shortcut changes the function
    with pytest.raises(ValueError, match="6n \\+ 2"):
        CifarResNet(21)
    with pytest.raises(ValueError, match="shortcut"):
        resnet20(shortcut="C")


def test_zero_pad_shortcut_matches_its_definition():
    block = BasicBlock(16, 32, stride=2, shortcut="A")
    x = torch.randn(2, 16, 8, 8)
    s = block.shortcut(x)
    assert s.shape == (2, 32, 4, 4)
    assert torch.equal(s[:, 8:24], x[:, :, ::2, ::2]) and s[:, :8].abs().sum() == 0


def test_three_block_cnn_shapes():
    model = ThreeBlockCNN()
    # convs: 3*32*9 + 32*64*9 + 64*128*9 (no bias), BN: 2*(32+64+128), head: 2048*128+128 + 1290
    want = 3 * 32 * 9 + 32 * 64 * 9 + 64 * 128 * 9 + 2 * (32 + 64 + 128) + 2048 * 128 + 128 + 1290
    assert sum(p.numel() for p in model.parameters()) == want
    assert model.features(torch.randn(2, 3, 32, 32)).shape == (2, 128, 4, 4)


def test_lenet_on_32x32_colour_images_is_the_original_layout():
    net = LeNet5(in_channels=3, input_size=32)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert net.features[0].padding == (0, 0)
    # same weights as the padded version except the first conv's 3 input channels
    assert count_parameters(net) == 61_706 + 2 * 6 * 5 * 5
    with pytest.raises(ValueError, match="input_size"):
        LeNet5(input_size=30)


def test_layered_cnn_layers_and_parameters():
    widths = (8, 16, 32)
    model = LayeredCNN(num_classes=5, widths=widths)
    assert len(model.layers) == 6
    x = torch.zeros(2, 3, 32, 32)
    sizes = []
    for layer in model.layers:
        x = layer(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(8, 32, 32), (8, 16, 16), (16, 16, 16), (16, 8, 8), (32, 8, 8), (32, 4, 4)]
    # conv weights (no bias) + BN scale and shift per layer, then the linear head
    ins, outs = (3, 8, 8, 16, 16, 32), (8, 8, 16, 16, 32, 32)
    expected = sum(9 * i * o + 2 * o for i, o in zip(ins, outs)) + 32 * 5 + 5
    assert count_parameters(model) == expected
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
