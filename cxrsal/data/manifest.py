"""Seeded stratified splits and the manifest CSV: written once per run directory, then reused."""

import csv
import hashlib
import io
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import atomic_write_text

SPLITS = ("train", "val", "test")
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
    with open(path, newline="") as f:
        return {row["image_id"]: row["split"] for row in csv.DictReader(f)}


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


def read_manifest(run_dir):
    path = Path(run_dir) / MANIFEST_FILE
    if not path.is_file():
        raise DataError(f"{run_dir}: no {MANIFEST_FILE}; run `cxrsal prepare --out {run_dir}` first")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("index", "label", "height", "width", "n_annotations"):
            r[k] = int(r[k])
    return rows


def split_rows(rows, split):
    """The manifest rows of `split`, in the order of its packed arrays (their `index`)."""
    return sorted((r for r in rows if r["split"] == split), key=lambda r: r["index"])


def manifest_hash(run_dir):
    """sha256 of the manifest file: names the exact data a model was trained on."""
    return hashlib.sha256((Path(run_dir) / MANIFEST_FILE).read_bytes()).hexdigest()
