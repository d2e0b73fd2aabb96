"""labutils.npnorm against finite differences (float64) and torch.nn.functional.batch_norm."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labutils.gradcheck import check_backward
from labutils.npnorm import (batchnorm_backward, batchnorm_forward, spatial_batchnorm_backward,
                             spatial_batchnorm_forward)


def random_case(rng, shape):
    d = shape[1]
    return (rng.standard_normal(shape) * 2 + 1, rng.standard_normal(d), rng.standard_normal(d),
            rng.standard_normal(d), rng.random(d) + 0.5)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("spatial", [False, True])
def test_gradients_match_finite_differences(train, spatial):
    rng = np.random.default_rng(10)  # not check_backward's dout seed (0): dout must not be x
    shape = (4, 3, 3, 2) if spatial else (6, 5)
    x, gamma, beta, rm, rv = random_case(rng, shape)
    fwd, bwd = ((spatial_batchnorm_forward, spatial_batchnorm_backward) if spatial
                else (batchnorm_forward, batchnorm_backward))
    errors = check_backward(fwd, bwd, {"x": x, "gamma": gamma, "beta": beta}, eps=1e-5,
                            momentum=0.1, running_mean=rm, running_var=rv, train=train)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("shape", [(7, 4), (3, 4, 5, 2)])
def test_matches_pytorch(train, shape):
    rng = np.random.default_rng(1)
    x, gamma, beta, rm, rv = random_case(rng, shape)
    fwd, bwd = ((spatial_batchnorm_forward, spatial_batchnorm_backward) if len(shape) == 4
                else (batchnorm_forward, batchnorm_backward))
    rm_before, rv_before = rm.copy(), rv.copy()
    out, cache = fwd(x, gamma, beta, eps=1e-3, momentum=0.2, running_mean=rm, running_var=rv,
                     train=train)
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = bwd(dout, cache)

    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    rmt, rvt = torch.tensor(rm), torch.tensor(rv)
    ref = F.batch_norm(xt, rmt, rvt, gt, bt, training=train, momentum=0.2, eps=1e-3)
    ref.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    for mine, theirs in zip((dx, dgamma, dbeta), (xt.grad, gt.grad, bt.grad)):
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-9, atol=1e-11)
    inner = cache[0] if len(shape) == 4 else cache
    np.testing.assert_allclose(inner.running_mean, rmt.numpy(), rtol=1e-12)   # torch updates
    np.testing.assert_allclose(inner.running_var, rvt.numpy(), rtol=1e-12)    # in place
    np.testing.assert_array_equal(rm, rm_before)   # ours does not
    np.testing.assert_array_equal(rv, rv_before)


def test_training_output_is_normalised_and_untracked_stats_stay_none():
    x = np.random.default_rng(2).standard_normal((50, 3)) * 5 + 3
    out, cache = batchnorm_forward(x, np.ones(3), np.zeros(3))
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(0), 1, rtol=1e-5)
    assert cache.running_mean is None and cache.running_var is None


def test_inputs_not_mutated():
    rng = np.random.default_rng(3)
    x, gamma, beta, rm, rv = random_case(rng, (5, 4))
    copies = [a.copy() for a in (x, gamma, beta, rm, rv)]
    out, cache = batchnorm_forward(x, gamma, beta, running_mean=rm, running_var=rv)
    dout = rng.standard_normal(out.shape)
    dout_copy = dout.copy()
    batchnorm_backward(dout, cache)
    for a, b in zip((x, gamma, beta, rm, rv, dout), (*copies, dout_copy)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(x=np.zeros((2, 3, 4))), ValueError, "expected x \\(N, D\\)"),
    (dict(x=np.zeros((4, 3), dtype=np.int64)), TypeError, "floating-point"),
    (dict(gamma=np.ones(2)), ValueError, "gamma of shape \\(3,\\)"),
    (dict(beta=np.ones((3, 1))), ValueError, "beta of shape"),
    (dict(running_mean=np.zeros(3)), ValueError, "both running_mean and running_var"),
    (dict(running_mean=np.zeros(4), running_var=np.ones(4)), ValueError, "running_mean of shape"),
    (dict(eps=0.0), ValueError, "eps must be positive"),
    (dict(momentum=1.5), ValueError, "momentum must be in"),
    (dict(x=np.ones((1, 3))), ValueError, "more than one value per feature"),
    (dict(train=False), ValueError, "pass running_mean and running_var"),
])
def test_bad_inputs_raise(kwargs, error, match):
    args = dict(x=np.random.default_rng(0).standard_normal((4, 3)), gamma=np.ones(3),
                beta=np.zeros(3))
    args.update(kwargs)
    x, gamma, beta = args.pop("x"), args.pop("gamma"), args.pop("beta")
    with pytest.raises(error, match=match):
        batchnorm_forward(x, gamma, beta, **args)


def test_backward_rejects_wrong_dout_shape():
    _, cache = batchnorm_forward(np.random.default_rng(0).standard_normal((4, 3)), np.ones(3),
                                 np.zeros(3))
    with pytest.raises(ValueError, match="forward output's shape"):
        batchnorm_backward(np.zeros((3, 4)), cache)
    _, scache = spatial_batchnorm_forward(np.ones((2, 3, 2, 2)) * np.arange(2)[:, None, None, None],
                                          np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="forward output's shape"):
        spatial_batchnorm_backward(np.zeros((2, 3, 2, 1)), scache)


def test_spatial_rejects_non_image_input():
    with pytest.raises(ValueError, match="expected x \\(N, C, H, W\\)"):
        spatial_batchnorm_forward(np.zeros((4, 3)), np.ones(3), np.zeros(3))
