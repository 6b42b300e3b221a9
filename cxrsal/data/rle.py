"""SIIM-ACR run-length encoding: relative starts, column-major pixel order, `-1` for empty.

The Kaggle convention: the string is pairs `start length`; pixels are numbered 0-based
down the first column, then the next (column-major); the first start is absolute and every
later start counts the pixels between the end of the previous run and the new run.
"""

import numpy as np

from ..errors import RLEError

EMPTY = "-1"


def _parse(rle, image_id):
    if rle is None:
        raise RLEError(image_id, "missing value (write -1 for an image without pneumothorax)")
    text = str(rle).strip()
    if text == EMPTY:
        return None
    if not text:
        raise RLEError(image_id, "empty string (write -1 for an image without pneumothorax)")
    try:
        values = np.array([int(tok) for tok in text.split()], dtype=np.int64)
    except ValueError:
        bad = next(tok for tok in text.split() if not tok.lstrip("-").isdigit())
        raise RLEError(image_id, f"{bad[:20]!r} is not an integer") from None
    if values.size % 2:
        raise RLEError(image_id, f"odd number of values ({values.size}); expected start/length pairs")
    if (values < 0).any():
        raise RLEError(image_id, f"negative value {values[values < 0][0]}")
    return values


def run_bounds(rle, n_pixels, image_id=None):
    """Absolute [start, end) of each run in column-major pixel order; empty arrays for `-1`."""
    values = _parse(rle, image_id)
    if values is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rel, lengths = values[0::2], values[1::2]
    if (lengths == 0).any():
        raise RLEError(image_id, "a run has length 0")
    # start_i = sum of relative starts up to i + sum of lengths before i
    ends = np.cumsum(rel) + np.cumsum(lengths)
    starts = ends - lengths
    if ends[-1] > n_pixels:
        raise RLEError(image_id, f"runs end at pixel {ends[-1]}, past the image's {n_pixels} pixels")
    return starts, ends


def decode(rle, height, width, *, image_id=None):
    """Decode one RLE string into a (height, width) bool mask.

    >>> decode("1 2 1 1", 3, 2).astype(int).tolist()  # column-major pixels 1, 2 and 4
    [[0, 0], [1, 1], [1, 0]]
    """
    n = int(height) * int(width)
    starts, ends = run_bounds(rle, n, image_id)
    flat = np.zeros(n + 1, np.int32)
    np.add.at(flat, starts, 1)
    np.add.at(flat, ends, -1)
    flat = np.cumsum(flat[:-1]) > 0
    # column-major numbering: the buffer is (width, height) row-major, transposed at the end
    return np.ascontiguousarray(flat.reshape(int(width), int(height)).T)


def decode_union(rles, height, width, *, image_id=None):
    """Union of several annotation rows of one image (SIIM gives one row per annotation)."""
    mask = np.zeros((int(height), int(width)), bool)
    for rle in rles:
        mask |= decode(rle, height, width, image_id=image_id)
    return mask


def encode(mask):
    """Exact inverse of `decode`: a 2-D mask to the Kaggle string (`-1` when empty)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    flat = mask.astype(bool).T.ravel()
    padded = np.concatenate([[False], flat, [False]])
    change = np.flatnonzero(padded[1:] != padded[:-1])
    if change.size == 0:
        return EMPTY
    starts, ends = change[0::2], change[1::2]
    prev_ends = np.concatenate([[0], ends[:-1]])
    pairs = np.empty(2 * starts.size, np.int64)
    pairs[0::2] = starts - prev_ends
    pairs[1::2] = ends - starts
    return " ".join(map(str, pairs.tolist()))
