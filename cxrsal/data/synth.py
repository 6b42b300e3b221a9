"""Synthetic chest X-ray data sets in the exact Kaggle RSNA Pneumonia and SIIM-ACR layouts."""

import dataclasses
import json
import math
import uuid
from pathlib import Path

import cv2
import numpy as np

from ..errors import CxrsalError
from ..files import atomic_write_text, remove_stale_tmp
from . import rle, rsna, siim
from .dicom import write_dicom
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

_LOW_RES = 256  # anatomy is drawn at most at this size, then upsampled
_STREAMS = 3  # per image: anatomy, lesion, noise; separate so a lesion-free re-render matches
_TAGS = {"rsna": 0, "siim": 1}  # the two data sets draw from different streams of one seed


# ----------------------------------------------------------------------------- images


@dataclasses.dataclass
class _Anatomy:
    image: np.ndarray  # float32 size x size, smooth (before lesions and noise)
    lung: np.ndarray  # float32 size x size in [0, 1]: lung fields not covered by the heart
    lungs: tuple  # ((cx, cy, ax, ay, lateral_sign), ...) in pixels: image-left, image-right


def _soft_ellipse(u, v, cx, cy, ax, ay, edge):
    r = np.sqrt(((u - cx) / ax) ** 2 + ((v - cy) / ay) ** 2)
    return 0.5 - 0.5 * np.tanh((r - 1.0) / (2 * edge))  # logistic edge, without exp overflow


def _smooth_noise(rng, cells, shape):
    """Smooth random field with roughly unit amplitude (a coarse grid upsampled)."""
    g = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(g, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _anatomy(rng, size, *, enlarged_heart=False):
    low = min(size, _LOW_RES)
    c = ((np.arange(low, dtype=np.float32) + 0.5) / low)
    u, v = c[None, :], c[:, None]
    j = lambda a: rng.uniform(-a, a)  # noqa: E731

    s = 1.0 + j(0.06)  # body scale
    cx, cy = 0.5 + j(0.03), 0.5 + j(0.03)
    bg = rng.uniform(0.02, 0.08)
    body_val = rng.uniform(0.50, 0.62)
    # torso: a rounded box (superellipse) open at the bottom of the film
    bw, bh = 0.45 * s, 0.62
    r4 = ((np.abs(u - cx) / bw) ** 4 + (np.abs(v - (cy + 0.12)) / bh) ** 4) ** 0.25
    body = 0.5 - 0.5 * np.tanh((r4 - 1.0) / 0.04)
    img = bg + (body_val - bg) * body

    lungs = []
    lung = np.zeros((low, low), np.float32)
    for side, ax0, ay0 in ((-1, 0.145, 0.285), (1, 0.135, 0.275)):
        lx = cx + side * (0.2 + j(0.015)) * s
        ly = cy - 0.04 + j(0.02)
        ax, ay = ax0 * s * (1 + j(0.06)), ay0 * s * (1 + j(0.06))
        lungs.append((lx, ly, ax, ay, side))
        lung = np.maximum(lung, _soft_ellipse(u, v, lx, ly, ax, ay, 0.03))
    hs = (1.3 if enlarged_heart else 1.0) * s
    hx, hy = cx + 0.06 + j(0.02), cy + 0.17 + j(0.02)
    heart = _soft_ellipse(u, v, hx, hy, 0.15 * hs, 0.12 * hs, 0.06)
    lung_eff = lung * (1.0 - 0.85 * heart)

    depth = rng.uniform(0.26, 0.34)
    # lungs get brighter towards the diaphragm; the heart adds density
    img = img - depth * lung_eff * (1.0 - 0.25 * np.clip(v - cy + 0.1, 0, None)) + 0.05 * heart
    d = u - cx
    img = img + rng.uniform(0.08, 0.13) * np.exp(-((d / (0.035 * s)) ** 2)) * body  # spine

    # ribs: curved bands, stronger over the dark lungs, absent over the spine
    spacing = rng.uniform(0.07, 0.085) * s
    arc = v - cy + 0.9 * (np.abs(d) - 0.22) ** 2 - 0.25 * np.abs(d)
    phase = arc / spacing + rng.uniform(0, 1)
    bands = (0.5 + 0.5 * np.cos(2 * np.pi * phase)) ** 4
    beside_spine = np.clip((np.abs(d) - 0.03) / 0.03, 0, 1)
    rib_amp = rng.uniform(0.08, 0.12)
    img = img + bands * beside_spine * body * (0.3 * rib_amp + rib_amp * lung_eff)

    # vessel markings, denser near the hila
    markings = 0.6 * _smooth_noise(rng, 10, (low, low)) + 0.4 * _smooth_noise(rng, 24, (low, low))
    img = img + 0.035 * markings * lung_eff * np.clip(1.0 - np.abs(d) / 0.45, 0.3, 1.0)

    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 0.8 * low / _LOW_RES + 0.2)
    lung_eff = lung_eff.astype(np.float32)
    if low != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
        lung_eff = cv2.resize(lung_eff, (size, size), interpolation=cv2.INTER_LINEAR)
    lungs = tuple((lx * size, ly * size, ax * size, ay * size, sd) for lx, ly, ax, ay, sd in lungs)
    return _Anatomy(image=img, lung=lung_eff, lungs=lungs)


def _finish(img, rng):
    """Add film noise and clip to [0, 1]."""
    sigma = rng.uniform(0.008, 0.018)
    out = img + sigma * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(out, 0.0, 1.0, out=out)


def chest_image(rng, size):
    """A lesion-free chest-like radiograph, float32 in [0, 1], bright = dense.

    Parameters
    ----------
    rng : numpy.random.Generator
    size : int
        Side in pixels (square image).
    """
    return _finish(_anatomy(rng, size).image, rng)


def _opacities(rng, anat, size, n_boxes, img):
    """Add fuzzy opacities inside the lungs; return one tight (x, y, w, h) box per opacity."""
    boxes, centres = [], []
    first = int(rng.integers(2))
    coord = np.arange(size, dtype=np.float32)
    for k in range(n_boxes):
        lx, ly, ax, ay, _ = anat.lungs[(first + k) % 2]
        for _ in range(30):  # well inside a lung, clear of the heart, apart from the others
            r, t = 0.65 * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
            px, py = lx + r * ax * math.cos(t), ly + r * ay * math.sin(t)
            if anat.lung[int(py), int(px)] > 0.85 and all(
                math.hypot(px - qx, py - qy) > 0.15 * size for qx, qy in centres
            ):
                break
        centres.append((px, py))
        # the added intensity exceeds 10% of its peak within ~2.15 sigma: boxes ~12-26% of the side
        sx = rng.uniform(0.12, 0.26) * size / 4.29
        sy = sx * rng.uniform(1.0, 1.5)
        amp = rng.uniform(0.28, 0.4)
        x0, x1 = max(0, int(px - 3 * sx)), min(size, int(math.ceil(px + 3 * sx)) + 1)
        y0, y1 = max(0, int(py - 3 * sy)), min(size, int(math.ceil(py + 3 * sy)) + 1)
        gx = np.exp(-0.5 * ((coord[x0:x1] + 0.5 - px) / sx) ** 2)
        gy = np.exp(-0.5 * ((coord[y0:y1] + 0.5 - py) / sy) ** 2)
        patch = 0.8 + 0.2 * np.tanh(_smooth_noise(rng, 5, (y1 - y0, x1 - x0)))
        field = amp * gy[:, None] * gx[None, :] * patch * anat.lung[y0:y1, x0:x1]
        visible = field > 0.1 * amp
        if not visible.any():  # centre always lies in the lung; guard anyway
            visible[int(py) - y0, int(px) - x0] = True
        rows = np.flatnonzero(visible.any(axis=1))
        cols = np.flatnonzero(visible.any(axis=0))
        boxes.append((x0 + int(cols[0]), y0 + int(rows[0]),
                      int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)))
        img[y0:y1, x0:x1] += field
    return boxes


def _pneumothorax(rng, anat, size, n_pieces, overlap, img):
    """Replace an apical/lateral crescent of one lung by dark, texture-free air behind a bright
    pleural line; return the annotation masks (their union is exactly the changed region)."""
    lx, ly, ax, ay, side = anat.lungs[int(rng.integers(2))]
    phi = rng.uniform(math.radians(40), math.radians(90))
    vx, vy = side * math.cos(phi), -math.sin(phi)  # towards the apex / lateral wall
    curve = rng.uniform(1.2, 2.0)  # radius of the collapsed lung's edge, in lung radii
    target = rng.uniform(0.02, 0.05) * size * size
    x0, x1 = max(0, int(lx - ax) - 1), min(size, int(math.ceil(lx + ax)) + 2)
    y0, y1 = max(0, int(ly - ay) - 1), min(size, int(math.ceil(ly + ay)) + 2)
    px = ((np.arange(x0, x1, dtype=np.float32) + 0.5 - lx) / ax)[None, :]
    py = ((np.arange(y0, y1, dtype=np.float32) + 0.5 - ly) / ay)[:, None]
    in_lung = px**2 + py**2 <= 1.0

    def region(depth, sub=1):
        # air = lung outside a large circle set back by `depth` from the apex/lateral wall:
        # a cap that is thickest along v and tapers to nothing at both ends
        shift = curve - 1.0 + depth
        rc = np.sqrt((px[:, ::sub] + shift * vx) ** 2 + (py[::sub] + shift * vy) ** 2) / curve
        return in_lung[::sub, ::sub] & (rc > 1.0), rc

    theta = np.arctan2(px * vy - py * vx, px * vx + py * vy)  # angle from v
    gap = max(2.5, 0.012 * size) / (0.25 * (ax + ay))  # in pixels at half the lung radius

    def air(depth, sub=1):
        """The changed region and its annotation pieces, split by angle around the lung centre."""
        full, rc = region(depth, sub)
        th = theta[::sub, ::sub]
        if n_pieces < 2 or not full.any():
            return full, rc, [full]
        cuts = np.quantile(th[full], [i / n_pieces for i in range(1, n_pieces)])
        edges = np.concatenate([[-np.inf], cuts, [np.inf]])
        if overlap:
            t = th[full]
            delta = 0.15 * (t.max() - t.min()) / n_pieces  # each row reaches into its neighbours
            pieces = [full & (th >= edges[i] - delta) & (th < edges[i + 1] + delta)
                      for i in range(n_pieces)]
        else:
            # a small gap makes the annotations separate components; the gap stays unchanged
            for cut in cuts:
                full = full & (np.abs(th - cut) >= gap)
            pieces = [full & (th >= edges[i]) & (th < edges[i + 1]) for i in range(n_pieces)]
        return full, rc, [p for p in pieces if p.any()] or [full]

    lo, hi, sub = 0.0, 1.5, max(1, size // 128)
    for _ in range(14):  # the area grows with the depth
        mid = 0.5 * (lo + hi)
        if air(mid, sub)[0].sum() * sub * sub < target:
            lo = mid
        else:
            hi = mid
    full, rc, pieces = air(0.5 * (lo + hi))

    line_px = max(1.0, 0.004 * size)
    line = full & ((rc - 1.0) * curve * math.sqrt(ax * ay) < line_px)
    win = img[y0:y1, x0:x1]
    win[full] = rng.uniform(0.06, 0.12)
    win[line] = rng.uniform(0.45, 0.6)

    masks = []
    for p in pieces:
        m = np.zeros((size, size), bool)
        m[y0:y1, x0:x1] = p
        masks.append(m)
    return masks


# ----------------------------------------------------------------------------- plans


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
    anat = _anatomy(anat_rng, size, enlarged_heart=case.not_normal)
    img = anat.image
    boxes = []
    if lesions and case.positive:
        boxes = _opacities(lesion_rng, anat, size, case.lesions, img)
    return _finish(img, noise_rng), boxes


def _render_siim(case, size, *, lesions=True):
    """Float image in [0, 1] and its annotation masks (one per CSV row; union = changed region)."""
    anat_rng, lesion_rng, noise_rng = _streams(case)
    anat = _anatomy(anat_rng, size)
    img = anat.image
    masks = []
    if lesions and case.positive:
        masks = _pneumothorax(lesion_rng, anat, size, case.lesions, case.overlap, img)
    return _finish(img, noise_rng), masks


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
