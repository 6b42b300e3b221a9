"""The on-disk map store: one compressed .npz per (method, image), written atomically.

    STORE/store.json              model, data, split, selected images, versions
    STORE/<method>/params.json    every parameter of the method, target, seed, dtypes
    STORE/<method>/<image_id>.npz raw (float32, as the method gives it), processed (uint16,
                                  value / 65535, 2-D in [0, 1]), constant, logit, label, index

A store's identity is what determines its maps: the model's weights (a digest of their values,
so a re-saved checkpoint or a randomization step with no block randomized is the same model),
the prepared data and input size, the input channels differentiated, and per method its
parameters, target and seed. A map of the same identity in another store is copied, never
recomputed (`reuse`): `cxrsal saliency`, the trained step of `cxrsal randomize` and
`cxrsal compare` share their maps through the model run's list of stores (`remember`).
"""

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np

from ..errors import CxrsalError
from ..identity import describe, differences, flatten
from ..files import UNREADABLE, atomic_path, atomic_write_text, file_lock, read_json, remove_stale_tmp

SCALE = 65535
DTYPES = {"raw": "float32", "processed": "uint16 (value / 65535)"}
# store.json keys that determine the maps (with each method's params.json less its versions): a
# store serves another its maps when these agree (`serves`)
IDENTITY = ("weights", "data", "input_size", "input_channels", "precision")
# store.json keys that say nothing of the maps: every other key must agree for a run to resume a
# store (`init`)
NOT_IDENTITY = ("versions", "config", "model_name", "geometry")
# what every map file holds (`MapStore.write`)
MAP_KEYS = ("raw", "processed", "constant", "logit", "label", "index")
# in a model run directory: the map stores computed from it, one absolute path per line
STORES_FILE = "map_stores.txt"


def weights_digest(model):
    """sha256 of the model's weight values (names, shapes, dtypes and bytes, in order)."""
    h = hashlib.sha256()
    for v in model.weights:
        a = np.ascontiguousarray(np.asarray(v))
        h.update(f"{v.path}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def remember(model_dir, store):
    """Add `store` to the model run's list of map stores (atomic rewrite, no duplicates; under a
    lock, since jobs running side by side add theirs to one model: `cxrsal demo`)."""
    f = Path(model_dir) / STORES_FILE
    path = str(Path(store).resolve())
    with file_lock(Path(model_dir) / f".{STORES_FILE}.lock"):
        known = remembered(model_dir)
        if path not in known:
            atomic_write_text(f, "".join(f"{p}\n" for p in [*known, path]))


def remembered(model_dir):
    """The map stores listed in a model run (those deleted since are left out)."""
    f = Path(model_dir) / STORES_FILE
    if not f.exists():
        return []
    return [p for p in f.read_text().splitlines() if p and (Path(p) / "store.json").exists()]


def store_identity_keys(meta):
    """store.json less `NOT_IDENTITY`: what a resumed store, or a shard merged with others, shares."""
    return {k: v for k, v in meta.items() if k not in NOT_IDENTITY}


def method_identity(params):
    return {k: v for k, v in params.items() if k != "versions"}


class MapStore:
    def __init__(self, path):
        self.path = Path(path)

    def _remedy(self):
        return f"the store cannot be trusted: delete {self.path} and compute its maps again (`cxrsal saliency`)"

    @property
    def meta(self):
        p = self.path / "store.json"
        if not p.exists():
            raise CxrsalError(f"--maps {self.path}: not a map store (no store.json); run `cxrsal saliency` first")
        meta = read_json(p, keys=("model", "data", "split", "image_ids", "input_size"), remedy=self._remedy())
        if not isinstance(meta["image_ids"], list) or not all(isinstance(i, str) for i in meta["image_ids"]):
            raise CxrsalError(f"{p}: damaged (image_ids is not a list of image ids); {self._remedy()}")
        return meta

    def check(self, meta, methods=None):
        """Refuse (one line naming what differs) to resume a store made otherwise: store.json's
        every key but `NOT_IDENTITY` (a key an older cxrsal did not write is not compared; `meta`
        None: not compared) and, for `methods` ({method: its params.json record}), each params.json
        there is. Reads only: a run checks every store it will resume before it writes anything."""
        if meta is not None and (self.path / "store.json").exists():
            diffs = differences(store_identity_keys(self.meta), store_identity_keys(meta))
            if diffs:
                raise CxrsalError(f"{self.path} holds maps made otherwise: {describe(diffs)}; use a new --out "
                                  "directory (or delete it to start again)")
        for method, params in (methods or {}).items():
            p = self.path / method / "params.json"
            if p.exists():
                diffs = differences(flatten(method_identity(self.params(method))), flatten(method_identity(params)))
                if diffs:
                    raise CxrsalError(f"{p}: its maps were computed otherwise: {describe(diffs)}; use a new --out "
                                      "directory")

    def init(self, meta):
        """Write store.json, or check that an existing store was made the same way (`check`); the
        temporary files killed runs left in the store go (not those of live shards)."""
        self.check(meta)
        remove_stale_tmp(self.path, recursive=True)
        p = self.path / "store.json"
        if not p.exists():
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write_text(p, json.dumps(meta, indent=2) + "\n")

    def init_method(self, method, params):
        self.check(None, {method: params})
        d = self.path / method
        if not (d / "params.json").exists():
            d.mkdir(parents=True, exist_ok=True)
            atomic_write_text(d / "params.json", json.dumps(params, indent=2) + "\n")

    def checked_data(self, data_dir=None, option="--data"):
        """The prepared run of its images (`data_dir`, default the one it records), refused in one
        line when its manifest is not the one the maps were computed on (when the store says)."""
        from ..data.manifest import manifest_hash

        meta = self.meta
        data_dir = data_dir or meta["data"]
        if meta.get("manifest") and manifest_hash(data_dir) != meta["manifest"]:
            raise CxrsalError(f"--maps {self.path}: its maps are of the images of a manifest (sha256 "
                              f"{meta['manifest'][:12]}...) that {Path(data_dir) / 'manifest.csv'} no longer is: "
                              f"the prepared data changed since (or {option} is another data set)")
        return data_dir

    def identity(self):
        meta = self.meta
        return {k: meta.get(k) for k in IDENTITY}

    def serves(self, other, method):
        """True when this store's `method` maps are those `other` would compute: same identity
        (a store without a weights digest serves nothing) and the same method parameters."""
        if self.path.resolve() == other.path.resolve() or not (self.path / method / "params.json").exists():
            return False
        try:
            mine, donated = self.identity(), method_identity(self.params(method))
        except CxrsalError:      # a damaged store listed in the model run serves nothing
            return False
        return (mine["weights"] is not None and mine == other.identity()
                and donated == method_identity(other.params(method)))

    def reuse(self, sources, method, image_ids):
        """Copy the `method` maps of `image_ids` this store lacks from the first source that
        serves them; returns how many were copied."""
        donors = [s for s in sources if s.serves(self, method)]
        n = 0
        for i in image_ids:
            if self.has(method, i):
                continue
            for d in donors:
                if d.has(method, i) and whole_map(d.file(method, i)):
                    with atomic_path(self.file(method, i)) as tmp:
                        shutil.copyfile(d.file(method, i), tmp)
                    n += 1
                    break
        return n

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
        return read_json(self.path / method / "params.json", keys=("params",),
                         remedy=self._remedy())

    def drop_damaged(self, method, image_ids, log=print):
        """Delete the `method` maps of `image_ids` whose files are not whole (cut short, not a
        NumPy archive, an array missing), so that a resumed run computes them again; returns how
        many. Only the archive's directory is read, not the arrays (cheap)."""
        dropped = []
        for i in image_ids:
            f = self.file(method, i)
            if f.exists() and not whole_map(f):
                f.unlink(missing_ok=True)
                dropped.append(f)
        if dropped:
            log(f"{method}: {len(dropped)} damaged map file(s) deleted and computed again (first: {dropped[0]})")
        return len(dropped)

    def ids(self, method):
        # not the temporary files of a write under way (`.tmp-*`)
        return sorted(p.stem for p in (self.path / method).glob("*.npz") if not p.name.startswith("."))

    def load(self, method, image_id, *, quantized=False):
        """The stored map; `quantized`: processed as the stored uint16 (exact ranks, fast scoring)."""
        f = self.file(method, image_id)
        if not f.exists():
            raise CxrsalError(f"{f}: no such map (method {method}, image {image_id})")
        try:
            with np.load(f) as z:
                out = {k: z[k] for k in z.files}
            missing = set(MAP_KEYS) - set(out)
            if missing:
                raise KeyError(", ".join(sorted(missing)))
            problem = _map_problem(out)
            if problem:
                raise ValueError(problem)
        except UNREADABLE as e:
            raise CxrsalError(f"{f}: not a readable map file ({type(e).__name__}: {e}); delete it and run the "
                              "`cxrsal saliency` (or randomize, compare) that made the store again: it computes the "
                              "maps a store lacks") from None
        out["processed"] = out["processed"] if quantized else out["processed"].astype(np.float32) / SCALE
        for k, t in (("constant", bool), ("logit", float), ("label", int), ("index", int)):
            out[k] = t(out[k])
        return out


def _map_problem(arrays):
    """What is wrong with the arrays of a map file, or None: the processed map is 2-D uint16, the
    raw map 2-D or 3-D floats of the same side (a non-finite raw map is a method's honest output,
    stored flagged constant), the scalars are scalars."""
    raw, processed = arrays["raw"], arrays["processed"]
    if processed.dtype != np.uint16 or processed.ndim != 2:
        return f"processed map of dtype {processed.dtype} and shape {processed.shape}, not a 2-D uint16 map"
    if raw.dtype.kind != "f" or raw.ndim not in (2, 3) or raw.shape[:2] != processed.shape:
        return f"raw map of dtype {raw.dtype} and shape {raw.shape} does not fit the processed map {processed.shape}"
    for k in ("constant", "logit", "label", "index"):
        if np.ndim(arrays[k]) != 0:
            return f"{k} is not a single value"
    return None


def whole_map(path):
    """True when a map file is a whole archive of every array a map holds (its directory is read,
    not the arrays: cut short or foreign files fail)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = {n.removesuffix(".npy") for n in z.namelist()}
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False
    return set(MAP_KEYS) <= names
