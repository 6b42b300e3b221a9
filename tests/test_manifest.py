"""Split proportions, stratification, determinism and reuse of the saved split."""

import numpy as np
import pytest

from cxrsal.data.manifest import allocate, load_or_make_splits, stratified_split
from cxrsal.errors import DataError


def test_allocate_largest_remainder():
    # 10 * (.81, .09, .10) = 8.1, 0.9, 1.0 -> floors 8, 0, 1; the one left goes to .9 (remainder .9)
    assert allocate(10, (0.81, 0.09, 0.10)).tolist() == [8, 1, 1]
    # 7 * (.8, .1, .1) = 5.6, .7, .7 -> floors 5, 0, 0; the two left go to the .7 remainders
    assert allocate(7, (0.8, 0.1, 0.1)).tolist() == [5, 1, 1]
    for n in range(0, 60):
        assert allocate(n, (0.8, 0.1, 0.1)).sum() == n


@pytest.mark.parametrize("fractions", [(0.8, 0.1, 0.1), (0.81, 0.09, 0.10)])
def test_proportions_and_stratification(fractions):
    ids = [f"id{i:05d}" for i in range(3000)]
    labels = [int(i % 10 < 3) for i in range(3000)]      # 900 positives, 2100 negatives
    a = stratified_split(ids, labels, fractions, seed=0)
    for y, n in ((1, 900), (0, 2100)):
        members = [i for i, l in zip(ids, labels) if l == y]
        for split, f in zip(("train", "val", "test"), fractions):
            got = sum(a[i] == split for i in members)
            assert abs(got - n * f) <= 1, (y, split, got, n * f)


def test_deterministic_order_independent_and_seeded():
    ids = [f"x{i}" for i in range(200)]
    labels = list(np.random.default_rng(3).integers(0, 2, 200))
    a = stratified_split(ids, labels, (0.8, 0.1, 0.1), seed=5)
    b = stratified_split(ids[::-1], labels[::-1], (0.8, 0.1, 0.1), seed=5)
    c = stratified_split(ids, labels, (0.8, 0.1, 0.1), seed=6)
    assert a == b and a != c


def test_written_once_and_reused(tmp_path):
    ids = [f"x{i}" for i in range(50)]
    labels = [i % 2 for i in range(50)]
    first, reused = load_or_make_splits(tmp_path, ids, labels, (0.8, 0.1, 0.1), 0)
    assert not reused and (tmp_path / "splits.csv").exists()
    # a different seed must not re-split a run that has its split already
    again, reused = load_or_make_splits(tmp_path, ids[:40], labels[:40], (0.8, 0.1, 0.1), 99)
    assert reused and again == {i: first[i] for i in ids[:40]}
    with pytest.raises(DataError, match="written for other data"):
        load_or_make_splits(tmp_path, ids + ["new"], labels + [1], (0.8, 0.1, 0.1), 0)
