"""The NumPy layers against finite differences (float64) and against PyTorch autograd."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labutils import nplayers as npl
from labutils.gradcheck import check_backward, numerical_gradient, relative_error

TOL = 1e-7
CONV_CASES = [  # (N, C, H, W, F, k, stride, pad)
    (2, 3, 7, 7, 4, 3, 1, 0), (2, 3, 7, 7, 4, 3, 2, 1), (1, 2, 8, 6, 3, 2, 2, 0),
    (3, 1, 5, 5, 2, 5, 1, 2), (2, 4, 9, 9, 3, 3, 3, 1), (1, 1, 4, 4, 1, 1, 1, 0),
]


def conv_inputs(case, seed=0):
    n, c, h, w, f, k, s, p = case
    rng = np.random.default_rng(seed)
    return ({"x": rng.standard_normal((n, c, h, w)), "w": rng.standard_normal((f, c, k, k)),
             "b": rng.standard_normal(f)}, s, p)


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("impl", ["im2col", "loops"])
def test_conv_gradients_match_finite_differences(case, impl):
    inputs, s, p = conv_inputs(case)
    fwd, bwd = ((npl.conv_forward, npl.conv_backward) if impl == "im2col"
                else (npl.conv_forward_loops, npl.conv_backward_loops))
    errors = check_backward(fwd, bwd, inputs, stride=s, pad=p)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_matches_pytorch_forward_and_backward(case):
    inputs, s, p = conv_inputs(case, seed=1)
    out, cache = npl.conv_forward(**inputs, stride=s, pad=p)
    loops, _ = npl.conv_forward_loops(**inputs, stride=s, pad=p)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in inputs.items()}
    ref = F.conv2d(t["x"], t["w"], t["b"], stride=s, padding=p)
    dout = np.random.default_rng(2).standard_normal(out.shape)
    ref.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loops, out, rtol=1e-10, atol=1e-12)
    for mine, name in zip(npl.conv_backward(dout, cache), "xwb"):
        np.testing.assert_allclose(mine, t[name].grad.numpy(), rtol=1e-10, atol=1e-12)


def test_im2col_and_col2im_are_adjoint():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 7))
    cols = npl.im2col(x, 3, 3, stride=2, pad=1)
    y = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * y)
    rhs = np.sum(x * npl.col2im(y, x.shape, 3, 3, stride=2, pad=1))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize("size,stride", [(2, 2), (3, 2), (2, 1), (3, 3)])
def test_pooling_gradients_and_pytorch(size, stride):
    rng = np.random.default_rng(size * 10 + stride)
    x = rng.standard_normal((2, 3, 9, 8))
    for fwd, bwd, ref in [(npl.maxpool_forward, npl.maxpool_backward, F.max_pool2d),
                          (npl.avgpool_forward, npl.avgpool_backward, F.avg_pool2d)]:
        assert check_backward(fwd, bwd, {"x": x}, size=size, stride=stride)["x"] < TOL
        out, cache = fwd(x, size=size, stride=stride)
        xt = torch.tensor(x, requires_grad=True)
        expected = ref(xt, size, stride)
        dout = rng.standard_normal(out.shape)
        expected.backward(torch.tensor(dout))
        np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(bwd(dout, cache), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_relu_linear_and_flatten_gradients():
    rng = np.random.default_rng(3)
    assert check_backward(npl.relu_forward, npl.relu_backward, {"x": rng.standard_normal((3, 4, 5))})["x"] < TOL
    lin = {"x": rng.standard_normal((5, 6)), "w": rng.standard_normal((6, 3)), "b": rng.standard_normal(3)}
    assert max(check_backward(npl.linear_forward, npl.linear_backward, lin).values()) < TOL
    flat = npl.Flatten()
    x = rng.standard_normal((2, 3, 4, 4))
    assert flat.forward(x).shape == (2, 48) and flat.backward(np.ones((2, 48))).shape == x.shape


def test_softmax_cross_entropy_matches_pytorch_and_is_stable():
    rng = np.random.default_rng(4)
    logits, y = rng.standard_normal((6, 5)) * 3, rng.integers(0, 5, 6)
    loss, grad = npl.softmax_cross_entropy(logits, y)
    lt = torch.tensor(logits, requires_grad=True)
    ref = F.cross_entropy(lt, torch.tensor(y))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(grad, lt.grad.numpy(), rtol=1e-10, atol=1e-14)
    numeric = numerical_gradient(lambda z: npl.softmax_cross_entropy(z, y)[0], logits.copy(), h=1e-5)
    assert relative_error(grad, numeric) < 1e-6  # smooth function: O(h^2) truncation
    huge, _ = npl.softmax_cross_entropy(np.array([[1000.0, 0.0]]), np.array([1]))
    assert np.isfinite(huge) and huge == pytest.approx(1000.0)


def test_l2_penalty_gradient():
    w = np.random.default_rng(5).standard_normal((3, 4))
    _, grad = npl.l2_penalty(w, 0.1)
    assert relative_error(grad, numerical_gradient(lambda v: npl.l2_penalty(v, 0.1)[0], w.copy())) < TOL


def test_a_broken_backward_is_caught():
    def broken_conv_backward(dout, cache):
        dx, dw, db = npl.conv_backward(dout, cache)
        return dx, dw[:, :, ::-1, ::-1], db  # forgot that correlation does not flip the kernel

    inputs, s, p = conv_inputs(CONV_CASES[1])
    errors = check_backward(npl.conv_forward, broken_conv_backward, inputs, stride=s, pad=p)
    assert errors["x"] < TOL and errors["w"] > 1e-2


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="channels"):
        npl.conv_forward(np.zeros((1, 3, 5, 5)), np.zeros((2, 2, 3, 3)), np.zeros(2))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        npl.conv_forward(np.zeros((3, 5, 5)), np.zeros((2, 3, 3, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="expected x"):
        npl.linear_forward(np.zeros((2, 5)), np.zeros((4, 3)), np.zeros(3))
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda v: 0.0, np.zeros(3, dtype=np.float32))


def test_momentum_sgd_matches_pytorch():
    rng = np.random.default_rng(6)
    layer = npl.Linear(3, 2, rng=rng, dtype=np.float64)
    model = npl.Sequential(layer)
    opt = npl.MomentumSGD(model, lr=0.1, momentum=0.9)
    wt = torch.tensor(layer.params["w"], requires_grad=True)
    topt = torch.optim.SGD([wt], lr=0.1, momentum=0.9)
    for lr in (0.1, 0.1, 0.05, 0.01):  # a schedule: lr changes between steps
        opt.lr = lr
        topt.param_groups[0]["lr"] = lr
        g = rng.standard_normal((3, 2))
        layer.grads = {"w": g, "b": np.zeros(2)}
        opt.step()
        wt.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(layer.params["w"], wt.detach().numpy(), rtol=1e-12)


def test_numpy_cnn_learns_real_digits(real_data):
    from labutils.data import load_tensors

    images, labels = load_tensors("mnist", "train")
    x = (images[:1200].numpy().astype(np.float32) / 255 - 0.1307) / 0.3081
    y = labels[:1200].numpy()
    rng = np.random.default_rng(0)
    model = npl.Sequential(npl.Conv2d(1, 4, 5, rng=rng, pad=2), npl.ReLU(), npl.MaxPool2d(2),
                           npl.Flatten(), npl.Linear(4 * 14 * 14, 10, rng=rng), l2=1e-4)
    opt = npl.MomentumSGD(model, lr=0.02, momentum=0.9)
    losses = []
    for epoch in range(3):
        for i in range(0, 1000, 50):
            loss, _ = model.loss(x[i:i + 50], y[i:i + 50])
            opt.step()
            losses.append(loss)
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert (model.predict(x[1000:]) == y[1000:]).mean() > 0.8


def test_relative_error_is_scale_relative():
    assert relative_error(np.array([1.0, 1e-9]), np.array([1.0, 2e-9])) < 1e-9
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 3.0])) == pytest.approx(0.2)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0


# ---------------------------------------------------------------------------------------------
# Bad input: a clear error, never a silently wrong answer (issue 9)

@pytest.mark.parametrize("bad", [-1, 5, 7])
def test_cross_entropy_rejects_out_of_range_targets(bad):
    logits = np.zeros((2, 5))
    with pytest.raises(IndexError):  # PyTorch refuses them too
        F.cross_entropy(torch.tensor(logits), torch.tensor([0, bad]))
    with pytest.raises(ValueError, match=rf"\[0, 5\).*{bad}"):
        npl.softmax_cross_entropy(logits, np.array([0, bad]))


def test_cross_entropy_rejects_non_integer_targets():
    with pytest.raises(TypeError, match="integer class indices.*float64"):
        npl.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))


@pytest.mark.parametrize("impl", [npl.conv_forward, npl.conv_forward_loops])
@pytest.mark.parametrize("bias_shape", [(1,), (3,), (5,), (4, 1), ()])
def test_conv_rejects_a_bias_of_the_wrong_shape(impl, bias_shape):
    x, w = np.zeros((1, 2, 5, 5)), np.zeros((4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"b \(4,\).*" + re.escape(str(bias_shape))):
        impl(x, w, np.zeros(bias_shape), stride=1, pad=0)


BAD_CONV_ARGS = [  # (x shape, w shape, stride, pad, message)
    ((1, 2, 5, 5), (4, 3, 3, 3), 1, 0, "channels"),
    ((2, 5, 5), (4, 2, 3, 3), 1, 0, r"\(N, C, H, W\)"),
    ((1, 2, 5, 5), (4, 2, 3), 1, 0, r"\(F, C, kH, kW\)"),
    ((1, 2, 5, 5), (4, 2, 3, 3), 0, 0, "stride"),
    ((1, 2, 5, 5), (4, 2, 3, 3), -1, 0, "stride"),
    ((1, 2, 5, 5), (4, 2, 3, 3), 1, -1, "padding"),
    ((1, 2, 5, 5), (4, 2, 3, 3), 1.5, 0, "stride"),
    ((1, 2, 9, 2), (4, 2, 3, 3), 1, 0, "does not fit"),  # too narrow, tall enough
    ((1, 2, 2, 9), (4, 2, 3, 3), 1, 0, "does not fit"),
]


@pytest.mark.parametrize("impl", [npl.conv_forward, npl.conv_forward_loops])
@pytest.mark.parametrize("xs,ws,s,p,msg", BAD_CONV_ARGS)
def test_both_convolutions_reject_the_same_bad_arguments(impl, xs, ws, s, p, msg):
    with pytest.raises(ValueError, match=msg):
        impl(np.zeros(xs), np.zeros(ws), np.zeros(ws[0]), stride=s, pad=p)


@pytest.mark.parametrize("impl", ["im2col", "loops"])
def test_both_convolutions_treat_integer_input_the_same(impl):
    fwd = npl.conv_forward if impl == "im2col" else npl.conv_forward_loops
    x = np.arange(2 * 1 * 4 * 4).reshape(2, 1, 4, 4)  # int64, e.g. raw uint8 pixels cast up
    w, b = np.ones((2, 1, 3, 3)), np.zeros(2)
    with pytest.raises(TypeError, match=r"floating-point.*x is int64.*astype"):
        fwd(x, w, b)
    with pytest.raises(TypeError, match=r"floating-point.*w is int64"):
        fwd(x.astype(float), w.astype(np.int64), b)


def test_conv_backward_loops_and_im2col_agree_on_mixed_float_dtypes():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    w, b = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)  # float64
    results = []
    for fwd, bwd in [(npl.conv_forward, npl.conv_backward),
                     (npl.conv_forward_loops, npl.conv_backward_loops)]:
        out, cache = fwd(x, w, b, stride=2, pad=1)
        results.append((out, *bwd(np.ones_like(out), cache)))
    for a, c in zip(*results):
        assert a.dtype == c.dtype and a.shape == c.shape
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fwd", [npl.maxpool_forward, npl.avgpool_forward])
@pytest.mark.parametrize("kwargs,msg", [
    (dict(size=2, stride=0), "stride"), (dict(size=2, stride=-1), "stride"),
    (dict(size=0), "kernel"), (dict(size=2.0), "kernel"), (dict(size=2, stride=1.5), "stride"),
])
def test_pooling_validates_size_and_stride(fwd, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        fwd(np.zeros((1, 1, 6, 6)), **kwargs)


@pytest.mark.parametrize("fwd", [npl.maxpool_forward, npl.avgpool_forward])
def test_pooling_window_wider_than_the_input_is_a_clear_error(fwd):
    with pytest.raises(ValueError, match="does not fit an input of 2"):
        fwd(np.zeros((1, 1, 8, 2)), size=3)
    with pytest.raises(ValueError, match="does not fit an input of 2"):
        fwd(np.zeros((1, 1, 2, 8)), size=3)
    out, _ = fwd(np.zeros((1, 1, 8, 3)), size=3, stride=1)  # exactly as wide: fits
    assert out.shape == (1, 1, 6, 1)


def test_pooling_on_non_square_inputs_matches_pytorch():
    x = np.random.default_rng(8).standard_normal((1, 2, 9, 5))
    for fwd, ref in [(npl.maxpool_forward, F.max_pool2d), (npl.avgpool_forward, F.avg_pool2d)]:
        out, _ = fwd(x, size=3, stride=2)
        np.testing.assert_allclose(out, ref(torch.tensor(x), 3, 2).numpy(), rtol=1e-12)


def test_im2col_and_col2im_validate_their_arguments():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="stride"):
        npl.im2col(x, 2, 2, stride=0)
    with pytest.raises(ValueError, match=r"cols.*\(9, 4\).*\(8, 4\)"):
        npl.col2im(np.zeros((8, 4)), x.shape, 2, 2)


BACKWARD_CASES = [  # (name, forward, backward, inputs, kwargs)
    ("conv", npl.conv_forward, npl.conv_backward,
     dict(x=np.zeros((1, 1, 5, 7)), w=np.zeros((2, 1, 3, 3)), b=np.zeros(2)), {}),
    ("conv loops", npl.conv_forward_loops, npl.conv_backward_loops,
     dict(x=np.zeros((1, 1, 5, 7)), w=np.zeros((2, 1, 3, 3)), b=np.zeros(2)), {}),
    ("max pool", npl.maxpool_forward, npl.maxpool_backward, dict(x=np.zeros((1, 2, 4, 8))), {}),
    ("avg pool", npl.avgpool_forward, npl.avgpool_backward, dict(x=np.zeros((1, 2, 4, 8))), {}),
    ("relu", npl.relu_forward, npl.relu_backward, dict(x=np.zeros((3, 4))), {}),
    ("linear", npl.linear_forward, npl.linear_backward,
     dict(x=np.zeros((3, 4)), w=np.zeros((4, 2)), b=np.zeros(2)), {}),
]


@pytest.mark.parametrize("name,fwd,bwd,inputs,kwargs", BACKWARD_CASES)
def test_backward_rejects_an_upstream_gradient_of_the_wrong_shape(name, fwd, bwd, inputs, kwargs):
    out, cache = fwd(**inputs, **kwargs)
    wrong = np.zeros(out.shape[:-2] + out.shape[-2:][::-1]) if out.ndim == 4 else np.zeros((out.shape[0], 1))
    with pytest.raises(ValueError, match=rf"dout.*{re.escape(str(out.shape))}"):
        bwd(wrong, cache)


def test_linear_rejects_a_bias_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"b \(3,\)"):
        npl.linear_forward(np.zeros((2, 4)), np.zeros((4, 3)), np.zeros(1))


def test_momentum_sgd_step_before_backward_is_a_clear_error():
    model = npl.Sequential(npl.Linear(3, 2, rng=np.random.default_rng(0)))
    with pytest.raises(RuntimeError, match="model.loss"):
        npl.MomentumSGD(model, lr=0.1).step()


def test_relative_error_rejects_different_shapes():
    with pytest.raises(ValueError, match=r"\(1, 3\).*\(4, 3\)"):
        relative_error(np.ones((1, 3)), np.ones((4, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_relative_error_rejects_non_finite_gradients(bad):
    with pytest.raises(ValueError, match="not finite"):
        relative_error(np.array([1.0, bad]), np.array([1.0, 1.0]))


def test_numerical_gradient_restores_x_when_f_fails():
    x = np.arange(4.0)
    calls = []

    def f(v):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return float(v.sum())

    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, np.arange(4.0))
    with pytest.raises(ValueError, match="h"):
        numerical_gradient(lambda v: 0.0, x, h=0.0)


def test_check_backward_needs_one_gradient_per_input():
    inputs = dict(x=np.zeros((2, 3)), w=np.zeros((3, 2)), b=np.zeros(2))
    with pytest.raises(ValueError, match="3 inputs.*2 gradients"):
        check_backward(npl.linear_forward, lambda dout, cache: npl.linear_backward(dout, cache)[:2],
                       inputs)
