"""Box-to-mask (any covered part counts) and mask resizing, against hand-computed answers."""

import numpy as np

from cxrsal.data import boxes_to_mask
from cxrsal.data.masks import box_problem, resize_mask


def slow_boxes_to_mask(boxes, size, original):
    """Reference: output pixel (r, c) covers [c, c+1) x [r, r+1) in output units; inside when the
    box, scaled to output units, overlaps that square with positive area."""
    s = size / original
    out = np.zeros((size, size), bool)
    for r in range(size):
        for c in range(size):
            for x, y, w, h in boxes:
                if x * s < c + 1 and (x + w) * s > c and y * s < r + 1 and (y + h) * s > r:
                    out[r, c] = True
    return out


def test_hand_example():
    # 1024 image, box x=264 y=152 w=213 h=379 at 32 px: scale 1/32
    # x: 8.25 -> floor 8, end 477/32 = 14.906 -> ceil 15; y: 4.75 -> 4, end 531/32 = 16.59 -> 17
    m = boxes_to_mask([(264, 152, 213, 379)], 32, 1024)
    expected = np.zeros((32, 32), bool)
    expected[4:17, 8:15] = True
    np.testing.assert_array_equal(m, expected)


def test_union_and_random_against_slow_loop():
    rng = np.random.default_rng(1)
    for _ in range(30):
        boxes = []
        for _ in range(rng.integers(1, 4)):
            x, y = rng.uniform(0, 900, 2)
            w, h = rng.uniform(1, 1024 - max(x, y), 2)
            boxes.append((x, y, w, h))
        size = int(rng.choice([7, 32, 100, 320]))
        np.testing.assert_array_equal(boxes_to_mask(boxes, size, 1024), slow_boxes_to_mask(boxes, size, 1024))


def test_non_square_original():
    # 200 (h) x 100 (w) original, box covering the right half of the top half, output 10x10
    m = boxes_to_mask([(50, 0, 50, 100)], (10, 10), (200, 100))
    expected = np.zeros((10, 10), bool)
    expected[0:5, 5:10] = True
    np.testing.assert_array_equal(m, expected)


def test_box_problem():
    assert box_problem((0, 0, 1024, 1024), 1024) is None
    assert "outside" in box_problem((1000, 0, 30, 10), 1024)
    assert "outside" in box_problem((-1, 0, 30, 10), 1024)
    assert "no area" in box_problem((5, 5, 0, 10), 1024)


def test_resize_mask_any_coverage():
    m = np.zeros((8, 8), bool)
    m[3, 5] = True                       # one pixel: at 4x4 lands in cell (1, 2)
    r = resize_mask(m, 4)
    assert r.sum() == 1 and r[1, 2]
    m2 = np.zeros((9, 9), bool)
    m2[4, 4] = True                      # 9 -> 4: pixel 4 spans cells 1 and 2 (4*4/9=1.78..2.22)
    r2 = resize_mask(m2, 4)
    assert r2[1:3, 1:3].all() and r2.sum() == 4
