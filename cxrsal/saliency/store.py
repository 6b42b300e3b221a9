"""The on-disk map store: one compressed .npz per (method, image), written atomically.

    STORE/store.json              model, data, split, selected images, versions
    STORE/<method>/params.json    every parameter of the method, target, seed, dtypes
    STORE/<method>/<image_id>.npz raw (float32, as the method gives it), processed (uint16,
                                  value / 65535, 2-D in [0, 1]), constant, logit, label, index
"""

import json
from pathlib import Path

import numpy as np

from ..errors import CxrsalError
from ..io import atomic_path, atomic_write_text, remove_stale_tmp

SCALE = 65535
DTYPES = {"raw": "float32", "processed": "uint16 (value / 65535)"}


class MapStore:
    def __init__(self, path):
        self.path = Path(path)

    @property
    def meta(self):
        p = self.path / "store.json"
        if not p.exists():
            raise CxrsalError(f"--maps {self.path}: not a map store (no store.json); run `cxrsal saliency` first")
        return json.loads(p.read_text())

    def init(self, meta, keys=("model", "checkpoint", "data", "split", "image_ids")):
        """Write store.json, or check that an existing store holds the same selection."""
        p = self.path / "store.json"
        if p.exists():
            old = json.loads(p.read_text())
            for k in keys:
                if old.get(k) != meta.get(k):
                    raise CxrsalError(f"{self.path} holds maps of another {k.replace('_', ' ')}; "
                                      "use a new --out directory")
            return
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(p, json.dumps(meta, indent=2) + "\n")

    def init_method(self, method, params):
        d = self.path / method
        d.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(d)
        p = d / "params.json"
        if p.exists():
            old = json.loads(p.read_text())
            if old != params:
                raise CxrsalError(f"{p}: maps were computed with other parameters ({old['params']}, "
                                  f"target {old['target']}, seed {old['seed']}); use a new --out directory")
            return
        atomic_write_text(p, json.dumps(params, indent=2) + "\n")

    def file(self, method, image_id):
        return self.path / method / f"{image_id}.npz"

    def has(self, method, image_id):
        return self.file(method, image_id).exists()

    def write(self, method, image_id, *, raw, processed, constant, logit, label, index, **extras):
        with atomic_path(self.file(method, image_id)) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, raw=np.asarray(raw, np.float32),
                                    processed=np.round(np.asarray(processed) * SCALE).astype(np.uint16),
                                    constant=bool(constant), logit=float(logit), label=int(label), index=int(index),
                                    **{k: np.asarray(v, np.float32) for k, v in extras.items()})

    def methods(self):
        return sorted(p.parent.name for p in self.path.glob("*/params.json"))

    def params(self, method):
        return json.loads((self.path / method / "params.json").read_text())

    def ids(self, method):
        return sorted(p.stem for p in (self.path / method).glob("*.npz"))

    def load(self, method, image_id, *, quantized=False):
        """The stored map; `quantized`: processed as the stored uint16 (exact ranks, fast scoring)."""
        f = self.file(method, image_id)
        if not f.exists():
            raise CxrsalError(f"{f}: no such map (method {method}, image {image_id})")
        with np.load(f) as z:
            out = {k: z[k] for k in z.files}
        out["processed"] = out["processed"] if quantized else out["processed"].astype(np.float32) / SCALE
        for k, t in (("constant", bool), ("logit", float), ("label", int), ("index", int)):
            out[k] = t(out[k])
        return out
