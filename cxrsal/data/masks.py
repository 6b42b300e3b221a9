"""Ground-truth masks at a model's size: RSNA boxes and resized SIIM masks."""

import math

import numpy as np


def _hw(size):
    if np.isscalar(size):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def boxes_to_mask(boxes, size, original_size=1024):
    """Union of boxes `(x, y, width, height)` (pixels of an `original_size` image) at `size`.

    A pixel of the output is inside when any part of it is covered by a box: the scaled start
    is floored and the scaled end ceiled. `size` and `original_size` are an int (square) or
    (height, width).

    >>> boxes_to_mask([(2, 0, 3, 1)], 4, 8).astype(int).tolist()
    [[0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    """
    h, w = _hw(size)
    oh, ow = _hw(original_size)
    sy, sx = h / oh, w / ow
    mask = np.zeros((h, w), bool)
    for x, y, bw, bh in boxes:
        x0 = max(0, math.floor(x * sx))
        y0 = max(0, math.floor(y * sy))
        x1 = min(w, math.ceil((x + bw) * sx))
        y1 = min(h, math.ceil((y + bh) * sy))
        mask[y0:y1, x0:x1] = True
    return mask


def box_problem(box, original_size):
    """Why `box` cannot be used on an image of `original_size`, or None when it is fine."""
    oh, ow = _hw(original_size)
    x, y, bw, bh = box
    if not all(math.isfinite(v) for v in box):
        return f"box {box} has a non-finite value"
    if bw <= 0 or bh <= 0:
        return f"box (x={x:g}, y={y:g}, width={bw:g}, height={bh:g}) has no area"
    if x < 0 or y < 0 or x + bw > ow or y + bh > oh:
        return (f"box (x={x:g}, y={y:g}, width={bw:g}, height={bh:g}) lies outside the "
                f"{ow}x{oh} image")
    return None


def resize_mask(mask, size):
    """Resize a bool mask; an output pixel is inside when any part of it was inside."""
    import cv2

    h, w = _hw(size)
    if mask.shape == (h, w):
        return mask.astype(bool)
    area = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    return area > 1e-6
