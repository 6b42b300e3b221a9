"""Detector heatmaps and pointwise detection ([B]): the arg-max cell of a map as a detection."""

import math

import numpy as np

from ..errors import CxrsalError


def box_heatmap(boxes, scores, shape, *, min_score=0.01, original_size=None):
    """Each pixel gets the highest score among the boxes (score > min_score) covering it.

    `boxes`: (x, y, width, height) in pixels of `original_size` (default: `shape`); a pixel
    is covered when any part of it is (the rule of `boxes_to_mask`).

    >>> box_heatmap([(0, 0, 2, 2), (1, 1, 2, 1)], [0.5, 0.9], (3, 3)).tolist()
    [[0.5, 0.5, 0.0], [0.5, 0.9, 0.9], [0.0, 0.0, 0.0]]
    """
    h, w = shape
    oh, ow = original_size if original_size is not None else shape
    sy, sx = h / oh, w / ow
    heat = np.zeros((h, w), np.float64)
    if len(boxes) != len(scores):
        raise CxrsalError(f"{len(boxes)} boxes but {len(scores)} scores")
    for (x, y, bw, bh), s in zip(boxes, scores):
        if s <= min_score:
            continue
        y0, y1 = max(0, math.floor(y * sy)), min(h, math.ceil((y + bh) * sy))
        x0, x1 = max(0, math.floor(x * sx)), min(w, math.ceil((x + bw) * sx))
        heat[y0:y1, x0:x1] = np.maximum(heat[y0:y1, x0:x1], s)
    return heat


def pointwise_hits(maps, boxes, input_size, *, tolerance=0.0):
    """Whether each map's arg-max cell centre lies inside one of the image's boxes.

    `maps` [N, h, w] (WILDCAT class maps, or any map at its own resolution); the cell is a
    d x d box with d = input_size / h; `boxes[i]`: (x, y, width, height) in input pixels.
    """
    hits = []
    for m, bxs in zip(maps, boxes):
        m = np.asarray(m)
        i, j = np.unravel_index(np.argmax(m), m.shape)
        dy, dx = input_size / m.shape[0], input_size / m.shape[1]
        cy, cx = (i + 0.5) * dy, (j + 0.5) * dx
        hits.append(any(x - tolerance <= cx <= x + w + tolerance and y - tolerance <= cy <= y + h + tolerance
                        for x, y, w, h in bxs))
    return np.array(hits, bool)


def pointwise_average_precision(labels, scores, hits):
    """Detection AP over images ranked by class score: a positive image whose arg-max hits a
    box is a true positive, every other image a false positive; recall counts all positives.

    >>> pointwise_average_precision([1, 1, 0], [0.9, 0.8, 0.7], [True, False, False])   # P=1 at R=1/2
    0.5
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, np.float64)
    tp = labels & np.asarray(hits, bool)
    if not labels.any():
        raise CxrsalError("pointwise detection AP needs at least one positive image")
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], tp[order]
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]     # ties share a threshold
    tps = np.cumsum(t)[ends].astype(np.float64)
    precision = tps / (ends + 1)
    recall = tps / labels.sum()
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))
