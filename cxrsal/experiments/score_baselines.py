"""The baselines `cxrsal score` scores beside the saliency maps (`--baselines`, config
score.baselines), one registered scorer each, keyed by its prefix in the option.

[A]'s low baseline is the average mask (where disease usually is); its high baselines are the
localization networks trained on the masks or boxes themselves: a detector's boxes (RetinaNet,
RSNA) and a segmentation network's probability maps (U-Net, SIIM), as `cxrsal predict-baseline`
writes them (docs/methods.md, "Baselines").

Adding a baseline is one registration here (`register_baseline`) and its prefix in
`cxrsal.config_schema.SCORE_BASELINE_ARGUMENTS` (the config's domain, which cannot import this
layer; tests/test_registries.py checks that both agree).
"""

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..config import baseline_parts
from ..errors import CxrsalError
from ..files import UNREADABLE
from ..registry import Registry
from ..resizing import resize_map, scale_boxes

SCORE_BASELINES = Registry("score baseline")
METAVARS = {"file": "FILE", "folder": "DIR"}


@dataclass(frozen=True)
class ScoreBaseline:
    """One baseline of `cxrsal score`.

    `prefix`: its name in `--baselines` (avg, boxes:FILE, seg:DIR); `method`: its rows' method
    in the tables; `label`: its name in the study's tables; `high`: a localization network, [A]'s
    high baseline (the average mask is the low one); `argument`: "file", "folder" or None, and
    `what` what that file or folder holds (None without one); `score(sheet, arg, method)` adds
    its rows to a `score_sheet.ScoreSheet`; `order`: its place in lists."""
    prefix: str
    method: str
    label: str
    high: bool
    argument: Optional[str]
    what: Optional[str]
    score: Callable
    order: int

    @property
    def syntax(self):
        """How it is written in `--baselines`: avg, boxes:FILE, seg:DIR."""
        return self.prefix + (f":{METAVARS[self.argument]}" if self.argument else "")


def register_baseline(prefix, method, label, order, *, high, argument=None, what=None):
    """Decorator: register `score` as the baseline `prefix` (see `ScoreBaseline`)."""
    if argument not in (None, *METAVARS):
        raise ValueError(f"baseline {prefix}: argument must be None, 'file' or 'folder', not {argument!r}")
    if (argument is None) != (what is None):
        raise ValueError(f"baseline {prefix}: `what` says what its argument holds: both or neither")

    def deco(score):
        SCORE_BASELINES.register(prefix)(ScoreBaseline(prefix=prefix, method=method, label=label, high=high,
                                                       argument=argument, what=what, score=score, order=order))
        return score
    return deco


def score_baselines():
    """The registered baselines in list order."""
    return sorted((SCORE_BASELINES.get(n) for n in SCORE_BASELINES.names()), key=lambda b: (b.order, b.prefix))


def baselines_syntax():
    """avg, boxes:FILE (...) or seg:DIR (...): the baselines as `--baselines` takes them."""
    items = [b.syntax + (f" ({b.what})" if b.what else "") for b in score_baselines()]
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else "".join(items)


def baselines_help():
    """The help of `--baselines`: each baseline's syntax and what it is."""
    return "Comma list: " + ", ".join(f"{b.syntax} ({b.what or b.label})" for b in score_baselines()) + "."


def parse_baselines(text):
    """`avg,boxes:FILE,seg:DIR` -> [("avg", None), ("boxes", FILE), ("seg", DIR)], each file or
    folder checked."""
    parts = baseline_parts(text)
    if parts is None or any(kind not in SCORE_BASELINES for kind, _ in parts):
        raise CxrsalError(f"--baselines {text!r}: use {baselines_syntax()}, comma separated")
    for kind, arg in parts:
        if arg is None:
            continue
        if not Path(arg).exists():
            raise CxrsalError(f"--baselines {kind}:{arg}: {arg} does not exist")
        wanted = SCORE_BASELINES.get(kind).argument
        if (wanted == "file") != Path(arg).is_file():
            raise CxrsalError(f"--baselines {kind}:{arg}: {arg} is not a {wanted}")
    return parts


# ---------------------------------------------------------------- what the baselines read

def read_detections(path):
    """patientId -> (boxes, scores) from a detector's CSV (any row order, any number per image)."""
    det = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        need = {"patientId", "x", "y", "width", "height", "score"}
        if not need <= set(h.strip() for h in (reader.fieldnames or [])):
            raise CxrsalError(f"{path}: header must hold {', '.join(sorted(need))}; found {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items()}
            try:
                box = tuple(float(row[k]) for k in ("x", "y", "width", "height"))
                score = float(row["score"])
            except (TypeError, ValueError):
                raise CxrsalError(f"{path} line {line}: x, y, width, height and score must be numbers") from None
            if not np.isfinite([*box, score]).all() or box[2] < 0 or box[3] < 0 or not 0 <= score <= 1:
                raise CxrsalError(f"{path} line {line}: a box needs finite x, y, a width and height >= 0 and a score "
                                  "in [0, 1]; write the file again (`cxrsal predict-baseline`)")
            b, s = det.setdefault(row["patientId"], ([], []))
            b.append(box)
            s.append(score)
    return det


def read_probability_map(folder, image_id, size=None, *, where="seg:"):
    """A segmentation network's probability map <image_id>.npy or .png, resized to `size` (None:
    as stored); `where` prefixes the folder in an error (the option it came from)."""
    import cv2

    folder = Path(folder)
    name = f"{where}{folder}/{image_id}"
    if (folder / f"{image_id}.npy").exists():
        try:
            m = np.load(folder / f"{image_id}.npy", allow_pickle=False).astype(np.float32)
        except UNREADABLE as e:
            raise CxrsalError(f"{name}.npy: not a readable NumPy array ({e})") from None
    elif (folder / f"{image_id}.png").exists():
        m = cv2.imread(str(folder / f"{image_id}.png"), cv2.IMREAD_UNCHANGED)
        if m is None:
            raise CxrsalError(f"{name}.png: not a readable image")
        m = m.astype(np.float32)
        m /= 65535.0 if m.max() > 255 else 255.0
    else:
        raise CxrsalError(f"{where}{folder}: no {image_id}.npy or .png")
    m = np.squeeze(m)
    if m.ndim != 2 or min(m.shape) < 1:
        raise CxrsalError(f"{name}: expected a 2-D probability map, got shape {m.shape}; write the folder again "
                          "(`cxrsal predict-baseline`)")
    if not np.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise CxrsalError(f"{name}: a probability map holds values outside [0, 1] (or NaN); write the folder again "
                          "(`cxrsal predict-baseline`)")
    return m if size is None else resize_map(m, size)


def detector_name(path):
    """The RetinaNet run a detections CSV belongs to (RUN/predictions/SPLIT/detections.csv), or
    the CSV's own name."""
    path = Path(path).resolve()
    return path.parents[2].name if (path.parent / "predictions.json").exists() else path.stem


# ---------------------------------------------------------------- the registered baselines
# Utility: the metrics that need no tuned threshold (a baseline has no validation maps to tune one on),
# on the positives.

@register_baseline("avg", "baseline:avg", "average mask", 0, high=False)
def score_average_mask(sheet, arg, method):
    """The pixel-wise mean of the positive train and val images' masks, the same map for every
    image. Pointwise: its peak for every image, ranked by the model's logit -- what a detector
    that knows only where disease usually is scores."""
    from ..data.pipeline import PreparedSplit, load_batch
    from ..metrics import argmax_points, average_mask, utility_scores

    base = []
    for s in ("train", "val"):
        d = PreparedSplit(sheet.data_dir, s)
        pos = np.flatnonzero(d.labels == 1)
        if len(pos):
            base.append(load_batch(d, pos, sheet.size)[2][..., 0])
    if not base:
        raise CxrsalError(f"--baselines avg: no positive train/val images in {sheet.data_dir}")
    avg = average_mask(np.concatenate(base))
    for i in sheet.positives if sheet.do_utility else ():
        sheet.add(i, method, utility_scores(sheet.masks[i], avg), constant=False)
    scored = [i for i in sheet.ids if i in sheet.logits and sheet.do_pointwise]
    hits = sheet.hits_of(argmax_points([avg] * len(scored), sheet.size), scored)
    sheet.add_pointwise(sheet.model_name, method, sheet.labels(scored), [sheet.logits[i] for i in scored], hits,
                        "grid")


@register_baseline("boxes", "baseline:detector", "RetinaNet heatmap", 1, high=True, argument="file",
                   what="a detector's CSV: patientId,x,y,width,height,score")
def score_detector(sheet, arg, method):
    """A detector's boxes as a heatmap (each pixel the best score of the boxes covering it).
    Pointwise, [B]'s RetinaNet row: its best box's centre per image, over every image of the
    split (an image without a box ranks last), ranked by that box's score."""
    from ..metrics import box_heatmap, utility_scores

    det = read_detections(arg)
    for i in sheet.positives if sheet.do_utility else ():
        b, s = det.get(i, ([], []))
        heat = box_heatmap(b, s, (sheet.size, sheet.size), original_size=(sheet.rows[i]["height"],
                                                                          sheet.rows[i]["width"]))
        sheet.add(i, method, utility_scores(sheet.masks[i], heat), constant=not heat.any())
    seen = list(sheet.rows) if sheet.do_pointwise else []
    if not seen:
        return
    best, points = [], []
    for i in seen:
        b, s = det.get(i, ([], []))
        if not s:
            best.append(-np.inf)
            points.append((np.nan, np.nan))
            continue
        k = int(np.argmax(s))
        x, y, w, h = scale_boxes([b[k]], (sheet.rows[i]["height"], sheet.rows[i]["width"]), sheet.size)[0]
        best.append(s[k])
        points.append((y + h / 2, x + w / 2))
    sheet.add_pointwise(detector_name(arg), method, sheet.labels(seen), best,
                        sheet.hits_of(points, seen, sheet.truth(seen)), "box centre")


@register_baseline("seg", "baseline:segmentation", "U-Net probability map", 2, high=True, argument="folder",
                   what="one probability map per image")
def score_segmentation(sheet, arg, method):
    """A segmentation network's probability map of each positive image (utility only)."""
    from ..metrics import utility_scores

    for i in sheet.positives if sheet.do_utility else ():
        sheet.add(i, method, utility_scores(sheet.masks[i], read_probability_map(arg, i, sheet.size)),
                  constant=False)
