"""SIIM-ACR Pneumothorax (Kaggle 2019): RLE labels in stage-1 or stage-2 spelling, nested DICOMs."""

from collections import defaultdict
from pathlib import Path

from ..errors import DataError, RLEError
from . import rle as rle_codec
from .csvutil import read_rows
from .items import DATASETS, Item, LabelSet, Skipped
from .masks import resize_mask

# stage 2 republished all labels as stage_2_train.csv (header without the space)
STAGE1_LABELS = "train-rle.csv"
LABEL_FILES = ("stage_2_train.csv", STAGE1_LABELS)
# the stage-1 download's image folder (images are found at any depth under the root)
IMAGES = "dicom-images-train"


def find_labels(root):
    for name in LABEL_FILES:
        if (Path(root) / name).is_file():
            return Path(root) / name
    raise DataError(f"{root}: no SIIM label file ({' or '.join(LABEL_FILES)}) found")


def index_images(root):
    """ImageId (file stem) -> path of every .dcm under `root`, at any depth."""
    index = {}
    for p in sorted(Path(root).rglob("*.dcm")):
        index.setdefault(p.stem, str(p))
    return index


def read_labels(root):
    root = Path(root)
    labels_path = find_labels(root)
    rows = defaultdict(list)
    lines = defaultdict(list)
    bad = {}
    for line, values in read_rows(labels_path, ("ImageId", "EncodedPixels")):
        image_id, rle = values["ImageId"], values["EncodedPixels"]
        if not image_id:
            bad[f"<line {line}>"] = Skipped("", f"{labels_path.name} line {line}", "empty ImageId")
            continue
        lines[image_id].append(line)
        try:
            rle_codec.run_bounds(rle, n_pixels=2**62, image_id=image_id)  # syntax; extent checked later
        except RLEError as e:
            bad.setdefault(image_id, Skipped(image_id, f"{labels_path.name} line {line}", e.reason))
            continue
        rows[image_id].append(rle)

    out = LabelSet(items=[], skipped=list(bad.values()))
    images = index_images(root)
    for image_id, rles in rows.items():
        if image_id in bad:
            continue
        ls = lines[image_id]
        source = (f"{labels_path.name} line {ls[0]}" if len(ls) == 1
                  else f"{labels_path.name} lines {','.join(map(str, ls))}")
        path = images.get(image_id)
        if path is None:
            out.skipped.append(Skipped(image_id, source, f"image file {image_id}.dcm not found under {root}"))
            continue
        annotations = tuple(r for r in rles if r.strip() != rle_codec.EMPTY)
        out.items.append(Item(image_id, path, int(bool(annotations)), rles=annotations, source=source))
    return out


@DATASETS.register("siim")
class SIIM:
    name = "siim"
    annotation = "masks"
    fractions = (0.81, 0.09, 0.10)
    read_labels = staticmethod(read_labels)

    @staticmethod
    def mask(item, original_shape, size):
        """Union of the item's annotations decoded at the DICOM's size, then resized."""
        h, w = original_shape
        try:
            full = rle_codec.decode_union(item.rles, h, w, image_id=item.image_id)
        except RLEError as e:
            raise ValueError(e.reason) from None
        return resize_mask(full, size)
