"""Shards of one `cxrsal saliency` job: which shard this process is (from the scheduler that
started it) and the merge of shard stores written on machines that share no file system.

`--shard-index auto` reads, in turn:

    SLURM array job        SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT
    Kubernetes Indexed Job JOB_COMPLETION_INDEX of the job's completions (--num-shards, or the
                           environment variable CXRSAL_NUM_SHARDS the manifest sets)
    TF_CONFIG              the task's position among the cluster's chief and workers

A shard is a set of image groups (`runner.fill_store`: group g belongs to shard g mod K), so the
shards' maps are the maps of a one-machine run, image for image. Shards may write into one store
(a shared file system) or each into its own; `merge_stores` then copies every map into one store
after checking that the shards are of one job and hold every map exactly once.
"""

import json
import os
import shutil
from pathlib import Path

from ..errors import CxrsalError
from ..files import atomic_path, atomic_write_text, remove_stale_tmp



def _int(env, name):
    try:
        return int(env[name])
    except ValueError:
        raise CxrsalError(f"--shard-index auto: {name}={env[name]!r} is not an integer") from None


def shard_from_environment(num_shards=None, env=None):
    """(shard index, number of shards) from the scheduler's environment; `num_shards` (the
    --num-shards option, None when not given) must agree with what the scheduler says."""
    env = os.environ if env is None else env
    found = None
    if "SLURM_ARRAY_TASK_ID" in env:
        if "SLURM_ARRAY_TASK_COUNT" not in env:
            raise CxrsalError("--shard-index auto: SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_COUNT "
                              "(an array job sets both; run under sbatch --array)")
        first = _int(env, "SLURM_ARRAY_TASK_MIN") if "SLURM_ARRAY_TASK_MIN" in env else 0
        found = (_int(env, "SLURM_ARRAY_TASK_ID") - first, _int(env, "SLURM_ARRAY_TASK_COUNT"), "SLURM array job")
    elif "JOB_COMPLETION_INDEX" in env:
        count = num_shards or (_int(env, "CXRSAL_NUM_SHARDS") if "CXRSAL_NUM_SHARDS" in env else None)
        if not count:
            raise CxrsalError("--shard-index auto: a Kubernetes Indexed Job gives JOB_COMPLETION_INDEX but not the "
                              "number of completions; pass --num-shards K (or set CXRSAL_NUM_SHARDS) equal to "
                              "the job's completions")
        found = (_int(env, "JOB_COMPLETION_INDEX"), count, "Kubernetes Indexed Job")
    elif "TF_CONFIG" in env:
        try:
            tf_config = json.loads(env["TF_CONFIG"])
            cluster, task = tf_config["cluster"], tf_config["task"]
            roles = [r for r in ("chief", "worker") if cluster.get(r)]
            tasks = [(r, i) for r in roles for i in range(len(cluster[r]))]
            index = tasks.index((task["type"], int(task["index"])))
        except (ValueError, KeyError, TypeError):
            raise CxrsalError("--shard-index auto: TF_CONFIG does not name this task among the cluster's chief "
                              "and workers ({\"cluster\": {\"worker\": [...]}, \"task\": {\"type\": \"worker\", "
                              "\"index\": i}})") from None
        found = (index, len(tasks), "TF_CONFIG")
    if found is None:
        raise CxrsalError("--shard-index auto: no scheduler found (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or "
                          "TF_CONFIG); give --shard-index N --num-shards K")
    index, count, source = found
    if num_shards not in (None, count):
        raise CxrsalError(f"--num-shards {num_shards}: the {source} has {count} tasks")
    if not 0 <= index < count:
        raise CxrsalError(f"--shard-index auto: the {source} gives index {index}, outside 0..{count - 1}")
    return index, count


def merge_stores(shards, out, *, log=print):
    """Copy the maps of shard stores `shards` of one `cxrsal saliency` job into store `out`.

    Refused (one line) when the shards are of different jobs (model weights, data, split,
    images), a method's parameters differ, or a map is missing from every shard or present in
    two. Files are copied byte for byte and atomically, so the merged store equals a
    one-machine run's and a killed merge resumes. Returns {method: maps copied}."""
    from ..identity import describe, differences
    from .store import MapStore, method_identity, store_identity_keys, whole_map

    stores = [MapStore(s) for s in shards]
    if not stores:
        raise CxrsalError("cxrsal merge: give the shard stores to merge")
    metas = []
    for s in stores:
        if not (s.path / "store.json").is_file():
            raise CxrsalError(f"{s.path}: not a map store (no store.json); give the --out folders of the shards")
        metas.append(s.meta)
    first = metas[0]
    for s, meta in zip(stores[1:], metas[1:]):
        # every key that says how the maps were made (what a resumed store must share)
        diffs = differences(store_identity_keys(first), store_identity_keys(meta), skip_missing=False)
        if diffs:
            raise CxrsalError(f"{s.path}: another job than {stores[0].path}: {describe(diffs, theirs='here')}; merge "
                              "the shards of one `cxrsal saliency` run")
    methods = sorted({m for s in stores for m in s.methods()})
    params = {}
    for m in methods:
        for s in stores:
            if not (s.path / m / "params.json").is_file():
                continue
            p = method_identity(s.params(m))
            if params.setdefault(m, (p, s))[0] != p:
                raise CxrsalError(f"{s.path}: method {m} was computed with other parameters than in "
                                  f"{params[m][1].path}; merge the shards of one run")
    ids = first["image_ids"]
    where = {}
    for m in methods:
        holders = {i: [] for i in ids}
        for s in stores:
            for i in (s.ids(m) if (s.path / m).is_dir() else ()):
                if i not in holders:
                    raise CxrsalError(f"{s.file(m, i)}: image {i} is not one of the run's images")
                if not whole_map(s.file(m, i)):
                    raise CxrsalError(f"{s.file(m, i)}: not a whole map file; resume that shard (`cxrsal saliency` "
                                      "with its --shard-index) to compute it again, then merge")
                holders[i].append(s)
        missing = [i for i, h in holders.items() if not h]
        twice = [i for i, h in holders.items() if len(h) > 1]
        if missing:
            raise CxrsalError(f"method {m}: {len(missing)} of {len(ids)} maps are in no shard (first: image "
                              f"{missing[0]}); run the missing shards (or resume them) before merging")
        if twice:
            raise CxrsalError(f"method {m}: image {twice[0]} is in {len(holders[twice[0]])} shards "
                              f"({', '.join(str(s.path) for s in holders[twice[0]])}); each map must come from one")
        where[m] = holders
    out = MapStore(out)
    if out.path.resolve() in {s.path.resolve() for s in stores}:
        raise CxrsalError(f"--out {out.path}: is one of the shards; merge into a new folder")
    out.init(first)
    copied = {}
    for m in methods:
        source = params[m][1]
        out.init_method(m, source.params(m))
        copied[m] = 0
        for i, (s,) in where[m].items():
            if out.has(m, i):
                continue
            with atomic_path(out.file(m, i)) as tmp:
                shutil.copyfile(s.file(m, i), tmp)
            copied[m] += 1
        log(f"{m}: {len(ids)} maps ({copied[m]} copied now) from {len(stores)} shards")
    remove_stale_tmp(out.path, recursive=True)
    model = Path(first.get("model", ""))
    if (model / "state.json").is_file():
        from .store import remember

        remember(model, out.path)   # randomize and compare reuse the merged maps
    atomic_write_text(out.path / "merged.json", json.dumps({"shards": [str(s.path.resolve()) for s in stores]},
                                                           indent=2) + "\n")
    return copied
