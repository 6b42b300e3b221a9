"""Ground-truth masks at a model's size: RSNA boxes and resized SIIM masks (the rules:
`cxrsal.resizing`)."""

import math

import numpy as np

from ..resizing import box_pixels, resize_mask  # noqa: F401  (resize_mask: the masks' rule, re-exported)
from ..resizing import hw as _hw


def boxes_to_mask(boxes, size, original_size=1024):
    """Union of boxes `(x, y, width, height)` (pixels of an `original_size` image) at `size`.

    A pixel of the output is inside when any part of it is covered by a box: the scaled start
    is floored and the scaled end ceiled. `size` and `original_size` are an int (square) or
    (height, width).

    >>> boxes_to_mask([(2, 0, 3, 1)], 4, 8).astype(int).tolist()
    [[0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    """
    mask = np.zeros(_hw(size), bool)
    for box in boxes:
        y0, y1, x0, x1 = box_pixels(box, original_size, size)
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

