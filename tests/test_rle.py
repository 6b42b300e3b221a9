"""SIIM RLE against a slow pixel loop written here, and hand-made strings with known answers."""

import numpy as np
import pytest

from cxrsal.data import rle
from cxrsal.errors import RLEError


def slow_decode(text, height, width):
    """The Kaggle convention, one pixel at a time: column-major numbering, relative starts."""
    mask = np.zeros((height, width), bool)
    if text.strip() == "-1":
        return mask
    values = [int(v) for v in text.split()]
    position = 0
    for start, length in zip(values[0::2], values[1::2]):
        position += start
        for p in range(position, position + length):
            mask[p % height, p // height] = True   # column-major: p = col * height + row
        position += length
    return mask


def slow_encode(mask):
    height, width = mask.shape
    pixels = [bool(mask[p % height, p // height]) for p in range(height * width)]
    out, prev_end, p = [], 0, 0
    while p < len(pixels):
        if pixels[p]:
            start = p
            while p < len(pixels) and pixels[p]:
                p += 1
            out += [start - prev_end, p - start]
            prev_end = p
        else:
            p += 1
    return " ".join(map(str, out)) if out else "-1"


def random_masks():
    rng = np.random.default_rng(0)
    for _ in range(40):
        h, w = rng.integers(1, 40, size=2)
        density = rng.choice([0.02, 0.3, 0.5, 0.9])
        yield rng.random((h, w)) < density
    full = np.ones((9, 7), bool)
    yield full                                   # one run over every pixel, first and last
    edges = np.zeros((8, 6), bool)
    edges[-1, :] = True                          # last row: every run touches a column edge
    edges[0, :] = True                           # ... and the next column's first pixel
    yield edges
    corners = np.zeros((5, 5), bool)
    corners[0, 0] = corners[-1, -1] = True       # first and last pixel alone
    yield corners
    checker = (np.indices((16, 16)).sum(0) % 2).astype(bool)   # many one-pixel runs
    yield checker


@pytest.mark.parametrize("mask", list(random_masks()))
def test_round_trip_matches_slow_loop(mask):
    text = rle.encode(mask)
    assert text == slow_encode(mask)
    np.testing.assert_array_equal(rle.decode(text, *mask.shape), mask)
    np.testing.assert_array_equal(slow_decode(text, *mask.shape), mask)


def test_known_strings():
    # 3 rows x 2 columns; column-major numbering: col 0 = pixels 0,1,2; col 1 = 3,4,5
    assert rle.decode("0 1", 3, 2).tolist() == [[True, False], [False, False], [False, False]]
    # pixels 1,2 then (gap 1 after end 3) pixel 4
    assert rle.decode("1 2 1 1", 3, 2).astype(int).tolist() == [[0, 0], [1, 1], [1, 0]]
    # a run crossing from column 0 into column 1: pixels 2 and 3
    assert rle.decode("2 2", 3, 2).astype(int).tolist() == [[0, 1], [0, 0], [1, 0]]
    assert rle.decode("0 6", 3, 2).all()
    assert not rle.decode("-1", 3, 2).any()
    assert not rle.decode(" -1", 3, 2).any()      # the stage-1 CSV's leading space
    assert rle.encode(np.zeros((4, 4), bool)) == "-1"


def test_union_of_rows():
    a = rle.encode(np.pad(np.ones((2, 2), bool), ((0, 4), (0, 4))))
    b = rle.encode(np.pad(np.ones((3, 3), bool), ((1, 2), (1, 2))))
    got = rle.decode_union([a, b], 6, 6)
    np.testing.assert_array_equal(got, slow_decode(a, 6, 6) | slow_decode(b, 6, 6))
    assert got.sum() == 4 + 9 - 1


@pytest.mark.parametrize("text, fragment", [
    ("1 2 3", "odd number"),
    ("1 -2", "negative"),
    ("a 2", "not an integer"),
    ("1 2.5", "not an integer"),
    ("", "empty"),
    ("0 5 1 5", "past the image"),
    ("3 0", "length 0"),
])
def test_malformed_is_rejected_with_image_id(text, fragment):
    with pytest.raises(RLEError) as err:
        rle.decode(text, 3, 3, image_id="1.2.3.4")
    assert "ImageId 1.2.3.4" in str(err.value) and fragment in str(err.value)
