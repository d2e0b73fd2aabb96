"""Head replacement, freezing and parameter groups on torchvision models built without weights;
the offline error for ImageNet weights."""

import pytest
import torch
import torchvision

from labutils.models import LayeredCNN, ThreeBlockCNN, resnet20
from labutils.transfer import (WeightsCorruptError, WeightsMissingError, copy_first_layers,
                               head_of, param_groups, pretrained, replace_head, set_trainable)

BUILDERS = {
    "resnet18": lambda: torchvision.models.resnet18(weights=None),
    "resnet50": lambda: torchvision.models.resnet50(weights=None),
    "squeezenet1_1": lambda: torchvision.models.squeezenet1_1(weights=None),
    "ThreeBlockCNN": lambda: ThreeBlockCNN(),
    "resnet20": lambda: resnet20(),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_replace_head_freeze_and_groups(name):
    torch.manual_seed(0)
    model = BUILDERS[name]()
    size = 32 if name in ("ThreeBlockCNN", "resnet20") else 64
    new = replace_head(model, 2)
    model.eval()
    out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 2)
    trainable = set_trainable(model, [new])
    assert trainable == sum(p.numel() for p in new.parameters())
    assert all(not p.requires_grad for n, p in model.named_parameters()
               if all(p is not q for q in new.parameters()))
    # a linear probe: only the new layer gets gradients
    out = model(torch.randn(2, 3, size, size)).sum()
    out.backward()
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    # full fine-tuning with a smaller rate for the body
    set_trainable(model, [model])
    groups = param_groups(model, head_of(model)[1], body_lr=1e-4, head_lr=1e-2)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert [g["lr"] for g in groups] == [1e-4, 1e-2]
    torch.optim.SGD(groups, lr=0.1)  # accepted by an optimizer


def test_param_groups_rejects_a_foreign_head():
    with pytest.raises(ValueError, match="not part of model"):
        param_groups(ThreeBlockCNN(), torch.nn.Linear(2, 2), body_lr=0.1, head_lr=0.1)


def test_replace_head_checks_the_class_count():
    with pytest.raises(ValueError, match="positive"):
        replace_head(ThreeBlockCNN(), 0)


def test_pretrained_offline_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def no_network(*args, **kwargs):
        raise OSError("no network")

    def announce_then_fail(*args, **kwargs):  # what torch.hub does offline
        print(f"Downloading: to {tmp_path}/checkpoints/x.pth")
        no_network()

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", announce_then_fail)
    with pytest.raises(WeightsMissingError, match="resnet18.*internet.*checkpoints") as err:
        pretrained("resnet18")
    assert "Downloading" not in capsys.readouterr().out
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(ValueError, match="unknown model"):
        pretrained("vgg11")


def test_frozen_parts_keep_their_batch_norm_statistics():
    from labutils.transfer import WithFrozenParts

    torch.manual_seed(0)
    model = resnet20()
    head = replace_head(model, 2)
    set_trainable(model, [head])
    wrapped = WithFrozenParts(model, [model.stem, model.blocks])
    before = model.stem[1].running_mean.clone()
    wrapped.train()
    assert not model.stem.training and not model.blocks.training and model.head.training
    out = wrapped(torch.randn(8, 3, 32, 32) * 3 + 1)
    assert out.shape == (8, 2)
    assert torch.equal(model.stem[1].running_mean, before)
    wrapped.eval()
    assert not model.head.training
    with pytest.raises(ValueError, match="part of model"):
        WithFrozenParts(model, [torch.nn.BatchNorm2d(3)])


@pytest.mark.parametrize("n", [0, 1, 3, 6])
def test_copy_first_layers_copies_exactly_the_first_n(n):
    torch.manual_seed(0)
    source, target = LayeredCNN(num_classes=5, widths=(4, 8, 8)), LayeredCNN(num_classes=5,
                                                                             widths=(4, 8, 8))
    source.train()
    source(torch.randn(8, 3, 32, 32))  # non-default batch-norm statistics in the source
    before = {k: v.clone() for k, v in target.state_dict().items()}
    copied = copy_first_layers(source.layers, target.layers, n)
    assert len(copied) == n and all(c is t for c, t in zip(copied, target.layers))
    for i, (s_layer, t_layer) in enumerate(zip(source.layers, target.layers)):
        for (name, s_value), t_value in zip(s_layer.state_dict().items(),
                                            t_layer.state_dict().values()):
            if i < n:
                assert torch.equal(s_value, t_value), (i, name)
            elif name in ("0.weight", "1.running_mean"):  # conv weights, BN statistics
                assert not torch.equal(s_value, t_value), (i, name)
    for key, value in target.state_dict().items():
        layer = int(key.split(".")[1]) if key.startswith("layers.") else None
        if layer is None or layer >= n:
            assert torch.equal(value, before[key]), key


def test_copy_first_layers_checks_n_and_shapes():
    a, b = LayeredCNN(widths=(4, 8, 8)), LayeredCNN(widths=(4, 8, 16))
    with pytest.raises(ValueError, match="between 0 and 6"):
        copy_first_layers(a.layers, b.layers, 7)
    copy_first_layers(a.layers, b.layers, 4)  # the first four layers have the same shapes
    with pytest.raises(RuntimeError, match="size mismatch"):
        copy_first_layers(a.layers, b.layers, 5)


def test_pretrained_lists_the_weights_names_it_knows():
    with pytest.raises(ValueError, match=r"IMAGENET1K_V1.*DEFAULT"):
        pretrained("resnet18", weights="IMAGENET")


def test_a_corrupt_cached_weights_file_is_reported_as_corrupt(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    cached = tmp_path / "checkpoints" / url.rsplit("/", 1)[-1]
    cached.parent.mkdir()
    cached.write_bytes(b"half a download")

    def load_from_cache(url, *args, **kwargs):  # what torch.hub does with a cached file
        return torch.load(cached)

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", load_from_cache)
    with pytest.raises(WeightsCorruptError, match="corrupt.*Delete that file") as err:
        pretrained("resnet18")
    assert str(cached) in str(err.value)
    assert "not in the" not in str(err.value)


def test_set_trainable_and_replace_head_check_their_arguments():
    model = ThreeBlockCNN()
    with pytest.raises(ValueError, match="part of model"):
        set_trainable(model, [torch.nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="num_classes"):
        replace_head(model, 2.5)


def test_set_trainable_accepts_a_slice_of_the_models_own_layers():
    """model.blocks[6:] is a new Sequential, but its layers (and parameters) are the model's."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    n = set_trainable(model, [model[1:]])
    assert n == 4 * 2 + 2
    assert not model[0].weight.requires_grad and model[2].weight.requires_grad
