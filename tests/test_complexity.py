"""eMPRT's explanation complexity on hand-made maps of known entropy."""

import math

import numpy as np
import pytest
from scipy.stats import entropy

from cxrsal.metrics import explanation_entropy


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
