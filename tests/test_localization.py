"""Pointing game and thresholded IoU (CheXlocalize) on hand-made maps and against brute-force loops."""

import numpy as np
import pytest

from cxrsal.errors import CxrsalError
from cxrsal.metrics import iou_score, miou_curve, pointing_hit, tune_threshold

MASK = np.array([[0, 0, 0, 0],
                 [0, 1, 1, 0],
                 [0, 1, 1, 0],
                 [0, 0, 0, 0]], bool)


def test_pointing_hit_by_hand():
    smap = np.zeros((4, 4))
    smap[2, 1] = 0.9                                # maximum inside the mask
    assert pointing_hit(MASK, smap) is True
    smap[0, 3] = 0.95                               # a higher peak outside
    assert pointing_hit(MASK, smap) is False
    tie = np.zeros((4, 4))
    tie[0, 0] = tie[1, 1] = 1.0                     # equal maxima: row-major first is (0, 0), outside
    assert pointing_hit(MASK, tie) is False
    tie[0, 0] = 0.0
    assert pointing_hit(MASK, tie) is True          # now (1, 1), inside


def test_constant_map_is_a_miss():
    assert pointing_hit(MASK, np.full((4, 4), 0.5)) is False
    assert pointing_hit(np.ones((4, 4)), np.zeros((4, 4))) is False    # even when the mask is everywhere


def test_iou_by_hand():
    smap = np.zeros((4, 4))
    smap[1:3, 1:4] = 0.8                            # 6 pixels at 0.8: the 4 mask pixels and 2 to their right
    smap[0, 0] = 0.4
    # threshold 0.5: prediction = those 6 pixels; intersection 4, union 6
    assert iou_score(MASK, smap, threshold=0.5) == pytest.approx(4 / 6, abs=1e-12)
    # threshold 0.4: (0, 0) joins the prediction (>= is inclusive): intersection 4, union 7
    assert iou_score(MASK, smap, threshold=0.4) == pytest.approx(4 / 7, abs=1e-12)
    # threshold 0.9: empty prediction: intersection 0, union 4
    assert iou_score(MASK, smap, threshold=0.9) == 0.0
    # threshold 0: every pixel predicted: intersection 4, union 16
    assert iou_score(MASK, smap, threshold=0.0) == pytest.approx(4 / 16, abs=1e-12)
    assert np.isnan(iou_score(np.zeros((4, 4)), smap, threshold=0.5))   # no finding: undefined


def random_set(seed, n=9):
    rng = np.random.default_rng(seed)
    masks, maps = [], []
    for i in range(n):
        h, w = rng.integers(5, 20, 2)               # images of different sizes
        yy, xx = np.mgrid[:h, :w]
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.integers(2, 20)
        if i == 0:
            mask[:] = False                         # an image without the finding: left out
        smap = np.clip(mask * 0.5 + rng.random((h, w)) * 0.7, 0, 1)
        if i % 3 == 1:
            smap = np.round(smap * 10) / 10         # values exactly on the grid's thresholds
        masks.append(mask)
        maps.append(smap)
    return masks, maps


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_miou_curve_and_tuning_match_brute_force(seed):
    masks, maps = random_set(seed)
    grid = np.linspace(0, 1, 101)
    brute = np.array([np.nanmean([iou_score(m, s, threshold=t) for m, s in zip(masks, maps)]) for t in grid])
    assert np.allclose(miou_curve(masks, maps, grid), brute, rtol=0, atol=1e-12)
    best = max(brute)
    first = min(t for t, v in zip(grid, brute) if v == best)
    threshold, miou = tune_threshold(masks, maps)
    assert threshold == first and miou == pytest.approx(best, abs=1e-12)
    # unsorted thresholds give the same curve in their own order
    shuffled = np.random.default_rng(seed).permutation(grid)
    assert np.allclose(miou_curve(masks, maps, shuffled), brute[np.searchsorted(grid, shuffled)], atol=1e-12)


def test_tuning_ties_go_to_the_lowest_threshold():
    mask = np.array([[1, 0], [0, 0]], bool)
    smap = np.array([[0.9, 0.3], [0.2, 0.1]])
    # any threshold in (0.3, 0.9] selects the mask pixel alone: IoU 1 at 0.4, 0.6 and 0.8
    assert tune_threshold([mask], [smap], thresholds=[0.8, 0.4, 0.6, 0.1]) == (0.4, 1.0)


def test_shape_mismatch_raises():
    with pytest.raises(CxrsalError, match="shape"):
        pointing_hit(MASK, np.zeros((4, 3)))
    with pytest.raises(CxrsalError, match="shape"):
        iou_score(MASK, np.zeros(16), threshold=0.5)
    with pytest.raises(CxrsalError):
        miou_curve([MASK], [np.zeros((4, 4)), np.zeros((4, 4))], [0.5])
    with pytest.raises(CxrsalError):
        tune_threshold([np.zeros((4, 4))], [np.zeros((4, 4))])          # no image has a finding
