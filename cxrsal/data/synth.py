"""Synthetic chest X-ray data sets in the exact Kaggle RSNA Pneumonia and SIIM-ACR layouts."""

import dataclasses
import json
import math
import uuid
from pathlib import Path

import numpy as np

from ..errors import CxrsalError
from ..files import atomic_write_text, remove_stale_tmp
from . import rle, rsna, siim
from .dicom import write_dicom
from .drawing import anatomy, finish, opacities, pneumothorax
from .items import DATASETS

INFO = "synth_info.json"

# Anonymiser root of both Kaggle data sets: <root>.{2 study, 3 series, 4 instance}.8323329.N.T.C
_UID_ROOT = "1.2.276.0.7230010.3.1"

# Storage variety (fractions drawn per image; guarantees are added on top, see _plan).
_RSNA_JPEG, _RSNA_MONO1, _RSNA_BITS12 = 0.2, 0.1, 0.05
_SIIM_JPEG, _SIIM_MONO1 = 0.8, 0.1
_NOT_NORMAL_FRACTION = 1 / 3  # of the RSNA negatives
_SPLIT_P = (0.75, 0.17, 0.08)  # SIIM positives written as 1, 2 or 3 annotation rows
_BOXES_P = (0.55, 0.30, 0.10, 0.05)  # RSNA positives with 1..4 boxes

_STREAMS = 3  # per image: anatomy, lesion, noise; separate so a lesion-free re-render matches
_TAGS = {"rsna": 0, "siim": 1}  # the two data sets draw from different streams of one seed


@dataclasses.dataclass(frozen=True)
class _Case:
    dataset: str
    seed: int
    index: int
    positive: bool
    lesions: int  # RSNA: boxes; SIIM: annotation rows (0 for negatives)
    overlap: bool  # SIIM: annotation rows overlap (else disjoint components)
    not_normal: bool  # RSNA class "No Lung Opacity / Not Normal"
    jpeg: bool
    mono1: bool
    bits12: bool
    image_id: str  # RSNA patientId / SIIM ImageId (= SOPInstanceUID)
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sex: str
    age: str
    view: str


def _streams(case):
    root = np.random.SeedSequence(case.seed, spawn_key=(_TAGS[case.dataset], 1, case.index))
    return [np.random.default_rng(s) for s in root.spawn(_STREAMS)]


def _render_rsna(case, size, *, lesions=True):
    """Float image in [0, 1] and its boxes; lesions=False gives the same film without opacities."""
    anat_rng, lesion_rng, noise_rng = _streams(case)
    anat = anatomy(anat_rng, size, enlarged_heart=case.not_normal)
    img = anat.image
    boxes = []
    if lesions and case.positive:
        boxes = opacities(lesion_rng, anat, size, case.lesions, img)
    return finish(img, noise_rng), boxes


def _render_siim(case, size, *, lesions=True):
    """Float image in [0, 1] and its annotation masks (one per CSV row; union = changed region)."""
    anat_rng, lesion_rng, noise_rng = _streams(case)
    anat = anatomy(anat_rng, size)
    img = anat.image
    masks = []
    if lesions and case.positive:
        masks = pneumothorax(lesion_rng, anat, size, case.lesions, case.overlap, img)
    return finish(img, noise_rng), masks


def _n_positive(n, fraction):
    k = int(math.floor(n * fraction + 0.5))  # half up, not Python's banker's rounding
    if n >= 2 and 0 < fraction < 1:
        k = min(max(k, 1), n - 1)
    return k


def _ensure_one(flags, rng, allowed=None):
    """Set one flag (a random allowed index) when none is set."""
    if flags.any():
        return
    for i in rng.permutation(len(flags)):
        if allowed is None or allowed[i]:
            flags[i] = True
            return


def _anon_uids(rng, taken):
    while True:
        a = int(rng.integers(1000, 32000))
        t = 1517870000 + int(rng.integers(0, 100000))
        c = int(rng.integers(100000, 999000))
        sop = f"{_UID_ROOT}.4.8323329.{a}.{t}.{c + 2}"
        if sop not in taken:
            taken.add(sop)
            study = f"{_UID_ROOT}.2.8323329.{a}.{t}.{c + 1}"
            return study, f"{_UID_ROOT}.3.8323329.{a}.{t}.{c}", sop


def _plan(dataset, n, seed, positive_fraction):
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_TAGS[dataset], 0)))
    n_pos = _n_positive(n, positive_fraction)
    positive = np.zeros(n, bool)
    positive[rng.permutation(n)[:n_pos]] = True
    pos_idx = [int(i) for i in rng.permutation(np.flatnonzero(positive))]
    overlap = np.zeros(n, bool)
    not_normal = np.zeros(n, bool)
    bits12 = np.zeros(n, bool)

    if dataset == "rsna":
        lesions = rng.choice(np.arange(1, 5), size=n, p=_BOXES_P) * positive
        if pos_idx and lesions.max() < 2:
            lesions[pos_idx[0]] = 2
        neg = rng.permutation(np.flatnonzero(~positive))
        not_normal[neg[: int(math.floor(len(neg) * _NOT_NORMAL_FRACTION + 0.5))]] = True
        jpeg = rng.random(n) < _RSNA_JPEG
        mono1 = rng.random(n) < _RSNA_MONO1
        bits12 = rng.random(n) < _RSNA_BITS12
        if n >= 8:
            _ensure_one(bits12, rng)
        jpeg &= ~bits12  # JPEG Baseline is 8-bit only
        if n >= 4:
            _ensure_one(jpeg, rng, allowed=~bits12)
            _ensure_one(mono1, rng)
    else:
        lesions = rng.choice(np.arange(1, 4), size=n, p=_SPLIT_P) * positive
        overlap = rng.random(n) < 0.5
        if len(pos_idx) >= 2 and lesions.max() < 2:
            lesions[pos_idx[0]] = 2
        if len(pos_idx) >= 4:  # both kinds of multi-row annotation
            for want in (True, False):
                if not np.any((lesions > 1) & (overlap == want)):
                    singles = [i for i in pos_idx if lesions[i] == 1]
                    i = singles[0] if singles else pos_idx[0]
                    lesions[i] = max(2, lesions[i])
                    overlap[i] = want
        overlap &= lesions > 1
        jpeg = rng.random(n) < _SIIM_JPEG
        mono1 = rng.random(n) < _SIIM_MONO1
        if n >= 4:
            _ensure_one(jpeg, rng)
            _ensure_one(mono1, rng)

    cases, taken, ids = [], set(), set()
    for i in range(n):
        patient = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        while patient in ids:
            patient = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        ids.add(patient)
        study, series, sop = _anon_uids(rng, taken)
        sex = "M" if rng.random() < 0.55 else "F"
        age = f"{int(rng.integers(18, 90)):03d}Y"
        view = "AP" if rng.random() < 0.45 else "PA"
        cases.append(_Case(
            dataset=dataset, seed=seed, index=i, positive=bool(positive[i]),
            lesions=int(lesions[i]), overlap=bool(overlap[i]), not_normal=bool(not_normal[i]),
            jpeg=bool(jpeg[i]), mono1=bool(mono1[i]), bits12=bool(bits12[i]),
            image_id=patient if dataset == "rsna" else sop, patient_id=patient,
            study_uid=study, series_uid=series, sop_uid=sop, sex=sex, age=age, view=view,
        ))
    return cases


# ----------------------------------------------------------------------------- writers


def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _check_args(out, n, seed, image_size, positive_fraction, csvs):
    if not _is_int(n):
        raise CxrsalError(f"--n must be a whole number, got {n!r}")
    if n < 1:
        raise CxrsalError("--n must be at least 1")
    if not _is_int(seed) or seed < 0:
        raise CxrsalError(f"--seed must be a non-negative integer, got {seed!r}")
    if not _is_int(image_size) or image_size < 64:
        raise CxrsalError(f"--image-size must be an integer of at least 64, got {image_size!r}")
    fraction_ok = isinstance(positive_fraction, (int, float, np.floating))
    if not fraction_ok or not 0 <= positive_fraction <= 1:
        raise CxrsalError(f"--positive-fraction must lie in [0, 1], got {positive_fraction!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CxrsalError(f"{out}: exists and is not a folder; give an empty folder")
    for name in csvs:
        if (out / name).exists():
            raise CxrsalError(f"{out} already holds {name}; use an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out, recursive=True)     # a killed synth's half-written files
    return out


def _quantize(img, case):
    """Stored values of a float image: 8 or 12 bits, inverted for MONOCHROME1."""
    top = 4095 if case.bits12 else 255
    v = np.rint(img * top).astype(np.uint16 if case.bits12 else np.uint8)
    return (top - v).astype(v.dtype) if case.mono1 else v


def _write_case(path, img, case):
    write_dicom(
        path,
        _quantize(img, case),
        photometric="MONOCHROME1" if case.mono1 else "MONOCHROME2",
        jpeg=case.jpeg,
        patient_id=case.patient_id,
        sop_instance_uid=case.sop_uid,
        study_uid=case.study_uid,
        series_uid=case.series_uid,
        rescale=(1.0, 0.0) if case.bits12 else None,
        bits_stored=12 if case.bits12 else None,
        header={
            "PatientSex": case.sex,
            "PatientAge": case.age,
            "ViewPosition": case.view,
            "SeriesDescription": f"view: {case.view}",
        },
    )


def _write_info(out, dataset, summary):
    """synth_info.json holds one entry per data set, so both may share one folder."""
    path = out / INFO
    info = {}
    if path.exists():
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            info = {}
    info[dataset] = summary
    atomic_write_text(path, json.dumps(info, indent=2, sort_keys=True) + "\n")


def synth_rsna(out, n, *, seed=0, image_size=1024, positive_fraction=0.4):
    """Write an RSNA Pneumonia (stage 2) style data set of `n` images under `out`.

    Returns a summary dict: images, positives, boxes, multi_box, not_normal, jpeg, mono1, bits12.
    """
    out = _check_args(out, n, seed, image_size, positive_fraction, (rsna.LABELS, rsna.CLASS_INFO))
    cases = _plan("rsna", int(n), int(seed), positive_fraction)
    labels = ["patientId,x,y,width,height,Target"]
    classes = ["patientId,class"]
    n_boxes = 0
    for case in cases:
        img, boxes = _render_rsna(case, int(image_size))
        _write_case(out / rsna.IMAGES / f"{case.image_id}.dcm", img, case)
        if case.positive:
            for x, y, w, h in boxes:
                labels.append(f"{case.image_id},{x:.1f},{y:.1f},{w:.1f},{h:.1f},1")
                classes.append(f"{case.image_id},{rsna.POSITIVE_CLASS}")
            n_boxes += len(boxes)
        else:
            labels.append(f"{case.image_id},,,,,0")
            cls = rsna.EXCLUDED_CLASS if case.not_normal else rsna.NORMAL_CLASS
            classes.append(f"{case.image_id},{cls}")
    # CSVs last: their presence marks a finished data set
    atomic_write_text(out / rsna.CLASS_INFO, "\n".join(classes) + "\n")
    atomic_write_text(out / rsna.LABELS, "\n".join(labels) + "\n")
    summary = {
        "dataset": "rsna", "seed": int(seed), "n": int(n), "image_size": int(image_size),
        "positive_fraction": float(positive_fraction),
        "images": len(cases),
        "positives": sum(c.positive for c in cases),
        "boxes": n_boxes,
        "multi_box": sum(c.positive and c.lesions > 1 for c in cases),
        "not_normal": sum(c.not_normal for c in cases),
        "jpeg": sum(c.jpeg for c in cases),
        "mono1": sum(c.mono1 for c in cases),
        "bits12": sum(c.bits12 for c in cases),
    }
    _write_info(out, "rsna", summary)
    return summary


def synth_siim(out, n, *, seed=0, image_size=1024, positive_fraction=0.4):
    """Write a SIIM-ACR Pneumothorax (stage 1) style data set of `n` images under `out`.

    Returns a summary dict: images, positives, annotations, multi_annotation, overlapping,
    jpeg, mono1.
    """
    out = _check_args(out, n, seed, image_size, positive_fraction, (siim.STAGE1_LABELS,))
    cases = _plan("siim", int(n), int(seed), positive_fraction)
    rows = ["ImageId, EncodedPixels"]
    n_rows = 0
    for case in cases:
        img, masks = _render_siim(case, int(image_size))
        path = out / siim.IMAGES / case.study_uid / case.series_uid / f"{case.image_id}.dcm"
        _write_case(path, img, case)
        if masks:
            rows.extend(f"{case.image_id}, {rle.encode(m)}" for m in masks)
            n_rows += len(masks)
        else:
            rows.append(f"{case.image_id}, {rle.EMPTY}")
    atomic_write_text(out / siim.STAGE1_LABELS, "\n".join(rows) + "\n")
    summary = {
        "dataset": "siim", "seed": int(seed), "n": int(n), "image_size": int(image_size),
        "positive_fraction": float(positive_fraction),
        "images": len(cases),
        "positives": sum(c.positive for c in cases),
        "annotations": n_rows,
        "multi_annotation": sum(c.positive and c.lesions > 1 for c in cases),
        "overlapping": sum(c.overlap for c in cases),
        "jpeg": sum(c.jpeg for c in cases),
        "mono1": sum(c.mono1 for c in cases),
    }
    _write_info(out, "siim", summary)
    return summary


# the writer of each registered data set (cxrsal.data.items.DATASETS), by its name
WRITERS = {rsna.RSNA.name: synth_rsna, siim.SIIM.name: synth_siim}


def synth(dataset, out, n, *, seed=0, image_size=1024, **kw):
    """Write the synthetic data set `dataset` ('rsna' or 'siim'); see synth_rsna / synth_siim."""
    DATASETS.get(dataset)   # unknown: one line with the valid choices
    if dataset not in WRITERS:
        raise CxrsalError(f"dataset {dataset!r} has no synthetic writer; synth writes {', '.join(sorted(WRITERS))}")
    return WRITERS[dataset](out, n, seed=seed, image_size=image_size, **kw)
