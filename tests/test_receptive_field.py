"""Receptive-field geometry (cxrsal.models.receptive_field): where each cell of a feature map is
centred in the input, by hand from each network's layers and measured by a gradient; the points
the pointwise game takes from a map at those centres or on [B]'s grid."""

import keras
import numpy as np
import pytest

from cxrsal.metrics import argmax_points
from cxrsal.models import build_model
from cxrsal.models.receptive_field import feature_geometry


@pytest.mark.parametrize("arch, start, jump", [
    # by hand from each network's layers (valid padding after explicit ZeroPadding2D):
    # ResNet: 7x7/2 conv after 3 px padding and 3x3/2 pool after 1 px start at pixel 0, and
    # so does every later stride-2 3x3 (1 px padding) or 1x1 layer: start 0, cell centres
    # 32 i + 1/2, 15.5 px before [B]'s (i + 1/2) 32
    ("resnet18", 0.0, 32), ("resnet50", 0.0, 32),
    # DenseNet: each 2x2/2 average pool of a transition moves the start by half its stride
    # in input pixels: 2 + 4 + 8 = 14 -> centres 32 i + 14.5, 1.5 px before the grid
    ("densenet121", 14.0, 32),
    # VGG-19: 'same' 3x3 convs; four 2x2/2 pools (block5's not used) -> 0.5 + 1 + 2 + 4 = 7.5:
    # centres 16 i + 8, on the grid
    ("vgg19", 7.5, 16)])
def test_receptive_field_centres_by_hand(arch, start, jump):
    geo = feature_geometry(build_model(arch, "classification", (224, 224, 1)))
    assert geo["start"] == [start, start] and geo["jump"] == [jump, jump]
    grid_centre = jump / 2
    assert {"resnet18": 15.5, "resnet50": 15.5, "densenet121": 1.5, "vgg19": 0.0}[arch] == \
        grid_centre - (start + 0.5)


def test_receptive_field_centre_measured_by_a_gradient():
    """An all-positive linear network: the gradient of one interior cell is symmetric about its
    receptive field's centre, so its centroid measures the centre independently."""
    keras.utils.set_random_seed(0)
    x = keras.Input((64, 64, 1), name="image")
    h = keras.layers.ZeroPadding2D(2)(x)
    h = keras.layers.Conv2D(1, 5, strides=2, kernel_initializer="ones", use_bias=False)(h)
    h = keras.layers.AveragePooling2D(2, strides=2)(h)
    h = keras.layers.Conv2D(1, 3, strides=2, padding="same", kernel_initializer="ones", use_bias=False)(h)
    h = keras.layers.Conv2D(1, 3, dilation_rate=2, padding="same", kernel_initializer="ones", use_bias=False)(h)
    f = keras.layers.Identity(name="features")(h)
    model = keras.Model(x, f)
    geo = feature_geometry(model)
    import tensorflow as tf

    t = tf.constant(np.ones((1, 64, 64, 1), np.float32))
    for i, j in ((3, 3), (4, 3)):   # receptive fields inside the image (no padding taps)
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = model(t)[0, i, j, 0]
        g = tape.gradient(y, t).numpy()[0, ..., 0]
        ys, xs = np.mgrid[:64, :64] + 0.5
        centre = ((g * ys).sum() / g.sum(), (g * xs).sum() / g.sum())
        expected = (geo["start"][0] + i * geo["jump"][0] + 0.5, geo["start"][1] + j * geo["jump"][1] + 0.5)
        np.testing.assert_allclose(centre, expected, atol=1e-4)


def test_argmax_points_on_the_grid_and_at_receptive_field_centres():
    native = np.zeros((2, 2))
    native[1, 0] = 1.0
    assert argmax_points([native], 64).tolist() == [[48.0, 16.0]]                 # [B]'s grid
    geo = {"start": [0.0, 0.0], "jump": [32, 32], "size": [2, 2]}
    assert argmax_points([native], 64, geometry=geo).tolist() == [[32.5, 0.5]]
    # the same cell upsampled to the input (bilinear, half-pixel): the peak pixel maps back to it
    up = np.zeros((64, 64))
    up[47, 15] = 1.0        # pixel centre (47.5, 15.5) = feature coordinate (0.984, -0.016)
    np.testing.assert_allclose(argmax_points([up], 64, geometry=geo)[0], [0.984375 * 32 + 0.5, -0.015625 * 32 + 0.5])
    np.testing.assert_allclose(argmax_points([up], 64)[0], [47.5, 15.5])
