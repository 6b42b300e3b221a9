"""Every change of size in cxrsal, one rule each.

Images: area averaging when shrinking, bilinear when enlarging (`resize_images`, used alike by
the NumPy `load_batch` and the tf.data pipeline). Masks: a pixel is inside when any part of it
was inside (`resize_masks` for batches in TensorFlow, `resize_mask` for one mask in OpenCV where
TensorFlow is not loaded -- the `prepare` workers; the tests hold the two equal). Continuous
maps (saliency maps, probability maps, box heatmaps read back): the images' rule
(`resize_map`). Boxes (x, y, width, height) in pixels: scaled by the ratio of the sides
(`scale_boxes`); drawn on a grid, a pixel is covered when any part of it is (`box_pixels`, the
rule of `boxes_to_mask` and `box_heatmap`).
"""

import math

import numpy as np

MASK_EPS = 1e-6        # area coverage above which a resized mask pixel is inside


def hw(size):
    """(height, width) of an int (square) or a pair."""
    if np.isscalar(size):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def resize_method(src, dst):
    """The images' rule: "area" when shrinking, "bilinear" when enlarging."""
    return "area" if dst < src else "bilinear"


def resize_images(images, size):
    """Square images [N, S, S, C] (NumPy or tensor) to side `size`; a tensor back."""
    import tensorflow as tf

    src = int(images.shape[1])
    if src == size:
        return tf.convert_to_tensor(images)
    return tf.image.resize(images, (size, size), method=resize_method(src, size))


def resize_masks(masks, size):
    """Square masks [N, S, S, 1] (NumPy or tensor, 0/1) to side `size`, float 0/1; a tensor back."""
    import tensorflow as tf

    if int(masks.shape[1]) == size:
        return tf.cast(tf.convert_to_tensor(masks) > 0, tf.float32)
    return tf.cast(tf.image.resize(masks, (size, size), method="area") > MASK_EPS, tf.float32)


def resize_mask(mask, size):
    """One 2-D mask to `size` (int or (h, w)), bool; OpenCV (no TensorFlow)."""
    import cv2

    h, w = hw(size)
    if mask.shape == (h, w):
        return np.asarray(mask).astype(bool)
    return cv2.resize(np.asarray(mask, np.float32), (w, h), interpolation=cv2.INTER_AREA) > MASK_EPS


def resize_map(m, size):
    """A 2-D continuous map to `size` x `size` by the images' rule (float64); a map of that
    size is returned as it is."""
    import cv2

    m = np.asarray(m)
    if m.shape == (size, size):
        return m
    shrink = size < max(m.shape)
    out = cv2.resize(m.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out.astype(np.float64)


def scale_boxes(boxes, from_size, to_size):
    """Boxes (x, y, width, height) in pixels of a `from_size` image -> pixels of `to_size` (each
    an int, square, or (height, width)); floats."""
    fh, fw = hw(from_size)
    th, tw = hw(to_size)
    return [(x * tw / fw, y * th / fh, w * tw / fw, h * th / fh) for x, y, w, h in boxes]


def box_pixels(box, from_size, to_size):
    """Rows y0:y1 and columns x0:x1 of a `to_size` grid covered by `box` (pixels of `from_size`):
    a pixel is covered when any part of it is (scaled start floored, end ceiled, clipped)."""
    fh, fw = hw(from_size)
    th, tw = hw(to_size)
    sy, sx = th / fh, tw / fw
    x, y, w, h = box
    return (max(0, math.floor(y * sy)), min(th, math.ceil((y + h) * sy)),
            max(0, math.floor(x * sx)), min(tw, math.ceil((x + w) * sx)))
