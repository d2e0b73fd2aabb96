import pytest
import torch
from torch import nn

from labutils.metrics import count_parameters
from labutils.models import LeNet5, MiniVGG, TinyCNN


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
