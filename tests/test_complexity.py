"""eMPRT: explanation complexity on hand-made maps of known entropy, and its test (`emprt_table`) on
hand-set complexities."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy

from cxrsal.metrics import emprt_table, explanation_entropy


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
    # mean ratio (2 + 0.1 i) / (1 + 0.1 i) over i = 0..7, computed here by a loop
    assert t.loc["spreads", "rise"] == pytest.approx(np.mean([(2 + 0.1 * i) / (1 + 0.1 * i) for i in range(8)]))
    assert t.loc["same", "result"] == "FAIL" and t.loc["same", "trained"] == pytest.approx(1.35)
