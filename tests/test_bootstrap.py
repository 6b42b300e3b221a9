"""Bootstrap intervals against slow loops over the same replicate rows, scikit-learn and the normal law."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cxrsal.errors import CxrsalError
from cxrsal.metrics import (bootstrap_ap_ci, bootstrap_auc_ci, bootstrap_indices, bootstrap_mean_ci,
                            pointwise_average_precision)


def slow_interval(stats, level=0.95):
    """Percentile interval of a list of replicate values, undefined ones (None) dropped."""
    kept = [s for s in stats if s is not None]
    return tuple(np.percentile(kept, [100 * (1 - level) / 2, 100 * (1 + level) / 2]))


def test_indices_are_the_seeded_generator_draws():
    idx = bootstrap_indices(7, replicates=5, seed=3)
    assert idx.shape == (5, 7)
    assert np.array_equal(idx, np.random.default_rng(3).integers(0, 7, size=(5, 7)))


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_mean_ci_matches_slow_loop(level):
    values = np.random.default_rng(0).random(37)
    idx = bootstrap_indices(37, replicates=300, seed=5)
    ref = slow_interval([np.mean(values[row]) for row in idx], level)
    got = bootstrap_mean_ci(values, replicates=300, seed=5, level=level)
    assert isinstance(got[0], float) and isinstance(got[1], float)
    assert np.allclose(got, ref, rtol=0, atol=1e-12)


def test_mean_ci_normal_approximation_on_a_large_sample():
    x = np.random.default_rng(1).normal(3.0, 2.0, 20000)
    half = 1.96 * x.std() / np.sqrt(x.size)
    low, high = bootstrap_mean_ci(x, replicates=1000, seed=0)
    width = 2 * half
    assert abs(low - (x.mean() - half)) < 0.05 * width
    assert abs(high - (x.mean() + half)) < 0.05 * width


def test_mean_ci_ignores_nan_as_nanmean():
    rng = np.random.default_rng(2)
    values = rng.random(6)
    values[[0, 2, 3, 5]] = np.nan                   # two finite values: some replicates draw only NaN
    idx = bootstrap_indices(6, replicates=400, seed=1)
    means = [np.nanmean(values[row]) if np.isfinite(values[row]).any() else None for row in idx]
    assert any(m is None for m in means)
    ref = slow_interval(means)
    assert np.allclose(bootstrap_mean_ci(values, replicates=400, seed=1), ref, rtol=0, atol=1e-12)


def test_multi_method_call_equals_per_method_calls():
    rng = np.random.default_rng(3)
    values = rng.random((8, 50))
    values[2, :10] = np.nan
    low, high = bootstrap_mean_ci(values, replicates=200, seed=9)
    assert low.shape == high.shape == (8,)
    for m in range(8):
        assert np.allclose((low[m], high[m]), bootstrap_mean_ci(values[m], replicates=200, seed=9),
                           rtol=0, atol=1e-12)
    # leading axes of any shape: [2, 4, n] is the same 8 methods
    low2, high2 = bootstrap_mean_ci(values.reshape(2, 4, 50), replicates=200, seed=9)
    assert np.array_equal(low2.ravel(), low) and np.array_equal(high2.ravel(), high)


def test_seed_determinism():
    values = np.random.default_rng(4).random(30)
    assert bootstrap_mean_ci(values, seed=11) == bootstrap_mean_ci(values, seed=11)
    assert bootstrap_mean_ci(values, seed=11) != bootstrap_mean_ci(values, seed=12)
    labels = np.arange(30) % 3 == 0
    assert bootstrap_auc_ci(labels, values, seed=7) == bootstrap_auc_ci(labels, values, seed=7)


def detection_cases():
    rng = np.random.default_rng(5)
    for k in range(6):
        n = int(rng.integers(8, 40))
        labels = rng.random(n) < [0.1, 0.3, 0.5][k % 3]
        scores = np.round(rng.random(n) * 4) / 4 if k % 2 else rng.random(n)    # odd k: heavy ties
        hits = labels & (rng.random(n) < 0.6)
        yield labels, scores, hits


@pytest.mark.parametrize("labels, scores, hits", list(detection_cases()))
def test_ap_ci_matches_slow_loop(labels, scores, hits):
    idx = bootstrap_indices(labels.size, replicates=300, seed=2)
    aps = [pointwise_average_precision(labels[r], scores[r], hits[r]) if labels[r].any() else None for r in idx]
    ref = slow_interval(aps)
    assert np.allclose(bootstrap_ap_ci(labels, scores, hits, replicates=300, seed=2), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("labels, scores, hits", list(detection_cases()))
def test_auc_ci_matches_sklearn_loop(labels, scores, hits):
    idx = bootstrap_indices(labels.size, replicates=300, seed=4)
    aucs = [roc_auc_score(labels[r], scores[r]) if 0 < labels[r].sum() < labels.size else None for r in idx]
    ref = slow_interval(aucs)
    assert np.allclose(bootstrap_auc_ci(labels, scores, replicates=300, seed=4), ref, rtol=0, atol=1e-12)


def test_ap_and_auc_several_methods_are_paired():
    rng = np.random.default_rng(6)
    labels = rng.random(40) < 0.4
    scores = rng.random(40)                         # the classifier's scores, shared by the methods
    hits = labels & (rng.random((3, 40)) < [[0.2], [0.5], [0.9]])
    low, high = bootstrap_ap_ci(labels, scores, hits, replicates=200, seed=8)
    for m in range(3):
        assert np.allclose((low[m], high[m]), bootstrap_ap_ci(labels, scores, hits[m], replicates=200, seed=8),
                           rtol=0, atol=1e-12)
    many = rng.random((3, 40))
    low, high = bootstrap_auc_ci(labels, many, replicates=200, seed=8)
    for m in range(3):
        assert np.allclose((low[m], high[m]), bootstrap_auc_ci(labels, many[m], replicates=200, seed=8),
                           rtol=0, atol=1e-12)


def test_undefined_intervals_are_nan():
    assert np.isnan(bootstrap_mean_ci([0.5])).all()                           # one image
    low, high = bootstrap_mean_ci(np.ones((3, 1)))
    assert low.shape == (3,) and np.isnan(low).all() and np.isnan(high).all()
    assert np.isnan(bootstrap_mean_ci([np.nan, np.nan, np.nan])).all()       # every replicate dropped
    assert np.isnan(bootstrap_auc_ci([1, 1, 1], [0.1, 0.2, 0.3])).all()       # one class only
    assert np.isnan(bootstrap_ap_ci([0, 0, 0], [0.1, 0.2, 0.3], [0, 0, 0])).all()


def test_bad_input_raises():
    with pytest.raises(CxrsalError):
        bootstrap_mean_ci([0.1, 0.2], level=1.0)
    with pytest.raises(CxrsalError):
        bootstrap_mean_ci([0.1, np.inf])
    with pytest.raises(CxrsalError):
        bootstrap_auc_ci([0, 1, 1], [0.1, 0.2])
    with pytest.raises(CxrsalError):
        bootstrap_indices(0)
