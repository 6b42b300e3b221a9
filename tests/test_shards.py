"""Shards from the scheduler's environment and the merge of shard stores (no TensorFlow: the
stores are written here; the merge of real shards against a one-machine run is in
test_saliency_runner.py)."""

import json

import numpy as np
import pytest

from cxrsal.errors import CxrsalError
from cxrsal.saliency.shards import merge_stores, shard_from_environment
from cxrsal.saliency.store import MapStore


def test_slurm_array_job():
    # sbatch --array=3-6: tasks 3..6, this one 5 -> shard 2 of 4
    env = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert shard_from_environment(env=env) == (2, 4)
    assert shard_from_environment(4, env=env) == (2, 4)
    with pytest.raises(CxrsalError, match="--num-shards 3: the SLURM array job has 4 tasks"):
        shard_from_environment(3, env=env)
    with pytest.raises(CxrsalError, match="SLURM_ARRAY_TASK_COUNT"):
        shard_from_environment(env={"SLURM_ARRAY_TASK_ID": "1"})


def test_kubernetes_indexed_job_needs_its_completions():
    env = {"JOB_COMPLETION_INDEX": "2"}
    assert shard_from_environment(5, env=env) == (2, 5)
    assert shard_from_environment(env={**env, "CXRSAL_NUM_SHARDS": "3"}) == (2, 3)
    with pytest.raises(CxrsalError, match="pass --num-shards K"):
        shard_from_environment(env=env)
    with pytest.raises(CxrsalError, match="index 2, outside 0..1"):
        shard_from_environment(2, env=env)


def test_tf_config_counts_chief_and_workers():
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"], "ps": ["d:1"]}
    env = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})}
    assert shard_from_environment(env=env) == (2, 3)       # chief 0, worker 0 -> 1, worker 1 -> 2
    env = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "ps", "index": 0}})}
    with pytest.raises(CxrsalError, match="does not name this task"):
        shard_from_environment(env=env)


def test_no_scheduler_says_what_to_give():
    with pytest.raises(CxrsalError, match="no scheduler found"):
        shard_from_environment(env={})
    with pytest.raises(CxrsalError, match="is not an integer"):
        shard_from_environment(env={"JOB_COMPLETION_INDEX": "x", "CXRSAL_NUM_SHARDS": "2"})


IDS = [f"img{i}" for i in range(7)]
META = {"model": "/nowhere/model", "checkpoint": "best", "weights": "ab" * 32, "data": "/nowhere/data",
        "split": "test", "image_ids": IDS, "input_size": 8, "input_channels": 3}


def shard_stores(tmp_path, k=3, meta=META, params=None):
    """k shard stores of one job: image i's maps in shard (i // 2) % k (groups of two)."""
    rng = np.random.default_rng(0)
    stores = []
    for s in range(k):
        store = MapStore(tmp_path / f"shard{s}")
        store.init(meta)
        for method in ("grad", "gcam"):
            store.init_method(method, params or {"method": method, "params": {}, "target": "positive", "seed": 0,
                                                 "versions": {"numpy": f"shard {s}"}})
        stores.append(store)
    for n, i in enumerate(IDS):
        for method in ("grad", "gcam"):
            m = rng.random((8, 8, 3) if method == "grad" else (8, 8)).astype(np.float32)
            stores[(n // 2) % k].write(method, i, raw=m, processed=m.sum(-1) / 3 if m.ndim == 3 else m,
                                       constant=False, logit=0.5, label=1, index=n)
    return stores


def test_merge_copies_every_map_once_byte_for_byte(tmp_path):
    stores = shard_stores(tmp_path)
    copied = merge_stores([s.path for s in stores], tmp_path / "merged", log=lambda *_: None)
    assert copied == {"grad": 7, "gcam": 7}
    merged = MapStore(tmp_path / "merged")
    assert merged.meta == stores[0].meta and merged.methods() == ["gcam", "grad"]
    for n, i in enumerate(IDS):
        for method in ("grad", "gcam"):
            source = stores[(n // 2) % 3].file(method, i)
            assert merged.file(method, i).read_bytes() == source.read_bytes()
    assert len(json.loads((tmp_path / "merged" / "merged.json").read_text())["shards"]) == 3
    # a killed merge resumes: only what is missing is copied
    merged.file("grad", "img4").unlink()
    assert merge_stores([s.path for s in stores], tmp_path / "merged", log=lambda *_: None) == {"grad": 1, "gcam": 0}


def test_merge_refuses_what_is_not_one_complete_run(tmp_path):
    stores = shard_stores(tmp_path / "a")
    paths = [s.path for s in stores]
    with pytest.raises(CxrsalError, match=r"method gcam: 2 of 7 maps are in no shard \(first: image img2\)"):
        merge_stores([paths[0], paths[2]], tmp_path / "m1", log=lambda *_: None)
    with pytest.raises(CxrsalError, match="image img0 is in 2 shards"):
        merge_stores([paths[0], paths[0], paths[1], paths[2]], tmp_path / "m2", log=lambda *_: None)
    other = shard_stores(tmp_path / "b", k=1, meta={**META, "weights": "cd" * 32})
    with pytest.raises(CxrsalError, match=r"another job than .*: weights sha256 abababababab... \(here: sha256 cdcdcd"):
        merge_stores([paths[0], other[0].path], tmp_path / "m3", log=lambda *_: None)
    changed = shard_stores(tmp_path / "c", k=1, params={"method": "grad", "params": {"x": 1}, "target": "positive",
                                                        "seed": 0})
    with pytest.raises(CxrsalError, match="other parameters"):
        merge_stores([paths[0], changed[0].path], tmp_path / "m4", log=lambda *_: None)
    with pytest.raises(CxrsalError, match="not a map store"):
        merge_stores([paths[0], tmp_path], tmp_path / "m5", log=lambda *_: None)
    with pytest.raises(CxrsalError, match="is one of the shards"):
        merge_stores(paths, paths[1], log=lambda *_: None)


def test_deploy_files_run_the_shards_and_the_merge(tmp_path):
    """The SLURM script, run as an array task would run it (a stand-in `cxrsal` on PATH records
    its arguments), computes its own shard with --shard-index auto; the Kubernetes manifests keep
    completions, parallelism and CXRSAL_NUM_SHARDS equal and merge the shards' stores."""
    import os
    import subprocess
    from pathlib import Path

    import yaml

    deploy = Path(__file__).resolve().parents[1] / "deploy"
    fake = tmp_path / "bin" / "cxrsal"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'args'}\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}", "SLURM_ARRAY_TASK_ID": "3",
           "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "8"}
    subprocess.run(["bash", deploy / "saliency_array.sbatch", "runs/m", "out/maps", "--methods", "gcam"], env=env,
                   check=True)
    assert (tmp_path / "args").read_text().split() == [
        "saliency", "--model", "runs/m", "--shard-index", "auto", "--quiet", "--out", "out/maps/shard-3",
        "--methods", "gcam"]
    job = yaml.safe_load((deploy / "saliency_indexed_job.yaml").read_text())
    spec = job["spec"]
    container = spec["template"]["spec"]["containers"][0]
    shards = {e["name"]: e["value"] for e in container["env"]}["CXRSAL_NUM_SHARDS"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == int(shards)
    assert "--shard-index auto" in container["args"][0] and "shard-${JOB_COMPLETION_INDEX}" in container["args"][0]
    merge = yaml.safe_load((deploy / "saliency_merge_job.yaml").read_text())
    assert merge["spec"]["template"]["spec"]["containers"][0]["args"][0].startswith("cxrsal merge ")
