"""WILDCAT pooling and class-wise pooling against NumPy references written here."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cxrsal.models import ClassWisePool, WildcatPool2d
from cxrsal.models.layers import GrayToBackbone, SelectClass


def ref_k(k, n):
    # WILDCAT's k (docs/methods.md), written independently of the layer: k<=0 -> 0, 0<k<1 -> round(k*n), k>n -> n, else int(k)
    if k <= 0:
        return 0
    if 0 < k < 1:
        return round(k * n)
    return n if k > n else int(k)


def ref_wildcat(x, kmax, kmin, alpha):
    """x: [B, H, W, C] -> [B, C], one image and class at a time with a full sort."""
    b, h, w, c = x.shape
    n = h * w
    km = ref_k(kmax, n)
    kn = km if kmin is None else ref_k(kmin, n)
    out = np.zeros((b, c))
    for i in range(b):
        for j in range(c):
            v = np.sort(x[i, :, :, j].ravel())[::-1]
            s = v[:km].mean()
            if kn > 0 and alpha != 0:
                s = (s + alpha * v[n - kn:].mean()) / 2
            out[i, j] = s
    return out


CASES = [
    ((2, 4, 5, 3), 1, None, 1.0),       # k=1, kmin unset -> kmin = kmax
    ((2, 4, 5, 3), 0.2, None, 0.7),     # fractional k: round(0.2 * 20) = 4 (original demo setting)
    ((1, 7, 7, 2), 0.3, 0.1, 0.5),      # round(14.7) = 15, round(4.9) = 5
    ((3, 3, 3, 1), 4, 0, 1.0),          # kmin 0: max term only
    ((2, 5, 4, 2), 3, 2, 0.0),          # alpha 0 (a float): no min term, no halving
    ((2, 2, 3, 2), 50, None, 1.0),      # k larger than the map: all 6 cells
    ((1, 6, 6, 4), 0.5, 0.25, 2.0),     # round(18) and round(9)
    ((2, 5, 5, 1), 0.1, None, 0.7),     # round(2.5) = 2 (Python's banker's rounding)
]


@pytest.mark.parametrize("shape, kmax, kmin, alpha", CASES)
def test_wildcat_matches_numpy(shape, kmax, kmin, alpha):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    got = WildcatPool2d(kmax, kmin, alpha)(x)
    np.testing.assert_allclose(np.asarray(got), ref_wildcat(x.astype(np.float64), kmax, kmin, alpha),
                               rtol=1e-5, atol=1e-6)


def test_wildcat_arange_literal():
    # one 2x2 map [[0, 1], [2, 3]]: kmax=1 -> 3; kmin=1, alpha=1 -> (3 + 0) / 2 = 1.5
    x = np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1)
    assert float(WildcatPool2d(1, None, 0.0)(x)[0, 0]) == 3.0
    assert float(WildcatPool2d(1, None, 1.0)(x)[0, 0]) == 1.5
    # kmax=2, kmin=1, alpha=0.5: (mean(3, 2) + 0.5 * 0) / 2 = 1.25
    assert float(WildcatPool2d(2, 1, 0.5)(x)[0, 0]) == 1.25


def test_kmax_zero_is_refused():
    with pytest.raises(ValueError, match="selects no region"):
        WildcatPool2d(0)(np.zeros((1, 2, 2, 1), np.float32))


@pytest.mark.parametrize("kmax, kmin, alpha", [(2, 1, 0.7), (0.25, None, 1.0), (1, None, 0.0)])
def test_wildcat_gradient_goes_to_selected_cells_only(kmax, kmin, alpha):
    rng = np.random.default_rng(1)
    x = tf.constant(rng.permutation(24).reshape(1, 4, 6, 1).astype(np.float32))   # distinct values
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(WildcatPool2d(kmax, kmin, alpha)(x))
    g = tape.gradient(y, x).numpy().ravel()
    v = x.numpy().ravel()
    n = v.size
    km = ref_k(kmax, n)
    kn = km if kmin is None else ref_k(kmin, n)
    expected = np.zeros(n)
    order = np.argsort(-v)
    scale = 0.5 if (kn > 0 and alpha != 0) else 1.0
    expected[order[:km]] += scale / km
    if kn > 0 and alpha != 0:
        expected[order[n - kn:]] += scale * alpha / kn
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-7)


def test_classwise_pool_averages_the_right_channels():
    # channels c*M .. c*M+M-1 belong to class c; arange makes every channel distinct
    x = np.arange(2 * 3 * 2 * 6, dtype=np.float32).reshape(2, 3, 2, 6)
    got = np.asarray(ClassWisePool(3)(x))
    expected = np.stack([x[..., 0:3].mean(-1), x[..., 3:6].mean(-1)], axis=-1)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got.shape == (2, 3, 2, 2)
    with pytest.raises(ValueError, match="not a multiple"):
        ClassWisePool(4)(x)


def test_gray_to_backbone_modes():
    x = np.array([0.0, 0.5, 1.0], np.float32).reshape(1, 1, 3, 1)
    tf_mode = np.asarray(GrayToBackbone("tf")(x))
    np.testing.assert_allclose(tf_mode[0, 0, :, 0], [-1, 0, 1], atol=1e-7)
    torch = np.asarray(GrayToBackbone("torch")(x))
    np.testing.assert_allclose(torch[0, 0, 2], (1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225],
                               rtol=1e-6)
    caffe = np.asarray(GrayToBackbone("caffe")(x))
    np.testing.assert_allclose(caffe[0, 0, 1], 127.5 - np.array([103.939, 116.779, 123.68]), rtol=1e-6)


@pytest.mark.parametrize("layer", [WildcatPool2d(0.2, 0.1, 0.7), WildcatPool2d(1, None, 0.0), ClassWisePool(4),
                                   GrayToBackbone("caffe"), SelectClass(1)])
def test_config_round_trip(layer):
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == config
