"""`cxrsal prepare`: labels -> split -> decoded, resized image cache -> packed arrays + summary.

Every file is written atomically; a killed run, started again, keeps the finished cache
entries and the saved split and finishes the rest.
"""

import csv
import hashlib
import io
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from ..config import Config, to_dict, write_config
from ..errors import CxrsalError, DataError, ImageReadError
from ..files import UNREADABLE, atomic_path, atomic_write_text, read_json, remove_stale_tmp
from . import coco, folder, rsna, siim  # noqa: F401  (register the datasets)
from .images import read_any
from .items import DATASETS, Skipped
from .manifest import (MANIFEST_FILE, SPLITS, format_boxes, load_or_make_splits, write_manifest)

SCALE = 65535  # cached images are uint16: value / SCALE is the [0, 1] intensity
SKIPPED_FILE = "skipped.csv"
SUMMARY_FILE = "summary.json"
ARRAYS_DIR = "arrays"


# ---------------------------------------------------------------- cache

def cache_key(path, size):
    """Identity of a decoded image: source file (absolute path, size, mtime) and target size."""
    st = os.stat(path)
    ident = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{size}"
    return hashlib.sha1(ident.encode()).hexdigest()[:24]


def cache_file(cache_dir, key):
    return Path(cache_dir) / key[:2] / f"{key}.npz"


def resize_image(image, size):
    import cv2

    h, w = image.shape
    interp = cv2.INTER_AREA if (h >= size and w >= size) else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def to_uint16(image):
    return np.round(np.clip(image, 0.0, 1.0) * SCALE).astype(np.uint16)


def _read_cache(target, size):
    """(image, original shape) of a cache file, or None when it cannot be read whole (truncated,
    not a NumPy archive, keys or size not those written here)."""
    try:
        with np.load(target) as z:
            image, shape = z["image"], tuple(int(v) for v in z["shape"])
    except UNREADABLE:
        return None
    return (image, shape) if image.shape == (size, size) and len(shape) == 2 else None


def decode_to_cache(path, size, cache_dir):
    """(key, original (h, w), decoded now, repaired) of `path`'s cached image at `size`; decodes
    only when absent, or when the cache file is unreadable (then `repaired`)."""
    key = cache_key(path, size)
    target = cache_file(cache_dir, key)
    repaired = False
    if target.exists():
        cached = _read_cache(target, size)
        if cached is not None:
            return key, cached[1], False, False
        repaired = True
    image = read_any(path)
    small = to_uint16(resize_image(image, size))
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, image=small, shape=np.array(image.shape, np.int64))
    return key, image.shape, True, repaired


def load_cached(cache_dir, key):
    with np.load(cache_file(cache_dir, key)) as z:
        return z["image"], tuple(int(v) for v in z["shape"])


def _process(job):
    """Worker: decode/cache one item and check its labels against the image. Never raises for data."""
    item, dataset, size, cache_dir = job
    try:
        key, shape, decoded, repaired = decode_to_cache(item.path, size, cache_dir)
    except FileNotFoundError:
        return item, None, None, f"image file missing: {item.path}", False, False
    except ImageReadError as e:
        return item, None, None, e.reason, False, False
    try:
        DATASETS.get(dataset).mask(item, shape, size)
    except ValueError as e:
        return item, None, None, str(e), decoded, repaired
    return item, key, shape, None, decoded, repaired


# ---------------------------------------------------------------- the command

def _check_root(root):
    root = Path(root)
    if not str(root):
        raise DataError("--root is required: the folder of the Kaggle download (or `cxrsal synth --out`)")
    if not root.exists():
        raise DataError(f"--root {root}: no such folder")
    if not root.is_dir():
        raise DataError(f"--root {root}: not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise DataError(f"--root {root}: not readable (check its permissions)")
    return root


def _check_same_run(out, cfg):
    """Refuse to mix two different preparations in one run directory."""
    import yaml

    path = Path(out) / "config.yaml"
    if not path.exists():
        return
    try:
        old = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError):
        old = None
    if not isinstance(old, dict) or not isinstance(old.get("data", {}), dict):
        raise DataError(f"{path}: damaged (not the YAML config `cxrsal prepare` writes); delete {out} and prepare "
                        "again")
    old = old.get("data", {})
    new = to_dict(cfg)["data"]
    for k in ("dataset", "root", "size", "seed", "split", "annotations", "positive"):
        if k in old and old.get(k) != new.get(k):
            raise DataError(f"{out} was prepared with data.{k}={old.get(k)!r}, not {new.get(k)!r}: "
                            "use a new --out directory")


def _write_skipped(path, skipped):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("image_id", "source", "reason"))
    for s in skipped:
        w.writerow((s.image_id, s.source, s.reason))
    atomic_write_text(path, buf.getvalue())


def _pack(out, dataset, size, cache_dir, rows_by_split, items_by_id):
    """Write RUN/arrays/<split>_{images,masks,labels}.npy from the cache (atomically)."""
    arrays = Path(out) / ARRAYS_DIR
    arrays.mkdir(parents=True, exist_ok=True)
    ds = DATASETS.get(dataset)
    for split in SPLITS:
        rows = rows_by_split[split]
        n = len(rows)
        with atomic_path(arrays / f"{split}_images.npy") as ti, atomic_path(arrays / f"{split}_masks.npy") as tm:
            images = np.lib.format.open_memmap(ti, mode="w+", dtype=np.uint16, shape=(n, size, size))
            masks = np.lib.format.open_memmap(tm, mode="w+", dtype=np.uint8, shape=(n, size, size))
            for r in rows:
                image, shape = load_cached(cache_dir, r["cache_key"])
                images[r["index"]] = image
                masks[r["index"]] = ds.mask(items_by_id[r["image_id"]], shape, size)
            images.flush()
            masks.flush()
            del images, masks
        with atomic_path(arrays / f"{split}_labels.npy") as tl:
            with open(tl, "wb") as f:
                np.save(f, np.array([r["label"] for r in rows], np.uint8))


def prepare(cfg: Config, out, *, progress=None, log=print):
    """Prepare `cfg.data` into run directory `out`; returns the summary dict."""
    from tqdm import tqdm

    from ..console import bar_disabled

    t0 = time.time()
    d = cfg.data
    ds = DATASETS.get(d.dataset)
    root = _check_root(d.root)
    if d.size < 8:
        raise DataError(f"--size {d.size}: must be at least 8 pixels")
    out = Path(out)
    _check_same_run(out, cfg)
    # the labels first: labels that cannot be used leave no run folder behind
    labels = ds.read_labels(root, **{k: getattr(d, k) for k in getattr(ds, "options", ())})
    skipped = list(labels.skipped)
    if d.strict and skipped:
        raise DataError(f"{root}/{skipped[0].line()} (--strict stops at the first bad item)")
    if not labels.items:
        raise DataError(f"{root}: no usable labelled images for dataset {d.dataset!r}"
                        + (f" ({len(skipped)} skipped, see the first: {skipped[0].line()})" if skipped else ""))
    out.mkdir(parents=True, exist_ok=True)
    write_config(cfg, out)
    cache_dir = Path(d.cache) if d.cache else out / "cache"
    # a cache may be shared by several prepares at once: only dead processes' files go
    remove_stale_tmp(out, recursive=True)
    if not cache_dir.resolve().is_relative_to(out.resolve()):
        remove_stale_tmp(cache_dir, recursive=True)
    for note in labels.notes:
        log(f"note: {note}")

    items = sorted(labels.items, key=lambda it: it.image_id)
    fractions = d.split or ds.fractions
    assignment, reused = load_or_make_splits(out, [it.image_id for it in items],
                                             [it.label for it in items], fractions, d.seed)
    log(f"{'reusing' if reused else 'wrote'} split {out / 'splits.csv'}")

    jobs = [(it, d.dataset, d.size, str(cache_dir)) for it in items]
    workers = d.workers or os.cpu_count() or 1
    results, decoded_now, repaired = [], 0, []
    bar = tqdm(total=len(jobs), desc="decode+cache", unit="img", disable=bar_disabled(progress))
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        stream = pool.map(_process, jobs, chunksize=8) if pool else map(_process, jobs)
        for item, key, shape, reason, decoded, fixed in stream:
            bar.update()
            if fixed:
                repaired.append(item.path)
            if reason is not None:
                s = Skipped(item.image_id, item.source, reason)
                if d.strict:
                    raise DataError(f"{item.path}: {reason} (--strict stops at the first bad item)")
                skipped.append(s)
            else:
                results.append((item, key, shape))
                decoded_now += decoded
    except BrokenProcessPool:
        raise DataError(f"{root}: a decoding worker died (killed by the system, perhaps for memory); the images "
                        "decoded so far are kept: run the same command again to resume (--workers 1 uses "
                        "less memory)") from None
    finally:
        bar.close()
        if pool:
            pool.shutdown(cancel_futures=True)

    if repaired:
        log(f"note: {len(repaired)} unreadable cache file(s) in {cache_dir} decoded again from their images "
            f"(first: {repaired[0]})")
    if not results:
        raise DataError(f"{root}: every image was skipped; see {out / SKIPPED_FILE}"
                        + (f" (first: {skipped[0].line()})" if skipped else ""))

    rows_by_split = {s: [] for s in SPLITS}
    for item, key, (h, w) in results:
        split = assignment[item.image_id]
        rows_by_split[split].append(dict(
            image_id=item.image_id, split=split, index=len(rows_by_split[split]), label=item.label,
            height=h, width=w, boxes=format_boxes(item.boxes),
            n_annotations=len(item.boxes) or len(item.rles),
            path=os.path.relpath(item.path, root), cache_key=key))
    _pack(out, d.dataset, d.size, cache_dir, rows_by_split, {it.image_id: it for it, _, _ in results})
    _write_skipped(out / SKIPPED_FILE, skipped)
    write_manifest(out / MANIFEST_FILE, [r for s in SPLITS for r in rows_by_split[s]])

    counts = {s: {"negative": sum(r["label"] == 0 for r in rows_by_split[s]),
                  "positive": sum(r["label"] == 1 for r in rows_by_split[s])} for s in SPLITS}
    reasons = {}
    for s in skipped:
        kind = s.reason.split(":")[0].split("(")[0].strip()
        reasons[kind] = reasons.get(kind, 0) + 1
    summary = dict(
        dataset=d.dataset, annotation=labels.annotation or ds.annotation, root=str(root), size=d.size,
        seed=d.seed, split_fractions=list(fractions),
        images=len(results), counts=counts, skipped=len(skipped), skipped_reasons=reasons,
        excluded=labels.excluded, notes=labels.notes, decoded=decoded_now,
        from_cache=len(results) - decoded_now, seconds=round(time.time() - t0, 2),
        manifest=str(out / MANIFEST_FILE), arrays=str(out / ARRAYS_DIR), cache=str(cache_dir))
    atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


def format_summary(summary):
    lines = [f"{summary['dataset']}: {summary['images']} images at {summary['size']} px "
             f"({summary['decoded']} decoded, {summary['from_cache']} from cache) in {summary['seconds']} s",
             f"{'split':<6} {'negative':>9} {'positive':>9} {'total':>7}"]
    for s, c in summary["counts"].items():
        lines.append(f"{s:<6} {c['negative']:>9} {c['positive']:>9} {c['negative'] + c['positive']:>7}")
    for reason, n in summary["excluded"].items():
        lines.append(f"excluded: {n} by {reason}")
    lines.append(f"skipped: {summary['skipped']}" + (" (see skipped.csv)" if summary["skipped"] else ""))
    for reason, n in sorted(summary["skipped_reasons"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n:>6}  {reason}")
    return "\n".join(lines)


def annotation_of(summary):
    """How a prepared run's lesions are given: "boxes" (drawn at any size from their original
    coordinates), "masks" (packed arrays) or "none"; runs of cxrsal before the folder and COCO
    sets say it by their dataset."""
    return summary.get("annotation") or {"rsna": "boxes"}.get(summary.get("dataset"), "masks")


def check_prepared(run_dir):
    """Raise a clear error unless `run_dir` holds a finished `cxrsal prepare`."""
    run_dir = Path(run_dir)
    if not (run_dir / SUMMARY_FILE).is_file():
        raise CxrsalError(f"{run_dir}: not a finished `cxrsal prepare` run (no {SUMMARY_FILE}); "
                          f"run `cxrsal prepare --out {run_dir}`")
    summary = read_json(run_dir / SUMMARY_FILE, keys=("dataset", "size", "counts"),
                        remedy=f"run `cxrsal prepare --out {run_dir}` again to rewrite it")
    if not isinstance(summary["size"], int) or summary["size"] < 1 or not isinstance(summary["counts"], dict):
        raise CxrsalError(f"{run_dir / SUMMARY_FILE}: damaged (size or counts); run `cxrsal prepare --out {run_dir}` "
                          "again to rewrite it")
    return summary
