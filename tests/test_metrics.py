"""Metrics against scikit-learn, scikit-image, slow loops written here and hand-computed cases."""

import numpy as np
import pytest
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score
from skimage.metrics import structural_similarity

from cxrsal.config import load_config
from cxrsal.errors import CxrsalError
from cxrsal.metrics import (argmax_points, auprc_score, auroc_score, average_mask, box_heatmap, degradation_threshold,
                            pointwise_average_precision, pointwise_hits, ssim_score)


def slow_ap(y, s):
    """Average precision by a loop over distinct thresholds, highest first."""
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        sel = s >= t
        tp = (y & sel).sum()
        recall, precision = tp / y.sum(), tp / sel.sum()
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


def slow_trapezoid(y, s):
    pts = [(0.0, 1.0)]
    for t in sorted(set(s.tolist()), reverse=True):
        sel = s >= t
        tp = (y & sel).sum()
        pts.append((tp / y.sum(), tp / sel.sum()))
    return sum((r1 - r0) * (p1 + p0) / 2 for (r0, p0), (r1, p1) in zip(pts, pts[1:]))


def cases():
    rng = np.random.default_rng(0)
    for k in range(12):
        shape = tuple(rng.integers(3, 30, 2))
        y = rng.random(shape) < rng.choice([0.05, 0.3, 0.7])
        y.flat[0] = True
        kind = k % 3
        if kind == 0:
            s = rng.random(shape)                                   # continuous, no ties
        elif kind == 1:
            s = np.round(rng.random(shape) * 5) / 5                 # heavy ties
        else:
            s = rng.integers(0, 7, shape).astype(np.uint16)         # the store's integer maps
        yield y, s


@pytest.mark.parametrize("y, s", list(cases()))
def test_auprc_matches_sklearn_and_slow_loops(y, s):
    yt, st = y.ravel(), s.ravel().astype(np.float64)
    assert abs(auprc_score(y, s) - average_precision_score(yt, st)) < 1e-12
    p, r, _ = precision_recall_curve(yt, st)
    assert abs(auprc_score(y, s, method="trapezoid") - auc(r, p)) < 1e-12
    assert abs(auprc_score(y, s) - slow_ap(yt, st)) < 1e-12
    assert abs(auprc_score(y, s, method="trapezoid") - slow_trapezoid(yt, st)) < 1e-12
    if not y.all():
        assert abs(auroc_score(y, s) - roc_auc_score(yt, st)) < 1e-12


def test_float_and_integer_paths_agree():
    rng = np.random.default_rng(4)
    y = rng.random((40, 40)) < 0.2
    q = rng.integers(0, 65536, (40, 40)).astype(np.uint16)
    assert auprc_score(y, q) == pytest.approx(auprc_score(y, q / 65535.0), abs=1e-12)
    assert auroc_score(y, q) == pytest.approx(auroc_score(y, q / 65535.0), abs=1e-12)


def test_perfect_and_inverted_maps():
    y = np.zeros((10, 10), bool)
    y[2:5, 3:7] = True
    perfect = y.astype(float)
    assert auprc_score(y, perfect) == 1.0 and auroc_score(y, perfect) == 1.0
    inverted = 1.0 - perfect
    # every negative ranks above every positive: precision at full recall is the base rate
    base_rate = y.mean()
    assert auprc_score(y, inverted) == pytest.approx(base_rate, abs=1e-12)
    assert auroc_score(y, inverted) == 0.0
    # a constant map is one threshold: precision = base rate at recall 1
    assert auprc_score(y, np.zeros((10, 10))) == pytest.approx(base_rate, abs=1e-12)


def test_empty_mask_is_refused():
    with pytest.raises(CxrsalError, match="mask is empty"):
        auprc_score(np.zeros((4, 4)), np.random.default_rng(0).random((4, 4)))
    with pytest.raises(CxrsalError, match="mask is empty"):
        auroc_score(np.zeros((4, 4)), np.random.default_rng(0).random((4, 4)))
    with pytest.raises(CxrsalError, match="pixels but the map"):
        auprc_score(np.ones((4, 4)), np.zeros((3, 3)))


def test_box_heatmap_overlapping_boxes_by_hand():
    # 4x4 image; box A (x0, y0, w2, h2) score .3, box B (x1, y1, w3, h3) score .6, C below threshold
    heat = box_heatmap([(0, 0, 2, 2), (1, 1, 3, 3), (0, 3, 4, 1)], [0.3, 0.6, 0.005], (4, 4))
    expected = [[0.3, 0.3, 0, 0],
                [0.3, 0.6, 0.6, 0.6],
                [0, 0.6, 0.6, 0.6],
                [0, 0.6, 0.6, 0.6]]
    np.testing.assert_allclose(heat, expected)
    # boxes in 1024-px coordinates on a 4-px map: x 300..700 covers cells 1..2 (floor 1.17, ceil 2.73)
    heat = box_heatmap([(300, 0, 400, 256)], [0.8], (4, 4), original_size=(1024, 1024))
    np.testing.assert_allclose(heat[0], [0, 0.8, 0.8, 0])
    assert not heat[1:].any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_equals_scikit_image(seed):
    rng = np.random.default_rng(seed)
    a = rng.random((40, 33))
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)
    ref = structural_similarity(a, b, win_size=7, data_range=1.0, K1=0.01, K2=0.03, gaussian_weights=False,
                                use_sample_covariance=True)
    assert ssim_score(a, b) == pytest.approx(ref, abs=1e-10)
    ref2 = structural_similarity(a, b, win_size=7, data_range=2.0)
    assert ssim_score(a, b, data_range=2.0) == pytest.approx(ref2, abs=1e-10)
    assert ssim_score(a, a) == pytest.approx(1.0)


def test_data_range_two_reproduces_old_inferred_behaviour():
    # scikit-image < 0.19 inferred data_range = 2 for float images (dtype range -1..1)
    rng = np.random.default_rng(5)
    a, b = rng.random((20, 20)), rng.random((20, 20))
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    from scipy.ndimage import uniform_filter
    f = lambda x: uniform_filter(x, 7)
    cov = 49 / 48
    ux, uy = f(a), f(b)
    vx, vy, vxy = cov * (f(a * a) - ux ** 2), cov * (f(b * b) - uy ** 2), cov * (f(a * b) - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    assert ssim_score(a, b, data_range=2.0) == pytest.approx(s[3:-3, 3:-3].mean(), abs=1e-12)
    assert ssim_score(a, b, data_range=2.0) > ssim_score(a, b, data_range=1.0)


def test_degradation_threshold_pairs():
    rng = np.random.default_rng(0)
    maps = rng.random((6, 12, 12))
    mean, pairs, values = degradation_threshold(maps, pairs_per_image=50, seed=3, return_pairs=True)
    assert len(pairs) == 300 and (pairs[:, 0] != pairs[:, 1]).all()
    assert sorted(set(pairs[:, 0])) == list(range(6)) and (np.bincount(pairs[:, 0]) == 50).all()
    assert mean == pytest.approx(np.mean([ssim_score(maps[i], maps[j]) for i, j in pairs]))
    assert degradation_threshold(maps, seed=3) == mean
    assert degradation_threshold(maps, seed=4) != mean
    m2, p2, _ = degradation_threshold(maps, pairs=50, seed=1, return_pairs=True)
    assert len(p2) == 50 and (p2[:, 0] != p2[:, 1]).all()
    with pytest.raises(CxrsalError, match="at least two"):
        degradation_threshold(maps[:1])


def test_average_mask():
    masks = np.zeros((4, 3, 3))
    masks[:2, 0, 0] = 1
    masks[:, 1, 1] = 1
    np.testing.assert_allclose(average_mask(masks), [[0.5, 0, 0], [0, 1, 0], [0, 0, 0]])


def test_pointwise_detection_by_hand():
    # three 2x2 class maps on a 64-px input: cells are 32 px, centres at 16 or 48
    maps = np.array([[[0, 1], [0, 0]],      # arg-max cell (0, 1): centre (x 48, y 16)
                     [[0, 0], [1, 0]],      # (1, 0): centre (x 16, y 48)
                     [[1, 0], [0, 0]]], float)
    boxes = [[(40, 0, 20, 20)], [(0, 0, 20, 20)], []]
    points = argmax_points(maps, 64)
    labels, scores = [1, 1, 0], [0.9, 0.2, 0.5]
    hits = pointwise_hits(points, labels, boxes)
    assert hits.tolist() == [True, False, False]
    assert pointwise_hits(points, labels, boxes, tolerance=28).tolist() == [True, True, False]
    # a negative image never hits, even inside a box; without boxes a mask decides (SIIM)
    assert pointwise_hits(points, [0, 1, 1], boxes).tolist() == [False, False, False]
    mask = np.zeros((64, 64), bool)
    mask[:20, :20] = True                     # image 2's arg-max centre (16, 16) lies on it
    assert pointwise_hits(points, labels[:2] + [1], boxes, [None, None, mask]).tolist() == [True, False, True]
    # ranked by score: img0 (hit, P 1/1), img2 (negative: FP), img1 (positive missed)
    # recall reaches 1/2 at precision 1, then no more true positives: AP = 0.5
    assert pointwise_average_precision(labels, scores, hits) == 0.5
    hits2 = np.array([True, True, False])
    # img0 TP (P 1), img2 FP, img1 TP (P 2/3): AP = 0.5 * 1 + 0.5 * 2/3
    assert pointwise_average_precision(labels, scores, hits2) == pytest.approx(0.5 + 1 / 3)


def test_threshold_pairs_reachable_from_config_and_cli():
    cfg = load_config(overrides=["randomization.pairs=7", "randomization.pairs_per_image=3"])
    assert (cfg.randomization.pairs, cfg.randomization.pairs_per_image) == (7, 3)
    maps = np.random.default_rng(1).random((5, 8, 8))
    _, pairs, _ = degradation_threshold(maps, pairs=7, seed=0, return_pairs=True)
    assert len(pairs) == 7 and (pairs[:, 0] != pairs[:, 1]).all()
    _, pairs, _ = degradation_threshold(maps, pairs_per_image=3, seed=0, return_pairs=True)
    assert len(pairs) == 15 and (np.bincount(pairs[:, 0]) == 3).all()
    from click.testing import CliRunner

    from cxrsal.cli.main import cli

    help_text = CliRunner().invoke(cli, ["randomize", "--help"]).output
    assert "--pairs-per-image" in help_text and "--pairs " in help_text and "--similarity-maps" in help_text
    assert "--order [top-down|bottom-up|independent]" in help_text and "--smooth-samples" in help_text
    r = CliRunner().invoke(cli, ["randomize", "--model", "x", "--out", "y", "--order", "bottom-up", "--independent"])
    assert r.exit_code == 2 and "--independent contradicts --order bottom-up" in r.output
