"""Overlay images: a stored map over its radiograph, with the ground-truth box/mask outline."""

from pathlib import Path

import numpy as np

from ..errors import CxrsalError
from ..files import atomic_path


def overlay(image, smap, mask=None, *, alpha=0.45):
    """RGB uint8: grey radiograph, map in the jet colormap blended where it is high, green outline
    of the mask. `image`, `smap` in [0, 1], 2-D, same shape."""
    import cv2

    grey = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    base = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    heat = cv2.applyColorMap(np.round(np.clip(smap, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    weight = (alpha * np.clip(smap, 0, 1))[..., None]
    out = np.round(base * (1 - weight) + heat * weight).astype(np.uint8)
    if mask is not None and mask.any():
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (0, 255, 0), max(1, image.shape[0] // 160))
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def write_overlays(store_path, out_dir, *, methods=None, image_ids=None, limit=0):
    """PNG per (method, image) of a map store; returns the paths written."""
    import cv2

    from ..data.manifest import read_manifest
    from ..data.pipeline import PreparedSplit, load_batch
    from .store import MapStore

    store = MapStore(store_path)
    meta = store.meta
    methods = methods or store.methods()
    data_dir = store.checked_data()
    rows = {r["image_id"]: r for r in read_manifest(data_dir) if r["split"] == meta["split"]}
    data = PreparedSplit(data_dir, meta["split"])
    out_dir = Path(out_dir)
    # every method and image checked before the first PNG is written
    todo = []
    for method in methods:
        if method not in store.methods():
            raise CxrsalError(f"--methods {method}: not in the store {store_path} (has {', '.join(store.methods())})")
        ids = image_ids or store.ids(method)
        if limit:
            ids = ids[:limit]
        for image_id in ids:
            if image_id not in rows:
                raise CxrsalError(f"--images {image_id}: not in split {meta['split']} of {meta['data']}")
            if not store.has(method, image_id):
                raise CxrsalError(f"--images {image_id}: the store {store_path} holds no {method} map of it")
            todo.append((method, image_id))
    written = []
    for method, image_id in todo:
        m = store.load(method, image_id)
        images, _, masks = load_batch(data, [rows[image_id]["index"]], meta["input_size"])
        rgb = overlay(images[0, ..., 0], m["processed"], masks[0, ..., 0] > 0)
        target = out_dir / method / f"{image_id}.png"
        with atomic_path(target) as tmp:
            ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            tmp.write_bytes(png.tobytes())
        written.append(target)
    return written
