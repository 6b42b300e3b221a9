"""What one `cxrsal score` run collects (`ScoreSheet`): the images scored and their ground truth,
and the rows written for every method and baseline; every scorer (a store's maps, each
registered baseline in `score_baselines`) adds its rows through it."""

from dataclasses import dataclass, field

import numpy as np

from ..metrics import bootstrap_ap_ci, pointwise_average_precision, pointwise_hits
from ..resizing import scale_boxes


def scaled_boxes(row, size):
    """A manifest row's boxes (original pixels) in pixels of a `size` x `size` map."""
    from ..data.manifest import parse_boxes

    return scale_boxes(parse_boxes(row["boxes"]), (row["height"], row["width"]), size)


def truth_masks(data_dir, data, rows, size):
    """image_id -> ground-truth mask at the maps' size: boxes (RSNA, a folder's boxes.csv, COCO
    boxes) drawn at that size from their original coordinates (exact at any size); masks (SIIM,
    a folder's masks/, COCO segmentations) as prepared, resized when needed."""
    from ..data import boxes_to_mask
    from ..data.manifest import parse_boxes
    from ..data.pipeline import load_batch
    from ..data.prepare import annotation_of, check_prepared

    if annotation_of(check_prepared(data_dir)) == "boxes":
        return {r["image_id"]: boxes_to_mask(parse_boxes(r["boxes"]), size, (r["height"], r["width"])) for r in rows}
    masks = load_batch(data, [r["index"] for r in rows], size)[2]
    return {r["image_id"]: m[..., 0] > 0 for r, m in zip(rows, masks)}


@dataclass
class ScoreSheet:
    """The images of one scoring and the rows it writes.

    `rows`: the split's manifest rows by image id; `ids`: the store's images (in its order), with
    their ground truth at the maps' `size` (`masks`, `boxes`); `logits`: the model's logit of each
    image, filled as the store's maps are read. `records` become scores.csv (one row per image x
    method x metric), `pointwise` pointwise.csv (one row per method)."""
    data_dir: str
    data: object               # the split's PreparedSplit
    rows: dict
    ids: list
    size: int
    model_name: str
    step: str
    do_utility: bool
    do_pointwise: bool
    replicates: int            # bootstrap replicates of the pointwise AP's interval (0: none)
    seed: int
    tolerance: float           # pixels around a true box still counted a pointwise hit
    masks: dict = field(default_factory=dict)
    boxes: dict = field(default_factory=dict)
    logits: dict = field(default_factory=dict)
    records: list = field(default_factory=list)
    pointwise: list = field(default_factory=list)

    def __post_init__(self):
        self.masks = truth_masks(self.data_dir, self.data, [self.rows[i] for i in self.ids], self.size)
        self.boxes = {i: scaled_boxes(self.rows[i], self.size) for i in self.ids}

    @property
    def positives(self):
        """The store's positive images, in its order."""
        return [i for i in self.ids if self.rows[i]["label"] == 1]

    def labels(self, image_ids):
        return [self.rows[i]["label"] for i in image_ids]

    def truth(self, image_ids):
        """Ground-truth masks of any images of the split (not only the store's)."""
        return truth_masks(self.data_dir, self.data, [self.rows[i] for i in image_ids], self.size)

    def hits_of(self, points, image_ids, truth=None):
        """A point inside a box (RSNA) or on the mask (SIIM, no boxes) of a positive image;
        `truth`: the masks of `image_ids` (default: the store's)."""
        truth = self.masks if truth is None else truth
        return list(pointwise_hits(points, self.labels(image_ids),
                                   [self.boxes[i] if i in self.boxes else scaled_boxes(self.rows[i], self.size)
                                    for i in image_ids],
                                   [truth.get(i) for i in image_ids], tolerance=self.tolerance))

    def add(self, image_id, method, metrics, **extra):
        """One row per metric of one image and method."""
        for metric, value in metrics.items():
            self.records.append(dict(image_id=image_id, model=self.model_name, method=method, step=self.step,
                                     metric=metric, value=value, label=self.rows[image_id]["label"], **extra))

    def add_pointwise(self, model, method, labels, scores, hits, centres):
        """Pointwise detection AP ([B]) of one method over images ranked by `scores`, with its
        bootstrap interval; nothing when no image is positive."""
        if any(labels):
            n_neg = int(len(labels) - sum(labels))
            low, high = (bootstrap_ap_ci(labels, scores, hits, replicates=self.replicates, seed=self.seed)
                         if self.replicates else (np.nan, np.nan))
            self.pointwise.append(dict(model=model, method=method, step=self.step, n=len(labels), n_negative=n_neg,
                                       pointwise_ap=pointwise_average_precision(labels, scores, hits),
                                       centres=centres, ci_low=low, ci_high=high))
