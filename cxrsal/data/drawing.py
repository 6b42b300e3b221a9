"""Synthetic radiographs: chest anatomy (lungs, heart, ribs, soft tissue) drawn smooth at low
resolution and upsampled, RSNA-like opacities with their boxes, SIIM-like pneumothoraces with
their annotation masks, and film noise. `cxrsal.data.synth` writes them as Kaggle data sets."""

import dataclasses
import math

import cv2
import numpy as np

LOW_RES = 256  # anatomy is drawn at most at this size, then upsampled


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


def anatomy(rng, size, *, enlarged_heart=False):
    low = min(size, LOW_RES)
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

    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 0.8 * low / LOW_RES + 0.2)
    lung_eff = lung_eff.astype(np.float32)
    if low != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
        lung_eff = cv2.resize(lung_eff, (size, size), interpolation=cv2.INTER_LINEAR)
    lungs = tuple((lx * size, ly * size, ax * size, ay * size, sd) for lx, ly, ax, ay, sd in lungs)
    return _Anatomy(image=img, lung=lung_eff, lungs=lungs)


def finish(img, rng):
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
    return finish(anatomy(rng, size).image, rng)


def opacities(rng, anat, size, n_boxes, img):
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


def pneumothorax(rng, anat, size, n_pieces, overlap, img):
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
