"""`--dataset coco`: images under ROOT with a COCO annotation file (`--annotations FILE.json`).

An image is positive when it has an annotation of a positive category (`--positive NAME...`;
default: any category); images without one are negative. Lesions are the positive annotations'
segmentations (polygons or RLE, decoded by pycocotools at the image's size) where they have one,
else their boxes. Annotations naming an image absent from `images`, and images whose file is
missing, are skipped with their reason, as for RSNA and SIIM.
"""

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import DataError
from .items import DATASETS, Item, LabelSet, Skipped
from .masks import box_problem, boxes_to_mask, resize_mask


def _load(path):
    if not path:
        raise DataError("--annotations FILE.json is required for --dataset coco")
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"--annotations {path}: file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"--annotations {path}: not a JSON file ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f"--annotations {path}: not a COCO file (no 'images' list)")
    return path, data


def read_labels(root, annotations=None, positive=()):
    root = Path(root)
    path, data = _load(annotations)
    name = path.name
    categories = {c.get("id"): str(c.get("name")) for c in data.get("categories", []) if isinstance(c, dict)}
    unknown = [p for p in positive if p not in categories.values()]
    if unknown:
        raise DataError(f"--positive {unknown[0]}: no such category in {path} "
                        f"(has {', '.join(sorted(categories.values())) or 'none'})")
    out = LabelSet(items=[])
    images = {}
    for k, im in enumerate(data["images"]):
        where = f"{name} images[{k}]"
        try:
            image_id, file_name = im["id"], str(im["file_name"])
            size = (int(im["height"]), int(im["width"]))
        except (KeyError, TypeError, ValueError):
            out.skipped.append(Skipped("", where, "needs id, file_name, width and height"))
            continue
        if image_id in images:
            out.skipped.append(Skipped(str(image_id), where, f"image id {image_id} listed twice"))
            continue
        images[image_id] = (file_name, size, where)

    lesions = defaultdict(list)      # image id -> [(box, segmentation or None)]
    for k, ann in enumerate(data.get("annotations", [])):
        where = f"{name} annotations[{k}]"
        if not isinstance(ann, dict) or "image_id" not in ann:
            out.skipped.append(Skipped("", where, "no image_id"))
            continue
        if ann["image_id"] not in images:
            out.skipped.append(Skipped(str(ann.get("id", "")), where,
                                       f"image_id {ann['image_id']} is not in the file's images"))
            continue
        if positive and categories.get(ann.get("category_id")) not in positive:
            continue
        box = ann.get("bbox")
        try:
            box = tuple(float(v) for v in box)
        except (TypeError, ValueError):
            box = None
        if box is None or len(box) != 4 or not all(math.isfinite(v) for v in box):
            box = ann.get("bbox")
            out.skipped.append(Skipped(str(ann["image_id"]), where, f"bbox {box!r} is not [x, y, width, height]"))
            images[ann["image_id"]] = None      # the image's lesions are unknown: skip it
            continue
        lesions[ann["image_id"]].append((box, ann.get("segmentation") or None))

    any_segmentation = any(seg is not None for v in lesions.values() for _, seg in v)
    out.annotation = "masks" if any_segmentation else "boxes"
    for image_id, entry in images.items():
        if entry is None:
            continue
        file_name, size, where = entry
        file = root / file_name
        if not file.is_file():
            out.skipped.append(Skipped(str(image_id), where, f"image file missing: {file}"))
            continue
        found = lesions.get(image_id, [])
        out.items.append(Item(str(image_id), str(file), int(bool(found)), boxes=tuple(b for b, _ in found),
                              source=where, polygons=tuple((size, seg) for _, seg in found)))
    if positive:
        out.notes.append(f"positive categories: {', '.join(positive)}")
    return out


def _segmentation_mask(seg, height, width):
    from pycocotools import mask as mask_utils

    if isinstance(seg, list):                               # polygons
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):   # uncompressed RLE
        rle = mask_utils.frPyObjects(seg, height, width)
    elif isinstance(seg, dict):                             # compressed RLE
        rle = dict(seg, counts=seg["counts"].encode() if isinstance(seg["counts"], str) else seg["counts"])
    else:
        raise ValueError(f"segmentation {str(seg)[:40]!r} is neither polygons nor RLE")
    m = mask_utils.decode(rle)
    if m.shape[:2] != (height, width):
        raise ValueError(f"segmentation of {m.shape[1]}x{m.shape[0]} pixels on a {width}x{height} image")
    return m.reshape(height, width, -1).any(-1)


def lesion_mask(item, original_shape, size):
    """Union of the item's segmentations (its box where an annotation has none) at `size`."""
    for box in item.boxes:
        problem = box_problem(box, original_shape)
        if problem:
            raise ValueError(problem)
    if not any(seg is not None for _, seg in item.polygons):
        return boxes_to_mask(item.boxes, size, original_shape)
    h, w = original_shape
    full = np.zeros((h, w), bool)
    for box, (stated, seg) in zip(item.boxes, item.polygons):
        if tuple(stated) != (h, w):
            raise ValueError(f"the COCO file gives {stated[1]}x{stated[0]} pixels, the image has {w}x{h}")
        full |= boxes_to_mask([box], (h, w), (h, w)) if seg is None else _segmentation_mask(seg, h, w)
    return resize_mask(full, size)


@DATASETS.register("coco")
class COCO:
    name = "coco"
    options = ("annotations", "positive")     # data.* settings its reader takes
    annotation = "boxes"      # "masks" when an annotation has a segmentation
    fractions = (0.8, 0.1, 0.1)
    read_labels = staticmethod(read_labels)
    mask = staticmethod(lesion_mask)
