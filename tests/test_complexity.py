"""eMPRT: explanation complexity on hand-made maps of known entropy (the authors' histogram entropy
and the spatial one), the bin rules against their textbook formulas and NumPy's, the relative rise,
and the test (`emprt_table`) on hand-set complexities."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy

from cxrsal.metrics import emprt_table, explanation_entropy
from cxrsal.metrics.complexity import bin_count, bins_for, histogram_entropy
from cxrsal.metrics.defined import relative_rise


# ---------------------------------------------------------------- the authors' histogram entropy

def test_a_constant_map_has_histogram_entropy_zero():
    """Every value in one bin: p = 1, H = 0 (a constant map, zeros included)."""
    assert histogram_entropy(np.zeros((8, 8))) == 0.0
    assert histogram_entropy(np.full((8, 8), -3.5), bins=10) == 0.0


def test_two_equal_halves_have_histogram_entropy_ln2():
    """Half the pixels at one value, half at another: the first and the last bin, p = 1/2 each."""
    m = np.zeros((8, 8))
    m[:, 4:] = 0.7
    assert histogram_entropy(m) == pytest.approx(math.log(2))
    assert histogram_entropy(-m, bins=17) == pytest.approx(math.log(2))     # signs and bins do not matter


def test_a_uniform_spread_over_100_bins_has_entropy_ln100():
    """One value at the centre of each of 100 equal-width bins over [0, 1]: p = 1/100 each."""
    centres = (np.arange(100) + 0.5) / 100
    m = np.concatenate([[0.0, 1.0], centres]).reshape(2, 51)     # 0 and 1 fix the range to [0, 1]
    # the two ends land in the first and the last bin: 2 of 102 values there, 1 in the others
    p = np.full(100, 1.0)
    p[[0, -1]] = 2.0
    p /= p.sum()
    assert histogram_entropy(m) == pytest.approx(-(p * np.log(p)).sum())
    assert histogram_entropy(centres.reshape(10, 10)) == pytest.approx(math.log(100))


def test_histogram_entropy_is_scipy_entropy_of_the_value_histogram():
    """No abs, no normalization: the signed values' histogram over the map's own range."""
    m = np.random.default_rng(1).normal(size=(32, 32))
    for bins in (10, 100, 200):
        counts, _ = np.histogram(m.ravel(), bins=bins)
        assert histogram_entropy(m, bins) == pytest.approx(entropy(counts))   # scipy normalizes pk
    assert histogram_entropy(np.abs(m)) != pytest.approx(histogram_entropy(m))  # the sign counts


def test_a_map_with_a_non_finite_value_has_no_histogram_entropy():
    m = np.zeros((4, 4))
    m[1, 1] = np.nan
    assert math.isnan(histogram_entropy(m))


# ---------------------------------------------------------------- bin rules: n = the pixels of a map

def textbook(rule, x):
    """The textbook counts, written out (Freedman & Diaconis 1981; Scott 1979; Sturges 1926; the
    square-root and Rice rules), k = ceil(range / h) for the width rules."""
    n, spread = x.size, x.max() - x.min()
    if rule == "freedman-diaconis":
        q75, q25 = np.percentile(x, [75, 25])
        return math.ceil(spread / (2 * (q75 - q25) * n ** (-1 / 3)))
    if rule == "scott":
        return math.ceil(spread / (3.4908 * x.std() * n ** (-1 / 3)))
    return {"sqrt": math.ceil(math.sqrt(n)), "sturges": math.ceil(math.log2(n)) + 1,
            "rice": math.ceil(2 * n ** (1 / 3))}[rule]


@pytest.mark.parametrize("rule", ["freedman-diaconis", "scott", "sqrt", "sturges", "rice"])
def test_bin_rules_are_the_textbook_formulas_and_numpys(rule):
    """On one map of 1024 pixels (between the clips): the textbook count, and NumPy's own estimator
    of the same name, which takes n = the values it is given."""
    x = np.random.default_rng(2).normal(size=(32, 32))
    k = bin_count(x, rule, x.size)
    assert k == textbook(rule, x.ravel())
    numpy_rule = {"freedman-diaconis": "fd"}.get(rule, rule)
    assert k == len(np.histogram_bin_edges(x.ravel(), bins=numpy_rule)) - 1


def test_bin_rules_are_clipped_to_10_and_200():
    """sqrt of 4 pixels is 2 -> 10; sqrt of 250000 pixels is 500 -> 200; Sturges of 64: 7 -> 10."""
    x = np.random.default_rng(3).normal(size=500)
    assert bin_count(x, "sqrt", 4) == 10 and bin_count(x, "sqrt", 250_000) == 200
    assert bin_count(x, "sturges", 64) == 10 and bin_count(x, "sturges", 4096) == 13
    # an IQR of 0 (most values equal) under values that spread: the upper clip; no spread: the lower
    sparse = np.zeros(1000)
    sparse[:10] = np.linspace(1, 2, 10)
    assert bin_count(sparse, "freedman-diaconis", 1000) == 200
    assert bin_count(np.zeros(50), "scott", 50) == 10


def test_bins_are_chosen_once_per_method_over_all_trained_maps():
    """The rule sees every value of the method's maps, n the pixels of one map: the count of the
    pooled spread, not of any one map's."""
    rng = np.random.default_rng(4)
    maps = [rng.normal(scale=s, size=(16, 16)) for s in (0.5, 1.0, 4.0)]
    pooled = np.concatenate([m.ravel() for m in maps])
    q75, q25 = np.percentile(pooled, [75, 25])
    expected = math.ceil((pooled.max() - pooled.min()) / (2 * (q75 - q25) / 256 ** (1 / 3)))
    assert bins_for(maps, "freedman-diaconis") == min(max(expected, 10), 200)
    assert bins_for(maps, 37) == 37            # a count is used as given


# ---------------------------------------------------------------- the score: the relative rise

def test_relative_rise_is_b_minus_a_over_a_and_undefined_from_zero():
    """(b - a) / a; from a = 0 undefined, b = 0 too (0 / 0)."""
    got = relative_rise([2.0, 1.0, 0.0, 0.0, 3.0], [3.0, 0.5, 0.0, 1.2, float("nan")])
    np.testing.assert_array_equal(got, [0.5, -0.5, np.nan, np.nan, np.nan])


# ---------------------------------------------------------------- the spatial entropy (emprt.complexity: spatial)


def test_uniform_map_has_the_log_of_its_pixel_count():
    assert explanation_entropy(np.full((8, 8), 0.3)) == pytest.approx(math.log(64))


def test_one_hot_map_has_zero_entropy_whatever_its_sign():
    m = np.zeros((5, 5))
    m[2, 3] = -4.0
    assert explanation_entropy(m) == 0.0


def test_two_equal_pixels_have_one_bit():
    m = np.zeros((4, 4))
    m[0, 0], m[3, 3] = 2.0, -2.0        # absolute values: mass 1/2 and 1/2
    assert explanation_entropy(m) == pytest.approx(math.log(2))


def test_against_scipy_entropy_of_the_normalized_absolute_map():
    m = np.random.default_rng(0).normal(size=(16, 16))
    assert explanation_entropy(m) == pytest.approx(entropy(np.abs(m).ravel()))   # scipy normalizes pk


def test_all_zero_map_is_undefined():
    assert math.isnan(explanation_entropy(np.zeros((3, 3))))


def test_emprt_table_on_known_complexities():
    """eMPRT from complexities set by hand: a method whose maps spread on every image PASSes
    (Wilcoxon one-sided, 8 positive differences: p = 1/256), one that does not FAILs, all-zero
    maps (NaN) are counted apart."""
    rows = []
    for i in range(8):
        for method, before, after in (("spreads", 1.0 + 0.1 * i, 2.0 + 0.1 * i), ("same", 1.0 + 0.1 * i, 0.9)):
            for step, v in ((0, before), (1, 0.5), (2, after)):
                rows.append(dict(image_id=f"i{i}", model="00-m", method=method, step=step, step_name=str(step),
                                 metric="complexity", value=v))
    rows.append(dict(image_id="i8", model="00-m", method="spreads", step=0, step_name="0", metric="complexity",
                     value=1.0))
    rows.append(dict(image_id="i8", model="00-m", method="spreads", step=2, step_name="2", metric="complexity",
                     value=float("nan")))
    t = emprt_table(pd.DataFrame(rows)).set_index("method")
    assert t.loc["spreads", "p_value"] == pytest.approx(1 / 256) and t.loc["spreads", "result"] == "PASS"
    assert t.loc["spreads", "n"] == 8 and t.loc["spreads", "undefined"] == 1
    # mean relative rise ((2 + 0.1 i) - (1 + 0.1 i)) / (1 + 0.1 i) over i = 0..7, computed here by a loop
    assert t.loc["spreads", "rise"] == pytest.approx(np.mean([1 / (1 + 0.1 * i) for i in range(8)]))
    assert t.loc["same", "result"] == "FAIL" and t.loc["same", "trained"] == pytest.approx(1.35)
