"""Detector heatmaps and pointwise detection ([B]): the arg-max cell of a map as a detection."""

import numpy as np

from ..errors import CxrsalError
from ..resizing import box_pixels, hw


def box_heatmap(boxes, scores, shape, *, min_score=0.01, original_size=None):
    """Each pixel gets the highest score among the boxes (score > min_score) covering it.

    `boxes`: (x, y, width, height) in pixels of `original_size` (default: `shape`); a pixel
    is covered when any part of it is (the rule of `boxes_to_mask`).

    >>> box_heatmap([(0, 0, 2, 2), (1, 1, 2, 1)], [0.5, 0.9], (3, 3)).tolist()
    [[0.5, 0.5, 0.0], [0.5, 0.9, 0.9], [0.0, 0.0, 0.0]]
    """
    heat = np.zeros(hw(shape), np.float64)
    if len(boxes) != len(scores):
        raise CxrsalError(f"{len(boxes)} boxes but {len(scores)} scores")
    for box, s in zip(boxes, scores):
        if s <= min_score:
            continue
        y0, y1, x0, x1 = box_pixels(box, original_size if original_size is not None else shape, shape)
        heat[y0:y1, x0:x1] = np.maximum(heat[y0:y1, x0:x1], s)
    return heat


def argmax_points(maps, input_size, *, geometry=None):
    """(y, x) in input pixels of each map's arg-max cell: the point [B] calls a detection.

    `maps` [N, h, w]: a map at any resolution (a native WILDCAT class map, or a map upsampled
    to the input). `geometry=None` ("grid", [B]'s text): cell i of h sits at (i + 1/2) d,
    d = input_size / h. With the feature map's receptive-field `geometry` ({"start", "jump",
    "size"}, `cxrsal.models.receptive_field.feature_geometry`), the cell is placed at its receptive
    field's centre, start + u jump + 1/2, where u is the cell's coordinate on the feature grid
    (an upsampled map's pixel maps back to it by the half-pixel rule of bilinear resizing).

    >>> argmax_points([[[0, 1], [0, 0]]], 64).tolist()          # cell (0, 1), d = 32
    [[16.0, 48.0]]
    >>> geo = {"start": [0.0, 0.0], "jump": [32, 32], "size": [2, 2]}   # ResNet: 15.5 px off
    >>> argmax_points([[[0, 1], [0, 0]]], 64, geometry=geo).tolist()
    [[0.5, 32.5]]
    """
    points = []
    for m in maps:
        m = np.asarray(m)
        idx = np.unravel_index(np.argmax(m), m.shape)
        point = []
        for axis, i in enumerate(idx):
            if geometry is None:
                point.append((i + 0.5) * input_size / m.shape[axis])
            else:
                u = (i + 0.5) * geometry["size"][axis] / m.shape[axis] - 0.5
                point.append(geometry["start"][axis] + u * geometry["jump"][axis] + 0.5)
        points.append(point)
    return np.array(points, np.float64).reshape(-1, 2)


def points_in_boxes(points, boxes, *, tolerance=0.0):
    """Whether each (y, x) lies inside one of its image's boxes (x, y, width, height)."""
    return np.array([any(x - tolerance <= px <= x + w + tolerance and y - tolerance <= py <= y + h + tolerance
                         for x, y, w, h in bxs) for (py, px), bxs in zip(points, boxes)], bool)


def points_in_masks(points, masks):
    """Whether each (y, x) falls on a pixel of its image's mask (points outside the image miss)."""
    hits = []
    for (py, px), mask in zip(points, masks):
        i, j = int(np.floor(py)), int(np.floor(px))
        hits.append(bool(0 <= i < mask.shape[0] and 0 <= j < mask.shape[1] and mask[i, j]))
    return np.array(hits, bool)


def pointwise_hits(points, labels, boxes, masks=None, *, tolerance=0.0):
    """Whether each detection point (y, x) hits: on a positive image, inside one of its boxes
    (x, y, width, height, in the points' pixels; RSNA) -- or, for an image without boxes, on a
    pixel of its mask (SIIM). Negative images and missing points (NaN) never hit.

    >>> pointwise_hits([(1, 1), (1, 1), (0, 0)], [1, 0, 1], [[(0, 0, 2, 2)], [(0, 0, 2, 2)], []],
    ...                [None, None, [[0, 1], [0, 0]]]).tolist()
    [True, False, False]
    """
    masks = masks if masks is not None else [None] * len(points)
    out = []
    for p, label, bxs, mask in zip(points, labels, boxes, masks):
        if label != 1 or not np.isfinite(p).all():
            out.append(False)
        elif bxs:
            out.append(bool(points_in_boxes([p], [bxs], tolerance=tolerance)[0]))
        elif mask is not None:
            out.append(bool(points_in_masks([p], [np.asarray(mask)])[0]))
        else:
            out.append(False)
    return np.array(out, bool)


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
