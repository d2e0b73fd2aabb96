"""Random subsets: drawn with an explicit generator, stratified on request, never first-N."""

import numpy as np
import pytest

from labutils.data import subset_indices

SORTED = np.repeat(np.arange(10), 100)  # a data set stored class by class, like CIFAR-10's copy


@pytest.mark.parametrize("stratified", [False, True])
def test_a_subset_of_a_class_sorted_set_holds_every_class(stratified):
    idx = subset_indices(len(SORTED), 500, np.random.default_rng(0),
                         labels=SORTED if stratified else None)
    assert len(idx) == 500 and len(set(idx.tolist())) == 500
    assert set(SORTED[idx].tolist()) == set(range(10))  # the first 500 would be classes 0-4
    assert set(SORTED[idx[:50]].tolist()) != {0}  # random order: a prefix is random too
    if stratified:
        assert np.bincount(SORTED[idx]).tolist() == [50] * 10


def test_stratified_shares_follow_the_class_counts():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    idx = subset_indices(100, 7, np.random.default_rng(1), labels=labels)
    # quotas 4.2, 2.1, 0.7: floors 4, 2, 0, and the one left over goes to the largest remainder
    assert np.bincount(labels[idx], minlength=3).tolist() == [4, 2, 1]


def test_the_same_seed_gives_the_same_subset_and_another_seed_another():
    a = subset_indices(1000, 100, np.random.default_rng(3), labels=SORTED)
    b = subset_indices(1000, 100, np.random.default_rng(3), labels=SORTED)
    c = subset_indices(1000, 100, np.random.default_rng(4), labels=SORTED)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_bad_sizes_and_labels_are_clear_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"size must be in \[0, 10\]"):
        subset_indices(10, 11, rng)
    with pytest.raises(ValueError, match=r"labels must have shape \(10,\)"):
        subset_indices(10, 5, rng, labels=np.zeros(9))
    assert subset_indices(10, 0, rng).size == 0
