import random

import numpy as np
import pytest
import torch

from labutils.device import describe_device, pick_device, seed_everything


def test_pick_device_prefers_accelerators_then_cpu(capsys):
    device = pick_device()
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert device.type == expected
    assert "Using device:" in capsys.readouterr().out


def test_pick_device_respects_env_and_argument(monkeypatch):
    monkeypatch.setenv("LAB_DEVICE", "cpu")
    assert pick_device(verbose=False) == torch.device("cpu")
    assert pick_device("cpu", verbose=False).type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_pick_device_rejects_unavailable_cuda():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        pick_device("cuda", verbose=False)


def test_describe_cpu_names_threads():
    assert describe_device(torch.device("cpu")) == f"cpu ({torch.get_num_threads()} threads)"


def draws():
    return random.random(), np.random.rand(), torch.rand(3).tolist()


def test_seed_everything_reproduces_all_generators():
    rng1 = seed_everything(123)
    first, g1 = draws(), rng1.random()
    rng2 = seed_everything(123)
    assert draws() == first and rng2.random() == g1
    seed_everything(124)
    assert draws() != first


def test_seed_everything_deterministic_flag():
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        seed_everything(0)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("bad", [-1, 1.5, "7"])
def test_seed_everything_rejects_bad_seed(bad):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(bad)


@pytest.mark.parametrize("bad", ["gpu", "cuda0", "tpu", "meta"])
def test_pick_device_names_lab_device_and_its_choices(monkeypatch, bad):
    monkeypatch.setenv("LAB_DEVICE", bad)
    with pytest.raises(ValueError, match=rf"LAB_DEVICE={bad!r}.*'cpu'.*'cuda'.*'cuda:N'.*'mps'"):
        pick_device(verbose=False)
    monkeypatch.delenv("LAB_DEVICE")
    with pytest.raises(ValueError, match=rf"prefer={bad!r}.*'cpu'"):
        pick_device(bad, verbose=False)


def test_pick_device_accepts_spacing_and_case(monkeypatch):
    monkeypatch.setenv("LAB_DEVICE", " CPU ")
    assert pick_device(verbose=False) == torch.device("cpu")


def test_pick_device_rejects_a_gpu_index_that_does_not_exist():
    with pytest.raises(RuntimeError, match="cuda:99.*not available"):
        pick_device("cuda:99", verbose=False)


def test_seed_everything_accepts_numpy_integers():
    rng = seed_everything(np.int64(5))
    first = draws(), rng.random()
    rng = seed_everything(5)
    assert (draws(), rng.random()) == first


@pytest.mark.parametrize("bad", [True, 2 ** 32, np.float64(3.0)])
def test_seed_everything_rejects_bools_and_seeds_numpy_cannot_take(bad):
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*32\)"):
        seed_everything(bad)


def test_cpu_model_reads_the_model_name_line():
    from labutils.device import _cpu_model_from

    intel = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)  Processor\n"
    assert _cpu_model_from(intel) == "Intel(R) Xeon(R) Processor"   # spacing normalised
    assert _cpu_model_from("processor: 0\nmodel name\t: AMD EPYC 9R14 96-Core Processor\n"
                           "model name\t: other\n") == "AMD EPYC 9R14 96-Core Processor"
    assert _cpu_model_from("processor\t: 0\nflags\t: fpu sse\n") == ""
    assert _cpu_model_from("model name\t:   \n") == ""


def test_cpu_model_falls_back_when_cpuinfo_is_missing(monkeypatch):
    import platform

    import labutils.device as device

    monkeypatch.setattr(device, "_read_cpuinfo", lambda: "")
    monkeypatch.setattr(platform, "processor", lambda: "arm")
    assert device.cpu_model() == "arm"
    monkeypatch.setattr(platform, "processor", lambda: "")
    assert device.cpu_model() == "unknown"
