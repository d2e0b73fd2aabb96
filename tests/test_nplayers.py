"""The NumPy layers against finite differences (float64) and against PyTorch autograd."""

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
