"""Faithfulness metrics (ROAD, deletion, insertion) against dense solves and loops written here,
and on an analytic model whose faithful map is known by construction."""

import doctest
import math
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import pytest
from scipy import ndimage
from scipy.special import expit

from cxrsal.errors import CxrsalError
from cxrsal.metrics import faithfulness as fm
from helpers import loaded_by


def dense_impute(image, removed):
    """Linear imputation by a dense system built pixel by pixel: each removed pixel equals the
    weighted mean of its existing neighbours (1/6 direct, 1/12 diagonal)."""
    height, width, nch = image.shape
    pixels = [(y, x) for y in range(height) for x in range(width) if removed[y, x]]
    index = {p: i for i, p in enumerate(pixels)}
    a = np.zeros((len(pixels), len(pixels)))
    b = np.zeros((len(pixels), nch))
    for i, (y, x) in enumerate(pixels):
        neighbours = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if (dy or dx) and 0 <= y + dy < height and 0 <= x + dx < width:
                    neighbours.append(((y + dy, x + dx), 1 / 6 if dy == 0 or dx == 0 else 1 / 12))
        total = sum(w for _, w in neighbours)
        a[i, i] = 1.0
        for q, w in neighbours:
            if q in index:
                a[i, index[q]] -= w / total
            else:
                b[i] += w / total * image[q]
    out = image.copy()
    for (y, x), v in zip(pixels, np.linalg.solve(a, b)):
        out[y, x] = v
    return out, a, pixels


def masks():
    rng = np.random.default_rng(3)
    yield "random", rng.random((7, 5)) < 0.4
    yield "dense", rng.random((6, 9)) < 0.85
    border = np.zeros((6, 6), bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    yield "border", border
    corner = np.zeros((5, 4), bool)
    corner[0, 0] = corner[-1, -1] = True
    yield "corners", corner
    all_but_one = np.ones((5, 6), bool)
    all_but_one[2, 3] = False
    yield "all_but_one", all_but_one
    yield "one_row", np.array([[True, False, True, True, False, True]])
    blob = np.zeros((20, 18), bool)
    blob[3:15, 2:12] = True                                  # one block larger than a leaf of the dissection
    yield "blob", blob


@pytest.mark.parametrize("name, removed", list(masks()))
def test_imputation_matches_a_dense_solve(name, removed):
    rng = np.random.default_rng(4)
    image = rng.random(removed.shape + (3,))                # three different channels
    expected, _, _ = dense_impute(image, removed)
    got = fm.impute(image, removed, rng=None, noise_sd=0.0)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(got[~removed], image[~removed])


@pytest.mark.parametrize("name, removed", list(masks()))
def test_imputation_system_is_the_dense_system_scaled(name, removed):
    image = np.random.default_rng(5).random(removed.shape + (2,))
    matrix, rhs, pixels = fm.imputation_system(image, removed)
    _, dense, dense_pixels = dense_impute(image, removed)
    a = matrix.toarray()
    np.testing.assert_allclose(a, a.T, rtol=0, atol=0)
    # the dense rows divided by the weight sums, in row-major order
    rank = {p: i for i, p in enumerate(dense_pixels)}
    perm = [rank[divmod(int(p), removed.shape[1])] for p in pixels]
    scaled = a / np.diag(a)[:, None]
    np.testing.assert_allclose(scaled, dense[np.ix_(perm, perm)], rtol=0, atol=1e-12)
    assert rhs.shape == (len(pixels), 2)


def test_imputation_of_float32_images_and_edge_cases():
    rng = np.random.default_rng(6)
    image = rng.random((9, 8, 3)).astype(np.float32)
    removed = rng.random((9, 8)) < 0.5
    expected, _, _ = dense_impute(image.astype(np.float64), removed)
    got = fm.impute(image, removed, rng=None, noise_sd=0.0)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    # nothing removed: an unchanged copy
    same = fm.impute(image, np.zeros((9, 8), bool), rng=None)
    np.testing.assert_array_equal(same, image)
    assert same is not image
    # everything removed: nothing is known, every pixel takes the image's per-channel mean
    mean = fm.impute(image, np.ones((9, 8), bool), rng=None, noise_sd=0.0)
    np.testing.assert_allclose(mean, np.broadcast_to(image.mean(axis=(0, 1), dtype=np.float64), image.shape),
                               rtol=0, atol=1e-6)
    with pytest.raises(CxrsalError, match="do not match"):
        fm.impute(image, np.zeros((8, 9), bool), rng=None)
    with pytest.raises(CxrsalError, match=r"\[H, W, C\]"):
        fm.impute(image[..., 0], np.zeros((9, 8), bool), rng=None)


def test_identical_channels_are_imputed_alike():
    # a grey X-ray replicated into three channels stays grey
    rng = np.random.default_rng(7)
    grey = rng.random((12, 10, 1))
    removed = rng.random((12, 10)) < 0.6
    got = fm.impute(np.repeat(grey, 3, axis=2), removed, rng=None, noise_sd=0.0)
    np.testing.assert_allclose(got, np.repeat(fm.impute(grey, removed, rng=None, noise_sd=0.0), 3, axis=2),
                               rtol=0, atol=1e-12)


def test_noise_only_on_removed_pixels_with_its_sd():
    rng = np.random.default_rng(8)
    image = rng.random((64, 64, 3))
    removed = rng.random((64, 64)) < 0.5
    clean = fm.impute(image, removed, rng=None, noise_sd=0.0)
    noisy = fm.impute(image, removed, rng=np.random.default_rng(9), noise_sd=0.05)
    np.testing.assert_array_equal(noisy[~removed], image[~removed])
    noise = (noisy - clean)[removed]                         # about 6000 draws
    assert abs(noise.std() - 0.05) < 0.005                   # the sd's standard error is about 0.0005
    assert abs(noise.mean()) < 0.005
    # the same generator state gives the same image
    again = fm.impute(image, removed, rng=np.random.default_rng(9), noise_sd=0.05)
    np.testing.assert_array_equal(again, noisy)


def slow_order(relevance):
    """Most relevant first, lower index first among equals, non-finite last (by index)."""
    values = relevance.ravel().tolist()
    return sorted(range(len(values)), key=lambda i: (not math.isfinite(values[i]),
                                                     -values[i] if math.isfinite(values[i]) else 0.0, i))


def test_relevance_order_ties_and_non_finite_values():
    smap = np.array([[0.5, 2.0, np.nan, 0.5],
                     [np.inf, -3.0, 2.0, -np.inf],
                     [0.5, 0.0, 0.0, 2.0]])
    got = fm.relevance_order(smap, channels=False)
    assert got.tolist() == slow_order(smap)
    assert got.tolist() == [1, 6, 11, 0, 3, 8, 9, 10, 5, 2, 4, 7]


def test_relevance_order_sums_absolute_values_over_channels():
    rng = np.random.default_rng(10)
    raw = np.round(rng.normal(size=(6, 7, 3)), 1)            # rounded: many ties
    got = fm.relevance_order(raw, channels=True)
    expected = slow_order(sum(abs(raw[..., c]) for c in range(3)))
    assert got.tolist() == expected
    # a signed raw value is not its magnitude without channels
    assert fm.relevance_order(np.array([[-5.0, 1.0]]), channels=False).tolist() == [1, 0]
    assert fm.relevance_order(np.array([[[-5.0], [1.0]]]), channels=True).tolist() == [0, 1]
    with pytest.raises(CxrsalError, match="channels=True"):
        fm.relevance_order(raw[..., 0], channels=True)
    with pytest.raises(CxrsalError, match="channels=False"):
        fm.relevance_order(raw, channels=False)


def test_removed_count_rounds_half_up_exactly():
    for n in (1, 7, 35, 45, 85, 50176):
        for k in range(11):
            expected = math.floor(Fraction(k, 10) * n + Fraction(1, 2))
            assert fm.removed_count(k / 10, n) == expected
    assert fm.removed_count(0.7, 45) == 32                     # 31.5: in floating point 0.7 * 45 < 31.5
    with pytest.raises(CxrsalError, match=r"\[0, 1\]"):
        fm.removed_count(1.5, 10)


def test_road_batch_removes_each_fraction():
    rng = np.random.default_rng(11)
    image = rng.random((7, 5, 2))
    order = rng.permutation(35)
    morf, lerf = fm.road_batch(image, order, rng=np.random.default_rng(12), noise_sd=1.0)
    assert morf.shape == lerf.shape == (9, 7, 5, 2)
    # 35 pixels: 3.5, 10.5, 17.5, 24.5 and 31.5 round up
    counts = [4, 7, 11, 14, 18, 21, 25, 28, 32]
    for i, k in enumerate(counts):
        # with noise of sd 1 every imputed pixel differs from the image
        for batch, chosen in ((morf, order[:k]), (lerf, order[35 - k:])):
            changed = np.flatnonzero((batch[i] != image).any(axis=-1))
            assert sorted(changed.tolist()) == sorted(chosen.tolist())
    # without noise: exactly `impute` on those pixels
    morf, lerf = fm.road_batch(image, order, rng=None, noise_sd=0.0, fractions=(0.3,))
    removed = np.zeros(35, bool)
    removed[order[:11]] = True
    np.testing.assert_array_equal(morf[0], fm.impute(image, removed.reshape(7, 5), rng=None, noise_sd=0.0))
    with pytest.raises(CxrsalError, match="35 pixels"):
        fm.road_batch(image, order[:-1], rng=None)


def test_road_batch_on_an_executor_gives_the_same_images():
    rng = np.random.default_rng(19)
    image = rng.random((20, 17, 3)).astype(np.float32)
    order = rng.permutation(20 * 17)
    serial = fm.road_batch(image, order, rng=np.random.default_rng(20))
    with ThreadPoolExecutor(max_workers=2) as executor:
        threaded = fm.road_batch(image, order, rng=np.random.default_rng(20), executor=executor)
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a, b)
    empty = fm.road_batch(image, order, rng=None, fractions=())
    assert empty[0].shape == empty[1].shape == (0, 20, 17, 3)


def test_deletion_and_insertion_steps():
    rng = np.random.default_rng(13)
    image = rng.random((6, 5, 3)).astype(np.float32)
    order = rng.permutation(30)
    steps = 4
    deletion = fm.deletion_batch(image, order, steps=steps)
    assert deletion.shape == (5, 6, 5, 3) and deletion.dtype == np.float32
    mean = image.mean(axis=(0, 1), dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(deletion[0], image)
    np.testing.assert_array_equal(deletion[steps], np.broadcast_to(mean, image.shape))
    blurred = fm.gaussian_blur(image, sd=1.5)
    insertion = fm.insertion_batch(image, blurred, order, steps=steps)
    np.testing.assert_array_equal(insertion[0], blurred)
    np.testing.assert_array_equal(insertion[steps], image)
    # step k changes the first k/4 of 30 pixels, rounded half up: 7.5 -> 8, 15, 22.5 -> 23
    for k, count in enumerate([0, 8, 15, 23, 30]):
        flat_del = deletion[k].reshape(30, 3)
        flat_ins = insertion[k].reshape(30, 3)
        np.testing.assert_array_equal(flat_del[order[:count]], np.broadcast_to(mean, (count, 3)))
        np.testing.assert_array_equal(flat_del[order[count:]], image.reshape(30, 3)[order[count:]])
        np.testing.assert_array_equal(flat_ins[order[:count]], image.reshape(30, 3)[order[:count]])
        np.testing.assert_array_equal(flat_ins[order[count:]], blurred.reshape(30, 3)[order[count:]])
    with pytest.raises(CxrsalError, match="at least 1 step"):
        fm.deletion_batch(image, order, steps=0)


def test_gaussian_blur_is_per_channel():
    image = np.random.default_rng(14).random((16, 12, 3))
    got = fm.gaussian_blur(image, sd=2.0)
    for c in range(3):
        np.testing.assert_allclose(got[..., c], ndimage.gaussian_filter(image[..., c], 2.0), rtol=0, atol=1e-12)


def test_curve_area_and_class_probability():
    assert fm.curve_area([0.0, 0.5, 1.0], [0.0, 1.0, 0.0]) == pytest.approx(0.5, abs=1e-12)
    assert fm.curve_area([0.1, 0.9], [1.0, 1.0]) == pytest.approx(0.8, abs=1e-12)
    logits = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(fm.class_probability(logits), 1 / (1 + np.exp(-logits)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(fm.class_probability(logits[:, None]), 1 / (1 + np.exp(-logits)), rtol=0, atol=1e-12)
    multi = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, -1.0]])
    expected = np.exp(multi[:, 1]) / np.exp(multi).sum(axis=1)
    np.testing.assert_allclose(fm.class_probability(multi, cls=1), expected, rtol=0, atol=1e-12)
    with pytest.raises(CxrsalError, match="explained class"):
        fm.class_probability(multi)
    with pytest.raises(CxrsalError, match="class 0 only"):
        fm.class_probability(logits, cls=1)


class Model:
    """An analytic model: the probability rises with the mean of the image inside one square.
    It counts its calls and their batch sizes."""

    def __init__(self, square=(slice(4, 12), slice(6, 14))):
        self.square = square
        self.batches = []

    def __call__(self, batch):
        self.batches.append(len(batch))
        return expit(10.0 * batch[:, self.square[0], self.square[1], :].mean(axis=(1, 2, 3)) - 5.0)


def loop_curves(predict, images, raw_maps, *, channels, rng_for, fractions, steps, blur_sd):
    """The curves by a loop: one image, one input, one call at a time."""
    out = []
    for i, image in enumerate(images):
        order = fm.relevance_order(raw_maps[i], channels=channels)
        morf, lerf = fm.road_batch(image, order, rng=rng_for(i), fractions=fractions)
        deletion = fm.deletion_batch(image, order, steps=steps)
        insertion = fm.insertion_batch(image, fm.gaussian_blur(image, sd=blur_sd), order, steps=steps)
        curves = [np.array([float(predict(x[None])[0]) for x in batch]) for batch in (morf, lerf, deletion, insertion)]
        out.append(curves)
    return out


def test_batched_curves_equal_a_per_image_loop():
    rng = np.random.default_rng(15)
    images = rng.random((3, 16, 18, 2))
    raw_maps = rng.normal(size=(3, 16, 18, 2))
    fractions, steps = (0.1, 0.25, 0.5, 0.9), 5

    def rng_for(i):
        return np.random.default_rng([21, i])

    model = Model()
    got = fm.faithfulness_curves(model, images, raw_maps, channels=True, rng_for=rng_for, fractions=fractions,
                                 steps=steps, blur_sd=1.5, batch_size=7)
    per_image = 2 * 4 + 2 * 6
    assert model.batches == [7] * (3 * per_image // 7) + [3 * per_image % 7]   # ceil(60 / 7) = 9 calls
    expected = loop_curves(Model(), images, raw_maps, channels=True, rng_for=rng_for, fractions=fractions,
                           steps=steps, blur_sd=1.5)
    x = np.arange(steps + 1) / steps
    for curves, (morf, lerf, deletion, insertion) in zip(got, expected):
        for a, b in ((curves.morf, morf), (curves.lerf, lerf), (curves.deletion, deletion),
                     (curves.insertion, insertion)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        assert curves.morf_auc == pytest.approx(np.trapezoid(morf, fractions), abs=1e-12)
        assert curves.lerf_auc == pytest.approx(np.trapezoid(lerf, fractions), abs=1e-12)
        assert curves.road_gap == pytest.approx(curves.lerf_auc - curves.morf_auc, abs=1e-12)
        assert curves.deletion_auc == pytest.approx(np.trapezoid(deletion, x), abs=1e-12)
        assert curves.insertion_auc == pytest.approx(np.trapezoid(insertion, x), abs=1e-12)
    # a result does not depend on the batch it was computed in
    alone = fm.faithfulness_curves(Model(), images[2:], raw_maps[2:], channels=True,
                                   rng_for=lambda i: rng_for(i + 2), fractions=fractions, steps=steps,
                                   blur_sd=1.5, batch_size=64)
    np.testing.assert_allclose(alone[0].morf, got[2].morf, rtol=0, atol=1e-12)
    np.testing.assert_allclose(alone[0].insertion, got[2].insertion, rtol=0, atol=1e-12)


def test_curves_without_road_and_bad_calls():
    rng = np.random.default_rng(16)
    images = rng.random((2, 8, 8, 1))
    maps = rng.random((2, 8, 8))
    model = Model(square=(slice(2, 6), slice(2, 6)))
    got = fm.faithfulness_curves(model, images, maps, channels=False, rng_for=None, fractions=(), steps=4,
                                 batch_size=4)
    assert model.batches == [4] * 5                          # 2 images x 2 x 5 steps
    assert got[0].morf.size == 0 and math.isnan(got[0].road_gap)
    with pytest.raises(CxrsalError, match="2 probabilities for a batch of 3"):
        fm.faithfulness_curves(lambda b: np.zeros(2), images, maps, channels=False, rng_for=None, fractions=(),
                               steps=4, batch_size=3)
    with pytest.raises(CxrsalError, match="1 raw maps for 2 images"):
        fm.faithfulness_curves(model, images, maps[:1], channels=False, rng_for=None)


def test_an_oracle_map_is_more_faithful_than_a_random_one():
    # the model reads only a square; the square is bright on a dark textured background, so
    # removing it (imputed from the dark surroundings) drops the probability: the map equal to
    # the square ranks exactly the pixels the model uses first
    rng = np.random.default_rng(17)
    square = (slice(8, 20), slice(10, 22))
    images = 0.1 + 0.1 * rng.random((4, 32, 32, 1))
    images[:, square[0], square[1], :] = 0.8 + 0.1 * rng.random((4, 12, 12, 1))
    oracle = np.zeros((4, 32, 32))
    oracle[:, square[0], square[1]] = 1.0
    oracle += 1e-3 * rng.random((4, 32, 32))               # an order within and outside the square
    random_maps = rng.random((4, 32, 32))

    def curves(maps):
        return fm.faithfulness_curves(Model(square), images, maps, channels=False,
                                      rng_for=lambda i: np.random.default_rng([5, i]), batch_size=50)

    for good, bad in zip(curves(oracle), curves(random_maps)):
        assert good.morf_auc < bad.morf_auc - 0.2
        assert good.road_gap > bad.road_gap + 0.2
        assert good.deletion_auc < bad.deletion_auc
        assert good.insertion_auc > bad.insertion_auc


def test_doctests_and_no_tensorflow():
    assert doctest.testmod(fm).failed == 0
    assert loaded_by("import cxrsal.metrics.faithfulness", ["tensorflow", "keras"]) == []
