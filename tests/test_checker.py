"""labutils.checker passes correct layers and fails wrong ones with a message that says why."""

import numpy as np
import torch
import torch.nn.functional as F

from labutils.checker import NOT_IMPLEMENTED, check_layer
from labutils.nplayers import (conv_backward, conv_forward, linear_backward, linear_forward,
                               relu_backward, relu_forward)
from labutils.npnorm import batchnorm_backward, batchnorm_forward

RNG = np.random.default_rng(0)
LINEAR_INPUTS = {"x": RNG.standard_normal((5, 4)), "w": RNG.standard_normal((4, 3)),
                 "b": RNG.standard_normal(3)}
RELU_INPUTS = {"x": RNG.standard_normal((3, 2, 4, 4))}


def torch_linear(x, w, b):
    return x @ w + b


def check_linear(backward, forward=linear_forward):
    return check_layer("linear", forward, backward, LINEAR_INPUTS, torch_fn=torch_linear)


def test_correct_layers_pass():
    verdicts = [
        check_linear(linear_backward),
        check_layer("relu", relu_forward, relu_backward, RELU_INPUTS, torch_fn=torch.relu),
        check_layer("conv", lambda x, w, b: conv_forward(x, w, b, stride=2, pad=1), conv_backward,
                    {"x": RNG.standard_normal((2, 3, 7, 7)), "w": RNG.standard_normal((4, 3, 3, 3)),
                     "b": RNG.standard_normal(4)},
                    torch_fn=lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1)),
        check_layer("batch norm", batchnorm_forward, batchnorm_backward,
                    {"x": RNG.standard_normal((6, 4)), "gamma": RNG.standard_normal(4),
                     "beta": RNG.standard_normal(4)},
                    torch_fn=lambda x, gamma, beta: F.batch_norm(x, None, None, gamma, beta,
                                                                 training=True, eps=1e-5)),
    ]
    for verdict in verdicts:
        assert verdict.passed, str(verdict)
        assert str(verdict) == f"{verdict.layer}: PASS"
        assert max(verdict.numeric_errors.values()) < 1e-7
        assert "finite differences" in verdict.details() and "PyTorch" in verdict.details()


def test_wrong_sign_is_named():
    def backward(dout, cache):
        dx, dw, db = linear_backward(dout, cache)
        return dx, -dw, db
    verdict = check_linear(backward)
    assert not verdict.passed
    text = str(verdict)
    assert text.startswith("linear: FAIL") and "dw: relative error" in text
    assert "wrong sign" in text and "dx" not in text and "db" not in text


def test_missing_sum_over_batch_is_named():
    def backward(dout, cache):
        dx, dw, _ = linear_backward(dout, cache)
        return dx, dw, dout  # db without the sum over the batch
    text = str(check_linear(backward))
    assert "db has shape (5, 3) but b has shape (3,)" in text
    assert "forget to sum over the batch" in text


def test_wrong_shape_and_transpose_are_named():
    def backward(dout, cache):
        dx, dw, db = linear_backward(dout, cache)
        return dx, dw.T, db
    text = str(check_linear(backward))
    assert "dw has shape (3, 4) but w has shape (4, 3)" in text and "transposed" in text


def test_constant_factor_and_wrong_count():
    def halved(dout, cache):
        dx, dw, db = linear_backward(dout, cache)
        return dx / 2, dw, db
    assert "0.5 times the right answer" in str(check_linear(halved))
    text = str(check_linear(lambda dout, cache: linear_backward(dout, cache)[:2]))
    assert "returned 2 gradient(s); expected 3" in text and "dx, dw, db" in text


def test_wrong_forward_is_caught_by_pytorch():
    def forward(x, w, b):
        return x @ w - b, (x, w)
    text = str(check_linear(linear_backward, forward))
    assert "output: relative error" in text and "against PyTorch" in text


def test_mutating_forward_fails():
    def forward(x):
        np.maximum(x, 0, out=x)
        return x.copy(), x > 0
    text = str(check_layer("relu", forward, relu_backward, RELU_INPUTS, torch_fn=torch.relu))
    assert "modified its input x in place" in text


def test_not_implemented_and_exceptions_are_reported():
    def todo(dout, cache):
        raise NotImplementedError
    verdict = check_layer("relu", relu_forward, todo, RELU_INPUTS, torch_fn=torch.relu)
    assert verdict.status == "NOT IMPLEMENTED" and not verdict.passed
    assert str(verdict) == f"relu: {NOT_IMPLEMENTED}"

    def broken(dout, cache):
        return dout.reshape(7, -1)  # 96 values do not split into 7 rows
    text = str(check_layer("relu", relu_forward, broken, RELU_INPUTS))
    assert "backward raised ValueError" in text


def test_inputs_are_checked_in_float64_and_left_untouched():
    x = RNG.standard_normal((4, 5)).astype(np.float32)
    before = x.copy()
    verdict = check_layer("relu", relu_forward, relu_backward, {"x": x}, torch_fn=torch.relu)
    assert verdict.passed, str(verdict)
    np.testing.assert_array_equal(x, before)
