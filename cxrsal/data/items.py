"""What a dataset reader returns: labelled items, skipped ones with reasons, and notes."""

from dataclasses import dataclass, field

from ..registry import Registry

DATASETS = Registry("dataset")


@dataclass(frozen=True)
class Item:
    image_id: str
    path: str                 # image file (DICOM; PNG or JPEG for the folder and COCO sets)
    label: int                # 1 = disease present
    boxes: tuple = ()         # RSNA, folder, COCO: (x, y, width, height) in pixels of the original image
    rles: tuple = ()          # SIIM: the EncodedPixels of every annotation row
    source: str = ""          # where the label came from, e.g. "stage_2_train_labels.csv rows 2-3"
    mask: str = ""            # folder: a lesion mask PNG of the original image's size
    polygons: tuple = ()      # COCO: segmentations (pycocotools' RLE dicts), decoded at the image's size


@dataclass(frozen=True)
class Skipped:
    image_id: str
    source: str
    reason: str

    def line(self):
        return f"{self.source}: {self.image_id}: {self.reason}" if self.image_id else f"{self.source}: {self.reason}"


@dataclass
class LabelSet:
    items: list
    skipped: list = field(default_factory=list)
    excluded: dict = field(default_factory=dict)   # reason -> count (cohort rules, not errors)
    notes: list = field(default_factory=list)
    annotation: str = ""      # boxes | masks | none; "" = the dataset's own kind
