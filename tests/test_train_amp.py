"""Mixed precision on GPUs without one: the dtype choice (faked compute capability), the
float16 + GradScaler path run on the CPU, cuDNN autotuning, and models on the wrong device."""

import warnings

import pytest
import torch
from torch import nn

import labutils.train.amp as amp
from labutils.train import evaluate, fit, train_one_epoch

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture
def gpu(monkeypatch):
    """A fake CUDA GPU whose compute capability the test sets; bf16 'supported' as on a T4."""
    monkeypatch.delenv(amp.AMP_DTYPE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)

    def set_capability(major, minor):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, minor))
    return set_capability


@pytest.mark.parametrize("capability, dtype", [((7, 0), torch.float16),   # V100
                                               ((7, 5), torch.float16),   # T4 (emulates bf16)
                                               ((8, 0), torch.bfloat16),  # A100
                                               ((8, 9), torch.bfloat16),  # L4
                                               ((9, 0), torch.bfloat16)])  # H100
def test_amp_dtype_follows_the_compute_capability_not_is_bf16_supported(gpu, capability, dtype):
    gpu(*capability)
    assert amp.amp_dtype(CUDA) == dtype
    assert amp.amp_dtype(torch.device("cuda", 0)) == dtype
    assert amp.dtype_name(CUDA, True) == str(dtype).removeprefix("torch.")
    assert amp.dtype_name(CUDA, False) is None


def test_the_cpu_keeps_bfloat16_whatever_the_gpu_or_the_variable(gpu, monkeypatch):
    gpu(7, 5)
    monkeypatch.setenv(amp.AMP_DTYPE_ENV, "float16")
    assert amp.amp_dtype(CPU) == torch.bfloat16
    assert amp.grad_scaler(CPU, True) is None


def test_lab_amp_dtype_forces_the_cuda_dtype(gpu, monkeypatch):
    gpu(9, 0)
    monkeypatch.setenv(amp.AMP_DTYPE_ENV, "float16")
    assert amp.amp_dtype(CUDA) == torch.float16
    monkeypatch.setenv(amp.AMP_DTYPE_ENV, " BFloat16 ")
    gpu(7, 5)
    assert amp.amp_dtype(CUDA) == torch.bfloat16
    monkeypatch.setenv(amp.AMP_DTYPE_ENV, "fp8")
    with pytest.raises(ValueError, match="LAB_AMP_DTYPE='fp8'.*'float16' or 'bfloat16'"):
        amp.amp_dtype(CUDA)


def test_grad_scaler_only_where_autocast_runs_in_float16(gpu):
    gpu(7, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available. Disabling" on this machine
        assert isinstance(amp.grad_scaler(CUDA, True), torch.amp.GradScaler)
    assert amp.grad_scaler(CUDA, False) is None
    gpu(8, 0)
    assert amp.grad_scaler(CUDA, True) is None


def _pair():
    torch.manual_seed(0)
    a = nn.Linear(4, 1)
    b = nn.Linear(4, 1)
    b.load_state_dict(a.state_dict())
    return a, b


def test_backward_step_through_a_scaler_takes_the_unscaled_step():
    plain, scaled = _pair()
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    for model, s in ((plain, None), (scaled, scaler)):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        amp.backward_step(nn.functional.mse_loss(model(x), y), opt, s)
    for p, q in zip(plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(q, p)
    assert scaler.get_scale() == 1024.0  # one good step: unchanged (grows after 2,000)


def test_backward_step_skips_a_step_with_inf_gradients_and_lowers_the_scale():
    model, _ = _pair()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    loss = model(torch.full((2, 4), float("inf"))).sum()
    amp.backward_step(loss, opt, scaler)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert scaler.get_scale() == 512.0


class _RecordingScaler:
    """Stands in for a GradScaler: records the calls in order."""

    def __init__(self):
        self.calls = []

    def scale(self, loss):
        self.calls.append("scale")
        return loss * 8

    def unscale_(self, optimizer):
        self.calls.append("unscale_")

    def step(self, optimizer):
        self.calls.append("step")
        optimizer.step()

    def update(self):
        self.calls.append("update")


def test_train_one_epoch_scales_steps_and_updates_through_the_scaler():
    model = nn.Linear(3, 2)
    data = [(torch.randn(4, 3), torch.randint(0, 2, (4,))) for _ in range(3)]
    scaler = _RecordingScaler()
    train_one_epoch(model, data, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), 0.1),
                    CPU, scaler=scaler)
    assert scaler.calls == ["scale", "step", "update"] * 3


def test_fit_runs_the_float16_path_with_a_grad_scaler(monkeypatch):
    # The T4's path on the CPU: autocast in float16 and a GradScaler("cpu") made by fit.
    monkeypatch.setattr(amp, "amp_dtype", lambda device: torch.float16)
    made = []
    real = torch.amp.GradScaler

    def spy(device_type, *args, **kwargs):
        made.append(real(device_type, *args, **kwargs))
        return made[-1]
    monkeypatch.setattr(torch.amp, "GradScaler", spy)
    torch.manual_seed(0)
    x = torch.randn(128, 6)
    y = (x[:, 0] > 0).long()
    data = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 128, 32)]
    seen = []

    class Net(nn.Linear):
        def forward(self, inputs):
            out = super().forward(inputs)
            seen.append(out.dtype)
            return out
    model = Net(6, 2)
    h = fit(model, data, data, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), 0.5),
            epochs=5, device=CPU, amp=True, progress=False, verbose=False)
    assert h.amp_dtype == "float16"
    assert set(seen) == {torch.float16} and model.weight.dtype == torch.float32
    assert len(made) == 1 and made[0].get_scale() > 0  # one scaler for the whole run
    assert h.train_loss[-1] < 0.7 * h.train_loss[0]


def test_cudnn_benchmark_on_for_cuda_training_and_restored(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    with amp._cudnn_benchmark(CUDA):
        assert torch.backends.cudnn.benchmark
    assert not torch.backends.cudnn.benchmark
    with amp._cudnn_benchmark(CPU):
        assert not torch.backends.cudnn.benchmark
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)
    with amp._cudnn_benchmark(CUDA):
        assert not torch.backends.cudnn.benchmark  # autotuning would pick other algorithms


def test_fit_restores_cudnn_benchmark_even_after_an_error(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    model = nn.Linear(2, 1)
    data = [(torch.randn(4, 2), torch.full((4, 1), float("nan")))]
    with pytest.raises(FloatingPointError):
        fit(model, data, None, nn.MSELoss(), torch.optim.SGD(model.parameters(), 0.1), epochs=1,
            device=CPU, amp=False, progress=False, verbose=False)
    assert not torch.backends.cudnn.benchmark


def test_a_model_on_another_device_than_device_is_a_clear_error():
    model = nn.Linear(2, 1, device="meta")
    data = [(torch.randn(4, 2), torch.randn(4, 1))]
    opt = torch.optim.SGD(model.parameters(), 0.1)
    with pytest.raises(ValueError, match=r"model is on meta but device=cpu.*model.to\(device\)"):
        train_one_epoch(model, data, nn.MSELoss(), opt, CPU)
    with pytest.raises(ValueError, match="model is on meta"):
        evaluate(model, data, nn.MSELoss(), CPU)
    with pytest.raises(ValueError, match="model is on meta"):
        fit(model, data, None, nn.MSELoss(), opt, epochs=1, device=CPU, progress=False)


def test_the_batches_reach_the_model_on_device():
    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(1, device="meta"))
            self.seen = []

        def forward(self, x):
            self.seen.append(x.device.type)
            return x  # stays on meta

    model = Spy()
    data = [(torch.randn(4, 2), torch.randn(4, 2))]
    with pytest.raises(Exception):  # the loss cannot be read back from 'meta'
        evaluate(model, data, nn.MSELoss(), torch.device("meta"))
    assert model.seen == ["meta"]
