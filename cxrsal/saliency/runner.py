"""`cxrsal saliency`: every requested method over a split, batched, resumable and shardable.

Images are taken in groups of consecutive selected images (`group_size`, or more for cheap
methods: enough maps to fill one `batch_size` of model evaluations); a group is the unit
of computation, of resumption (its maps are skipped when all exist) and of sharding (group g
belongs to shard g mod K), so a sharded or resumed run computes every map in exactly the same
batch as an uninterrupted one and the stores agree bit for bit.
"""

import contextlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

from ..config import Config, to_dict
from ..errors import CxrsalError
from .base import METHODS, noise_rng, parse_methods
from .postprocess import postprocess
from .store import DTYPES, MapStore, remember, weights_digest


def select(rows, split, positives_only, limit):
    from ..data.manifest import split_rows

    rows = split_rows(rows, split)
    if positives_only:
        rows = [r for r in rows if r["label"] == 1]
    if limit:
        rows = rows[:limit]
    if not rows:
        raise CxrsalError(f"no images selected from split {split!r}"
                          + (" (--positives-only)" if positives_only else ""))
    return rows


# the adapters `sharing_models()` keeps, by what determines them
_SHARED = {"depth": 0, "adapters": {}}


@contextlib.contextmanager
def sharing_models():
    """Within it, `run_saliency` calls on the same checkpoint with the same adapter settings use
    one loaded model and one `ModelAdapter`: its tf.functions are traced once, not once per map
    store (the demo maps a model's test positives, its validation split and every test image,
    each of which would trace them again). Nested blocks share the outermost one's."""
    _SHARED["depth"] += 1
    try:
        yield
    finally:
        _SHARED["depth"] -= 1
        if not _SHARED["depth"]:
            _SHARED["adapters"] = {}


def _checkpoint_key(run, s):
    """What identifies the checkpoint file's contents (path, inode, size, times: a checkpoint is
    replaced by a rename) and the adapter settings; None when it cannot be read (`Run.model` says)."""
    try:
        ckpt = run.checkpoint(s.checkpoint)
        st = os.stat(ckpt)
    except (CxrsalError, OSError):
        return None
    return (str(ckpt), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, s.batch_size,
            s.input_channels, s.jit_compile, s.precision)


def _adapter(run, s, strategy, log):
    """(model, adapter) of `run`'s checkpoint for the settings `s` (a SaliencyConfig)."""
    from .adapter import ModelAdapter

    key = _checkpoint_key(run, s) if _SHARED["depth"] else None
    found = _SHARED["adapters"].get(key) if key else None
    if found is not None:
        model, adapter, batch_size = found
        adapter.batch_size = batch_size      # as a fresh one: a store may have halved it (memory)
        adapter._log = log or (lambda *_: None)
        return model, adapter
    with strategy.scope():
        model = run.model(s.checkpoint)
    adapter = ModelAdapter(model, batch_size=s.batch_size, strategy=strategy, input_channels=s.input_channels,
                           jit_compile=s.jit_compile, precision=s.precision, log=log)
    if key:
        _SHARED["adapters"] = {key: (model, adapter, adapter.batch_size)}     # one model at a time
    return model, adapter


def store_identity(data_dir, adapter):
    """What a store records of how its maps were computed, beside the model and the images: the
    prepared data's manifest, the input's size and channels, and the arithmetic (precision, XLA)."""
    from ..data.manifest import manifest_hash

    return {"manifest": manifest_hash(data_dir), "input_size": adapter.input_shape[0],
            "input_channels": adapter.input_channels, "precision": adapter.compute_dtype,
            "jit_compile": adapter.jit_compile}


def run_saliency(model_dir, out, cfg: Config, methods="study", *, num_shards=1, shard_index=0,
                 progress=None, log=print):
    """Compute the maps into store `out`; returns {method: maps written this session}. The
    store is listed in the model run, so randomize and compare reuse its maps."""
    from ..data.manifest import read_manifest
    from ..data.pipeline import PreparedSplit
    from ..models.receptive_field import feature_geometry
    from ..runs import CLASSIFICATION, Run
    from ..training.fit import versions
    from ..training.strategy import choose_strategy

    s = cfg.saliency
    if not (0 <= shard_index < num_shards):
        raise CxrsalError(f"--shard-index {shard_index}: must be in 0..{num_shards - 1} for --num-shards {num_shards}")
    run = Run(model_dir).expect(CLASSIFICATION)
    model_dir, data_dir = run.path, run.checked_data()
    strategy, described = choose_strategy()
    model, adapter = _adapter(run, s, strategy, log)
    names = parse_methods(methods, adapter.has_class_maps, adapter.has_layers)
    rows = select(read_manifest(data_dir), s.split, s.positives_only, s.limit)
    data = PreparedSplit(data_dir, s.split)
    store = MapStore(out)
    meta = {"model": str(model_dir.resolve()), "checkpoint": s.checkpoint, "data": data_dir, "split": s.split,
            "image_ids": [r["image_id"] for r in rows], "weights": weights_digest(model), "model_name": model.name,
            **store_identity(data_dir, adapter), "geometry": feature_geometry(model) if adapter.has_layers else None,
            "config": to_dict(cfg)["saliency"], "versions": versions()}
    store.check(meta, method_records(names, cfg, adapter))     # a store made otherwise: refused before any write
    store.init(meta)
    log(f"{described}; {len(rows)} images" + (f", shard {shard_index + 1}/{num_shards}" if num_shards > 1 else ""))
    remember(model_dir, store.path)   # randomize and compare take this model's maps from here
    return fill_store(adapter, store, rows, data, names, cfg, num_shards=num_shards, shard_index=shard_index,
                      progress=progress, log=log)


def method_records(names, cfg, adapter, wrap=None):
    """{method: what its params.json records}: every parameter, the target, the noise seed, the
    channels differentiated, the stored dtypes (and sMPRT's smoothing when `wrap` adds it)."""
    from ..training.fit import versions

    s, out = cfg.saliency, {}
    for name in names:
        method = METHODS.get(name) if wrap is None else wrap(METHODS.get(name))
        out[name] = {"method": name, "params": method.resolve(cfg.method_params(name)), "target": s.target,
                     "seed": s.seed, "input_channels": adapter.input_channels, "dtypes": DTYPES,
                     "channels": method.channels, "versions": versions(),
                     **({"smoothing": method.smoothing} if hasattr(method, "smoothing") else {})}
    return out


def fill_store(adapter, store, rows, data, names, cfg, *, num_shards=1, shard_index=0, progress=None, log=print,
               label="", sources=(), wrap=None):
    """Compute the maps of `names` for `rows` that `store` lacks; returns {method: maps written}.

    Maps of the same identity in one of `sources` (MapStores) are copied instead of computed
    (`MapStore.reuse`). Images are handed to the methods in the adapter's space (`adapter.lift`:
    the grey image replicated to 3 channels with `saliency.input_channels: 3`). `wrap`: a function
    of a registered method giving the method to run instead (sMPRT's `NoiseAveraged`); what it
    adds (`smoothing`) is part of the maps' parameters."""
    from tqdm import tqdm

    from ..console import bar_disabled
    from ..data.pipeline import load_batch

    s = cfg.saliency
    size = adapter.input_shape[0]
    records = method_records(names, cfg, adapter, wrap)
    store.check(None, records)      # every method's parameters, before any of them writes
    written = {}
    with ThreadPoolExecutor(max_workers=1) as executor:
        for name in names:
            method = METHODS.get(name) if wrap is None else wrap(METHODS.get(name))
            params = records[name]["params"]
            # groups from the configured batch (auto: the CPU's 32), not the one memory allowed, so
            # that shards and resumed runs on other machines group the images alike
            nominal = s.batch_size if isinstance(s.batch_size, int) else 32
            per_group = max(s.group_size, -(-nominal // method.evaluations(params)))
            groups = [rows[i:i + per_group] for i in range(0, len(rows), per_group)]
            mine = groups[shard_index::num_shards]
            store.init_method(name, records[name])
            store.drop_damaged(name, [r["image_id"] for g in mine for r in g], log=log)
            written[name] = store.reuse(sources, name, [r["image_id"] for g in mine for r in g])
            if written[name]:
                log(f"{label}{name}: {written[name]} maps of the same model and parameters reused")
            todo = [g for g in mine if not all(store.has(name, r["image_id"]) for r in g)]
            t0 = time.time()
            pending = None
            for group in tqdm(todo, desc=f"{label}{name}", unit="group", disable=bar_disabled(progress)):
                idx = [r["index"] for r in group]
                images, _, masks = load_batch(data, idx, size)
                images = adapter.lift(images)
                logits, predicted = adapter.positive_logits(images)
                cls = adapter.classes(images, s.target, predicted)
                truth = {"truth": masks} if method.needs_truth else {}      # the oracle control's ground truth
                finish = method.start(adapter, images, cls, [noise_rng(s.seed, i) for i in idx], executor, **params,
                                      **truth)
                if pending:
                    written[name] += _write(store, name, method, *pending)
                pending = (group, logits, finish, method.extras(adapter, images))
            if pending:
                written[name] += _write(store, name, method, *pending)
            if todo:
                log(f"{label}{name}: {written[name]} maps in {time.time() - t0:.1f} s")
    return written


def _write(store, name, method, group, logits, finish, extras):
    raw = finish()
    n = 0
    for k, (r, m, z) in enumerate(zip(group, raw, logits)):
        if store.has(name, r["image_id"]):
            continue
        processed, constant = postprocess(m, channels=method.channels)
        store.write(name, r["image_id"], raw=m, processed=processed, constant=constant, logit=z,
                    label=r["label"], index=r["index"], **{key: v[k] for key, v in extras.items()})
        n += 1
    return n
