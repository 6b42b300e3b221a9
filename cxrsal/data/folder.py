"""`--dataset folder`: any annotated chest X-ray set, laid out as one folder.

    ROOT/labels.csv            image_id,label          (label 0 or 1; one row per image)
    ROOT/boxes.csv             image_id,x,y,width,height   optional: lesion boxes in the original
                               image's pixels, one row per box
    ROOT/masks/<image_id>.png  optional (instead of boxes.csv): the lesion mask of an image,
                               non-zero = lesion, the image's own size
    ROOT/**/<image_id>.dcm|.png|.jpg|.jpeg   the images, at any depth (not under masks/)

Bad rows and files are skipped with their reason (`skipped.csv`), as for RSNA and SIIM.
"""

import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import DataError
from .csvutil import read_rows
from .images import SUFFIXES
from .items import DATASETS, Item, LabelSet, Skipped
from .masks import box_problem, boxes_to_mask, resize_mask

LABELS = "labels.csv"
BOXES = "boxes.csv"
MASKS = "masks"


def index_images(root, exclude=()):
    """image_id (file stem) -> path of every image under `root` at any depth, outside `exclude`;
    and the stems found more than once (the first path, in sorted order, is kept)."""
    index, twice = {}, []
    excluded = {Path(e).resolve() for e in exclude}
    found = []
    # symlinked folders are followed (images kept on another disk)
    for folder, dirs, files in os.walk(root, followlinks=True):
        if Path(folder).resolve() in excluded:
            dirs[:] = []
            continue
        found += [Path(folder) / f for f in files if Path(f).suffix.lower() in SUFFIXES]
    for p in sorted(found):
        if p.stem in index:
            twice.append(p.stem)
            continue
        index[p.stem] = str(p)
    return index, twice


def read_boxes(path):
    """image_id -> boxes, and image_id -> Skipped for a row that is not a usable box."""
    boxes, bad = defaultdict(list), {}
    for line, values in read_rows(path, ("image_id", "x", "y", "width", "height")):
        image_id = values["image_id"]
        if not image_id:
            bad[f"<line {line}>"] = Skipped("", f"{path.name} line {line}", "empty image_id")
            continue
        fields = [values[k] for k in ("x", "y", "width", "height")]
        try:
            box = tuple(float(v) for v in fields)
        except ValueError:
            bad.setdefault(image_id, Skipped(image_id, f"{path.name} line {line}", f"box values {fields} are not numbers"))
            continue
        if not all(math.isfinite(v) for v in box) or box[2] <= 0 or box[3] <= 0:
            bad.setdefault(image_id, Skipped(image_id, f"{path.name} line {line}",
                                             f"box {fields}: needs finite values and a positive width and height"))
            continue
        boxes[image_id].append(box)
    return boxes, bad


def read_labels(root):
    root = Path(root)
    labels_path, boxes_path, masks_dir = root / LABELS, root / BOXES, root / MASKS
    if boxes_path.is_file() and masks_dir.is_dir():
        raise DataError(f"{root}: holds both {BOXES} and {MASKS}/; give the lesions one way (move one aside)")
    labels, lines, bad = {}, {}, {}
    for line, values in read_rows(labels_path, ("image_id", "label")):
        image_id, label = values["image_id"], values["label"]
        source = f"{LABELS} line {line}"
        if not image_id:
            bad[f"<line {line}>"] = Skipped("", source, "empty image_id")
            continue
        if label not in ("0", "1", "0.0", "1.0"):
            bad.setdefault(image_id, Skipped(image_id, source, f"label {label!r} is not 0 or 1"))
            continue
        label = int(float(label))
        if image_id in labels and labels[image_id] != label:
            bad.setdefault(image_id, Skipped(image_id, source, f"label {label} contradicts line {lines[image_id]}"))
            continue
        labels.setdefault(image_id, label)
        lines.setdefault(image_id, line)

    out = LabelSet(items=[], skipped=list(bad.values()))
    boxes, box_bad = read_boxes(boxes_path) if boxes_path.is_file() else ({}, {})
    out.annotation = "boxes" if boxes_path.is_file() else "masks" if masks_dir.is_dir() else "none"
    if out.annotation == "none":
        out.notes.append(f"no {BOXES} and no {MASKS}/ under {root}: the images carry labels only (no lesion to "
                         "localize; utility and pointwise detection have nothing to score)")
    for image_id in sorted(set(boxes) | set(box_bad)):
        if image_id not in labels and image_id not in bad:
            out.notes.append(f"{BOXES}: image {image_id} has boxes but no row in {LABELS}: ignored")
    images, twice = index_images(root, exclude=[masks_dir])
    for stem in sorted(set(twice)):
        out.notes.append(f"image {stem}: several files under {root}; using {images[stem]}")
    for image_id, label in labels.items():
        if image_id in bad:
            continue
        source = f"{LABELS} line {lines[image_id]}"
        if image_id in box_bad:
            out.skipped.append(box_bad[image_id])
            continue
        path = images.get(image_id)
        if path is None:
            out.skipped.append(Skipped(image_id, source, f"image file missing: no {image_id}"
                                       f"{{{','.join(SUFFIXES)}}} under {root}"))
            continue
        own_boxes = tuple(boxes.get(image_id, ()))
        mask = masks_dir / f"{image_id}.png"
        mask = str(mask) if out.annotation == "masks" and mask.is_file() else ""
        if label == 0 and (own_boxes or mask):
            out.skipped.append(Skipped(image_id, source, f"label 0 but {'a box' if own_boxes else 'a mask'} "
                                                         "marks a lesion"))
            continue
        if label == 1 and out.annotation != "none" and not (own_boxes or mask):
            where = f"no row in {BOXES}" if out.annotation == "boxes" else f"no {MASKS}/{image_id}.png"
            out.skipped.append(Skipped(image_id, source, f"label 1 but {where}"))
            continue
        out.items.append(Item(image_id, path, label, boxes=own_boxes, source=source, mask=mask))
    return out


def read_mask_png(path, original_shape):
    """A mask PNG as a boolean array (any non-zero value, in any channel), of the image's size."""
    import cv2

    m = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise ValueError(f"mask {path}: not a readable PNG")
    if m.shape[:2] != tuple(original_shape):
        raise ValueError(f"mask {path} is {m.shape[1]}x{m.shape[0]} pixels, its image "
                         f"{original_shape[1]}x{original_shape[0]}: masks must have their image's size")
    return (m.reshape(m.shape[0], m.shape[1], -1) > 0).any(-1)


def lesion_mask(item, original_shape, size):
    """The union of an item's boxes, or its mask PNG, at `size`; raise ValueError for a bad one."""
    if item.boxes:
        for box in item.boxes:
            problem = box_problem(box, original_shape)
            if problem:
                raise ValueError(problem)
        return boxes_to_mask(item.boxes, size, original_shape)
    if item.mask:
        return resize_mask(read_mask_png(item.mask, original_shape), size)
    return np.zeros((size, size), np.uint8)


@DATASETS.register("folder")
class Folder:
    name = "folder"
    annotation = "none"       # the data decides: boxes.csv, masks/ or neither
    fractions = (0.8, 0.1, 0.1)
    read_labels = staticmethod(read_labels)
    mask = staticmethod(lesion_mask)
