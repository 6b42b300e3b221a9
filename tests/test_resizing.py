"""One rule per change of size (cxrsal.resizing), checked against OpenCV / TensorFlow / by hand."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from cxrsal.data import boxes_to_mask
from cxrsal.resizing import box_pixels, resize_images, resize_map, resize_mask, resize_masks, scale_boxes
from cxrsal.metrics import box_heatmap


@pytest.mark.parametrize("src, dst", [(64, 24), (64, 17), (30, 64), (16, 16)])
def test_mask_rule_is_the_same_in_opencv_and_tensorflow(src, dst):
    rng = np.random.default_rng(src + dst)
    for _ in range(5):
        m = np.zeros((src, src), bool)
        y, x = rng.integers(0, src - 3, 2)
        m[y:y + rng.integers(1, 9), x:x + rng.integers(1, 9)] = True
        one = resize_mask(m, dst)
        batch = np.asarray(resize_masks(m[None, ..., None].astype(np.float32), dst))[0, ..., 0] > 0
        np.testing.assert_array_equal(one, batch)
        # any part inside: the resized mask covers every original pixel's image
        ys, xs = np.nonzero(m)
        assert one[(ys * dst) // src, (xs * dst) // src].all()


def test_image_rule_area_down_bilinear_up():
    x = np.random.default_rng(0).random((2, 12, 12, 1)).astype(np.float32)
    down = np.asarray(resize_images(x, 4))
    # area of 3 x 3 blocks: their mean
    np.testing.assert_allclose(down, x.reshape(2, 4, 3, 4, 3, 1).mean(axis=(2, 4)), rtol=1e-5)
    up = np.asarray(resize_images(x, 24))
    np.testing.assert_allclose(up, np.asarray(tf.image.resize(x, (24, 24), method="bilinear")))
    np.testing.assert_array_equal(np.asarray(resize_images(x, 12)), x)


def test_map_rule_follows_the_images_rule():
    m = np.random.default_rng(1).random((12, 12))
    np.testing.assert_allclose(resize_map(m, 4), m.reshape(4, 3, 4, 3).mean(axis=(1, 3)), rtol=1e-5)
    np.testing.assert_allclose(resize_map(m, 24), cv2.resize(m.astype(np.float32), (24, 24),
                                                             interpolation=cv2.INTER_LINEAR), rtol=1e-6)
    assert resize_map(m, 12) is m


def test_box_rules_by_hand():
    # a box 264..477 x 152..531 of a 1024 film on a 32 grid: columns floor(8.25)=8 to ceil(14.9)=15
    assert box_pixels((264, 152, 213, 379), 1024, 32) == (4, 17, 8, 15)
    assert scale_boxes([(100, 50, 20, 10)], (400, 200), 100) == [(50.0, 12.5, 10.0, 2.5)]
    # boxes_to_mask and box_heatmap draw the same pixels
    boxes = [(264, 152, 213, 379), (600.5, 10, 1, 1)]
    mask = boxes_to_mask(boxes, 32, 1024)
    heat = box_heatmap(boxes, [0.5, 0.7], (32, 32), original_size=(1024, 1024))
    np.testing.assert_array_equal(mask, heat > 0)
