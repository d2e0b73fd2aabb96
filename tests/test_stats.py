"""labutils.stats against independent references: SciPy's Wilson interval and Welch t-test."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from labutils.stats import Spread, binomial_ci, compare, compare_paired, run_seeds, spread


def test_spread_mean_std_match_numpy():
    values = [0.9912, 0.9930, 0.9921, 0.9904]
    s = spread(values)
    assert s.n == 4
    assert s.mean == pytest.approx(np.mean(values), abs=1e-15)
    assert s.std == pytest.approx(np.std(values, ddof=1), abs=1e-15)
    assert (s.low, s.high) == (min(values), max(values))
    assert s.format(scale=100, digits=2, unit="%") == \
        f"{np.mean(values) * 100:.2f} ± {np.std(values, ddof=1) * 100:.2f}% (n=4)"


def test_spread_of_one_value_has_zero_std():
    assert spread([0.5]).std == 0.0


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_spread_rejects_empty_and_non_finite(bad):
    with pytest.raises(ValueError):
        spread(bad)


def test_run_seeds_collects_each_quantity():
    result = run_seeds(lambda seed: {"acc": 0.9 + seed / 100, "loss": float(seed)}, [0, 1, 2])
    assert set(result) == {"acc", "loss"}
    assert result["acc"].values == pytest.approx((0.90, 0.91, 0.92))
    assert result["loss"].mean == pytest.approx(1.0)


def test_run_seeds_rejects_duplicate_or_empty_seeds_and_ragged_results():
    with pytest.raises(ValueError):
        run_seeds(lambda s: {"a": 1.0}, [0, 0])
    with pytest.raises(ValueError):
        run_seeds(lambda s: {"a": 1.0}, [])
    with pytest.raises(ValueError):
        run_seeds(lambda s: {"a": 1.0} if s == 0 else {"b": 1.0}, [0, 1])


@pytest.mark.parametrize("correct,total", [(9947, 10000), (9133, 10000), (0, 50), (50, 50),
                                           (7, 20), (1, 3), (160, 160)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_binomial_ci_matches_scipy_wilson(correct, total, confidence):
    ref = sps.binomtest(correct, total).proportion_ci(confidence_level=confidence, method="wilson")
    low, high = binomial_ci(correct, total, confidence)
    assert low == pytest.approx(ref.low, abs=1e-12)
    assert high == pytest.approx(ref.high, abs=1e-12)
    assert 0.0 <= low <= correct / total <= high <= 1.0


def test_binomial_ci_matches_closed_form():
    # Wilson (1927) with z = 1.959964: independent arithmetic, no SciPy.
    n, k, z = 10000, 9947, 1.959963984540054
    p = k / n
    centre = (p + z ** 2 / (2 * n)) / (1 + z ** 2 / n)
    half = z / (1 + z ** 2 / n) * math.sqrt(p * (1 - p) / n + z ** 2 / (4 * n ** 2))
    assert binomial_ci(k, n) == pytest.approx((centre - half, centre + half), abs=1e-12)


@pytest.mark.parametrize("args", [(5, 0), (-1, 10), (11, 10), (5, 10, 1.0), (5, 10, 0.0)])
def test_binomial_ci_rejects_bad_input(args):
    with pytest.raises(ValueError):
        binomial_ci(*args)


def test_compare_interval_matches_scipy_welch():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.99, 0.002, 3), rng.normal(0.985, 0.004, 4)
    c = compare(a, b)
    ref = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert c.difference == pytest.approx(a.mean() - b.mean(), abs=1e-15)
    assert (c.low, c.high) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_compare_excludes_zero_iff_welch_p_below_005():
    rng = np.random.default_rng(1)
    seen = {True: 0, False: 0}
    for trial in range(300):
        n_a, n_b = rng.integers(2, 6, size=2)
        shift = rng.choice([0.0, 0.002, 0.01])
        a = rng.normal(0.99 + shift, 0.003, n_a)
        b = rng.normal(0.99, rng.uniform(0.001, 0.006), n_b)
        p = sps.ttest_ind(a, b, equal_var=False).pvalue
        if abs(p - 0.05) < 1e-9:
            continue
        beyond = compare(a, b).beyond_noise
        assert beyond == (p < 0.05), (trial, p, a, b)
        seen[beyond] += 1
    assert seen[True] > 20 and seen[False] > 20  # both branches were exercised


def test_verdict_wording():
    better, worse = [0.95, 0.951, 0.952], [0.90, 0.901, 0.899]
    assert compare(better, worse).verdict("A", "B") == "A beats B"
    assert compare(worse, better).verdict("A", "B") == "B beats A"
    assert compare([0.9, 0.92, 0.91], [0.91, 0.905, 0.915]).verdict("A", "B") == \
        "A and B are within noise"


def test_compare_accepts_spreads_and_needs_two_seeds():
    assert isinstance(spread([1.0, 2.0]), Spread)
    assert compare(spread([1.0, 2.0]), spread([1.0, 2.0])).difference == 0.0
    with pytest.raises(ValueError):
        compare([0.9], [0.8, 0.85])


def test_compare_identical_constant_runs_is_a_point_interval():
    c = compare([0.9, 0.9], [0.8, 0.8])
    assert (c.low, c.high) == pytest.approx((0.1, 0.1))
    assert c.beyond_noise


def test_compare_paired_matches_scipy_and_differs_from_welch():
    rng = np.random.default_rng(0)
    item = rng.normal(28, 3, size=50)                  # large differences between items ...
    a, b = item + 0.3 + rng.normal(0, 0.1, 50), item   # ... a small, consistent gain
    ours = compare_paired(a, b)
    ref = sps.ttest_rel(a, b).confidence_interval(0.95)
    assert ours.low == pytest.approx(ref.low) and ours.high == pytest.approx(ref.high)
    assert ours.difference == pytest.approx(np.mean(a - b))
    assert ours.beyond_noise and not compare(a, b).beyond_noise   # pairing removes item spread
    with pytest.raises(ValueError):
        compare_paired([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        compare_paired([1.0], [2.0])


@pytest.mark.parametrize("confidence", [0, 1, 95, -0.5, float("nan"), 1.5])
def test_compare_rejects_a_confidence_outside_zero_one(confidence):
    from labutils.stats import compare, compare_paired

    for call in (lambda: compare([0.9, 0.91, 0.92], [0.8, 0.82, 0.81], confidence),
                 lambda: compare([0.9, 0.9], [0.8, 0.8], confidence),       # zero spread
                 lambda: compare_paired([1.0, 2.0, 3.0], [0.5, 1.7, 2.9], confidence)):
        with pytest.raises(ValueError, match=r"confidence.*\(0, 1\).*0\.95"):
            call()


def test_binomial_ci_needs_a_count_of_correct_answers():
    from labutils.stats import binomial_ci

    with pytest.raises(TypeError, match=r"count.*round\(acc \* n\)"):
        binomial_ci(0.9123, 10000)
    with pytest.raises(TypeError, match="count"):
        binomial_ci(9123, 10000.0)
    with pytest.raises(TypeError, match="count"):
        binomial_ci(True, 10)
    # integers of every kind still work, and agree with statsmodels-free Wilson by hand
    import numpy as np
    import torch
    expected = binomial_ci(9123, 10000)
    assert binomial_ci(np.int64(9123), np.int32(10000)) == expected
    assert binomial_ci(int(torch.tensor(9123)), 10000) == expected
    assert binomial_ci(round(0.9123 * 10000), 10000) == expected
