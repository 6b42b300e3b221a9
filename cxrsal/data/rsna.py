"""RSNA Pneumonia Detection (Kaggle 2018, stage 2): labels, class info and the cohort rule."""

import math
from collections import defaultdict
from pathlib import Path

from .csvutil import read_rows
from .items import DATASETS, Item, LabelSet, Skipped
from .masks import box_problem, boxes_to_mask

LABELS = "stage_2_train_labels.csv"
CLASS_INFO = "stage_2_detailed_class_info.csv"
IMAGES = "stage_2_train_images"
POSITIVE_CLASS = "Lung Opacity"
EXCLUDED_CLASS = "No Lung Opacity / Not Normal"
NORMAL_CLASS = "Normal"
CLASSES = (POSITIVE_CLASS, EXCLUDED_CLASS, NORMAL_CLASS)


def _parse_row(values):
    """(target, box or None) of one labels row, or raise ValueError with the reason."""
    target = values.get("Target", "")
    if target not in ("0", "1", "0.0", "1.0"):
        raise ValueError(f"Target {target!r} is not 0 or 1")
    target = int(float(target))
    fields = [values.get(k, "") for k in ("x", "y", "width", "height")]
    if target == 0:
        if any(fields):
            raise ValueError("Target 0 but the row has a box")
        return 0, None
    if not all(fields):
        raise ValueError("Target 1 but x, y, width or height is empty")
    try:
        box = tuple(float(v) for v in fields)
    except ValueError:
        raise ValueError(f"box values {fields} are not numbers") from None
    if not all(math.isfinite(v) for v in box):
        raise ValueError(f"box values {fields} are not finite")
    return 1, box


def read_class_info(path):
    """patientId -> class, de-duplicated (the file repeats a patient once per box), and
    patientId -> Skipped for unknown or contradicting classes."""
    classes, conflicts = {}, {}
    for line, values in read_rows(path, ("patientId", "class")):
        pid, cls = values["patientId"], values["class"]
        if cls not in CLASSES:
            conflicts[pid] = Skipped(pid, f"{path.name} line {line}",
                                     f"unknown class {cls!r} (expected one of {', '.join(CLASSES)})")
        elif pid in classes and classes[pid] != cls:
            conflicts[pid] = Skipped(pid, f"{path.name} line {line}",
                                     f"class {cls!r} contradicts {classes[pid]!r}")
        else:
            classes.setdefault(pid, cls)
    return classes, conflicts


def read_labels(root):
    """Read the RSNA labels under `root` into items (one per patient) and skipped entries."""
    root = Path(root)
    labels_path = root / LABELS
    rows = defaultdict(list)   # pid -> [(line, target, box)]
    problems = {}
    for line, values in read_rows(labels_path, ("patientId", "x", "y", "width", "height", "Target")):
        pid = values["patientId"]
        if not pid:
            problems[f"<line {line}>"] = Skipped("", f"{LABELS} line {line}", "empty patientId")
            continue
        try:
            target, box = _parse_row(values)
        except ValueError as e:
            problems.setdefault(pid, Skipped(pid, f"{LABELS} line {line}", str(e)))
            continue
        rows[pid].append((line, target, box))

    out = LabelSet(items=[])
    class_info_path = root / CLASS_INFO
    classes, conflicts = {}, {}
    if class_info_path.exists():
        classes, conflicts = read_class_info(class_info_path)
    else:
        out.notes.append(f"{CLASS_INFO} not found under {root}: every labelled image is kept "
                         f"(the cohort rule that drops '{EXCLUDED_CLASS}' was not applied)")

    out.skipped.extend(problems.values())
    for pid, entries in rows.items():
        if pid in problems:
            continue
        first, last = entries[0][0], entries[-1][0]
        source = f"{LABELS} line {first}" if first == last else f"{LABELS} lines {first}-{last}"
        targets = {t for _, t, _ in entries}
        if len(targets) > 1:
            out.skipped.append(Skipped(pid, source, "rows disagree on Target"))
            continue
        target = targets.pop()
        if pid in conflicts:
            out.skipped.append(conflicts[pid])
            continue
        cls = classes.get(pid)
        if cls == EXCLUDED_CLASS:
            key = f"class '{EXCLUDED_CLASS}' (cohort rule)"
            out.excluded[key] = out.excluded.get(key, 0) + 1
            continue
        if cls is not None and (cls == POSITIVE_CLASS) != (target == 1):
            out.skipped.append(Skipped(pid, source, f"Target {target} contradicts class {cls!r}"))
            continue
        path = root / IMAGES / f"{pid}.dcm"
        if not path.is_file():
            out.skipped.append(Skipped(pid, source, f"image file missing: {path}"))
            continue
        boxes = tuple(b for _, _, b in entries if b is not None)
        out.items.append(Item(pid, str(path), target, boxes=boxes, source=source))
    if classes and not out.notes:
        unlabelled = sum(1 for pid in rows if pid not in classes)
        if unlabelled:
            out.notes.append(f"{unlabelled} patients of {LABELS} are absent from {CLASS_INFO}: kept")
    return out


@DATASETS.register("rsna")
class RSNA:
    name = "rsna"
    annotation = "boxes"
    fractions = (0.8, 0.1, 0.1)
    read_labels = staticmethod(read_labels)

    @staticmethod
    def mask(item, original_shape, size):
        """The union of the item's boxes at `size`, or raise ValueError for a bad box."""
        for box in item.boxes:
            problem = box_problem(box, original_shape)
            if problem:
                raise ValueError(problem)
        return boxes_to_mask(item.boxes, size, original_shape)
