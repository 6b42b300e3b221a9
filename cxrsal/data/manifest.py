"""Seeded stratified splits and the manifest CSV: written once per run directory, then reused."""

import csv
import hashlib
import io
from pathlib import Path

import numpy as np

from ..config_schema import SPLIT_NAMES
from ..errors import DataError
from ..files import atomic_write_text

SPLITS = SPLIT_NAMES      # the order of the splits everywhere
SPLITS_FILE = "splits.csv"
MANIFEST_FILE = "manifest.csv"
MANIFEST_COLUMNS = ("image_id", "split", "index", "label", "height", "width", "boxes", "n_annotations",
                    "path", "cache_key")


def allocate(n, fractions):
    """Split `n` into counts proportional to `fractions` by largest remainder (sums to n)."""
    fractions = np.asarray(fractions, float) / np.sum(fractions)
    exact = n * fractions
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def stratified_split(ids, labels, fractions, seed):
    """Assign each id to train/val/test, class by class, reproducibly for a seed.

    Ids are sorted before shuffling so the result does not depend on input order.
    """
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise DataError(f"split fractions {tuple(fractions)} must be three non-negative numbers")
    rng = np.random.default_rng(seed)
    assignment = {}
    by_label = {}
    for i, y in zip(ids, labels):
        by_label.setdefault(int(y), []).append(i)
    for y in sorted(by_label):
        members = sorted(by_label[y])
        perm = rng.permutation(len(members))
        counts = allocate(len(members), fractions)
        bounds = np.cumsum(counts)[:-1]
        for split, chunk in zip(SPLITS, np.split(perm, bounds)):
            for j in chunk:
                assignment[members[j]] = split
    return assignment


def write_splits(path, assignment):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("image_id", "split"))
    for image_id in sorted(assignment):
        w.writerow((image_id, assignment[image_id]))
    atomic_write_text(path, buf.getvalue())


def read_splits(path):
    remedy = "delete it to split the images again"
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if not {"image_id", "split"} <= set(reader.fieldnames or ()):
                raise DataError(f"{path}: damaged (its header is not image_id,split); {remedy}")
            out = {}
            for line, row in enumerate(reader, start=2):
                if row["split"] not in SPLITS or not row["image_id"]:
                    raise DataError(f"{path} line {line}: damaged (split {row['split']!r} of image "
                                    f"{row['image_id']!r}); {remedy}")
                out[row["image_id"]] = row["split"]
            return out
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot be read ({getattr(e, 'strerror', None) or e}); {remedy}") from None


def load_or_make_splits(run_dir, ids, labels, fractions, seed):
    """The run's split assignment: read from RUN/splits.csv when it exists, else made and written.

    A saved assignment must cover every id; otherwise the data changed under the run.
    """
    path = Path(run_dir) / SPLITS_FILE
    if path.exists():
        saved = read_splits(path)
        missing = [i for i in ids if i not in saved]
        if missing:
            raise DataError(
                f"{path}: written for other data ({len(missing)} images, e.g. {missing[0]}, are not in it); "
                "use a new --out directory, or delete the file to re-split"
            )
        return {i: saved[i] for i in ids}, True
    assignment = stratified_split(ids, labels, fractions, seed)
    write_splits(path, assignment)
    return assignment, False


def format_boxes(boxes):
    return "|".join(" ".join(f"{v:g}" for v in b) for b in boxes)


def parse_boxes(text):
    if not text:
        return ()
    return tuple(tuple(float(v) for v in b.split()) for b in text.split("|"))


def write_manifest(path, rows):
    buf = io.StringIO()
    w = csv.DictWriter(buf, MANIFEST_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


INT_COLUMNS = ("index", "label", "height", "width", "n_annotations")


def read_manifest(run_dir):
    """The rows of a prepared run's manifest.csv, checked: every column, numbers where numbers
    belong, labels 0/1, known splits, unique image ids, each split's `index` exactly 0..n-1 (its
    rows of the packed arrays) and as many images and positives per split as summary.json says
    `cxrsal prepare` packed. One line naming the file and row otherwise: the manifest was edited
    or damaged since `cxrsal prepare` wrote it."""
    path = Path(run_dir) / MANIFEST_FILE
    if not path.is_file():
        raise DataError(f"{run_dir}: no {MANIFEST_FILE}; run `cxrsal prepare --out {run_dir}` first")
    remedy = f"it changed since `cxrsal prepare` wrote it: run `cxrsal prepare --out {run_dir}` again to rewrite it"
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise DataError(f"{path}: no column {', '.join(missing)}; {remedy}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot be read ({getattr(e, 'strerror', None) or e}); {remedy}") from None
    counts = _packed_counts(run_dir)
    seen, indices = set(), {s: [] for s in SPLITS}
    for line, r in enumerate(rows, start=2):
        try:
            for k in INT_COLUMNS:
                r[k] = int(r[k])
            parse_boxes(r["boxes"])
        except (TypeError, ValueError):
            raise DataError(f"{path} line {line}: damaged ({', '.join(INT_COLUMNS)} must be integers and boxes "
                            f"'x y w h|...'); {remedy}") from None
        problem = ("label must be 0 or 1" if r["label"] not in (0, 1) else
                   f"split {r['split']!r} is not one of {', '.join(SPLITS)}" if r["split"] not in SPLITS else
                   "no image_id" if not r["image_id"] else
                   f"image {r['image_id']} is listed twice" if r["image_id"] in seen else
                   "height and width must be positive" if min(r["height"], r["width"]) < 1 else None)
        if problem:
            raise DataError(f"{path} line {line}: {problem}; {remedy}")
        seen.add(r["image_id"])
        indices[r["split"]].append(r["index"])
    for split, idx in indices.items():
        if sorted(idx) != list(range(len(idx))):
            gap = next(i for i, v in enumerate(sorted(idx) + [None]) if v != i)
            raise DataError(f"{path}: the {split} split's rows do not number its images 0..{len(idx) - 1} (index "
                            f"{gap} is missing or repeated); {remedy}")
        if split in counts:
            held = (len(idx), sum(r["label"] for r in rows if r["split"] == split))
            if held != counts[split]:
                raise DataError(f"{path}: {held[0]} {split} images ({held[1]} positive), where `cxrsal prepare` packed "
                                f"{counts[split][0]} ({counts[split][1]} positive); {remedy}")
    return rows


def _packed_counts(run_dir):
    """{split: (images, positives)} of summary.json ({} for a run without one)."""
    from ..files import read_json

    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        return {}
    counts = read_json(path, remedy=f"run `cxrsal prepare --out {run_dir}` again").get("counts") or {}
    try:
        return {s: (int(c["negative"]) + int(c["positive"]), int(c["positive"])) for s, c in counts.items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise DataError(f"{path}: damaged (counts); run `cxrsal prepare --out {run_dir}` again") from None


def split_rows(rows, split):
    """The manifest rows of `split`, in the order of its packed arrays (their `index`)."""
    return sorted((r for r in rows if r["split"] == split), key=lambda r: r["index"])


def manifest_hash(run_dir):
    """sha256 of the manifest file: names the exact data a model was trained on."""
    path = Path(run_dir) / MANIFEST_FILE
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise DataError(f"{run_dir}: no {MANIFEST_FILE} (not a `cxrsal prepare` run, or moved since); run "
                        f"`cxrsal prepare --out {run_dir}`") from None
