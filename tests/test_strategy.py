"""Training on several workers and GPUs (cxrsal.training.strategy): two real `cxrsal train`
processes on localhost joined by TF_CONFIG under MultiWorkerMirroredStrategy end with the same
weights, every one of them; each worker's role and folder; the Slurm script; a baseline refuses
several workers; BatchNorm statistics averaged over the GPUs of one machine."""

import csv
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from cxrsal.training.strategy import worker_dir, worker_role

TIMEOUT_S = 600


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def tf_config(cluster, kind, index):
    return json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})


@pytest.mark.parametrize("cluster,task,chief,name", [
    ({"worker": ["a:1", "b:1"]}, ("worker", 0), True, "worker-0"),
    ({"worker": ["a:1", "b:1"]}, ("worker", 1), False, "worker-1"),
    ({"chief": ["c:1"], "worker": ["a:1"]}, ("chief", 0), True, "chief-0"),
    ({"chief": ["c:1"], "worker": ["a:1"]}, ("worker", 0), False, "worker-0"),
])
def test_worker_role_follows_tensorflow_chief_convention(monkeypatch, tmp_path, cluster, task, chief, name):
    monkeypatch.setenv("TF_CONFIG", tf_config(cluster, *task))
    assert worker_role() == (chief, name)
    assert worker_dir(tmp_path / "m") == (tmp_path / "m" if chief else tmp_path / f"m.{name}")
    monkeypatch.delenv("TF_CONFIG")
    assert worker_role() == (True, "") and worker_dir(tmp_path / "m") == tmp_path / "m"


def _weights(path):
    import keras

    import cxrsal.models.layers  # noqa: F401  (registers the custom layers)

    return [np.asarray(w) for w in keras.saving.load_model(path, compile=False).weights]


def run_workers(tiny_run, out, args, n=2):
    """`cxrsal train ARGS --out OUT` in n processes joined by TF_CONFIG on localhost: their outputs."""
    cluster = {"worker": [f"localhost:{p}" for p in free_ports(n)]}
    procs = []
    for index in range(n):
        env = {**os.environ, "TF_CONFIG": tf_config(cluster, "worker", index)}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "cxrsal.cli", "train", "--data", str(tiny_run), "--out", str(out), *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, text in zip(procs, outputs):
        assert p.returncode == 0, text
    return outputs


def test_two_workers_end_with_the_same_weights(tiny_run, tmp_path):
    out = tmp_path / "m"
    outputs = run_workers(tiny_run, out, ["--arch", "resnet18", "--epochs", "2", "--batch-size", "8",
                                          "--set", "train.lr=1e-3", "--set", "train.patience=5"])
    # 16 training images, global batch 8: 2 batches per epoch, each split 4 + 4 over the two
    # workers' replicas
    for text in outputs:
        assert "MultiWorkerMirroredStrategy (2 workers from TF_CONFIG, 2 replicas)" in text, text
        assert "epoch 1: 2 steps on 2 replicas" in text and "epoch 2: 2 steps on 2 replicas" in text, text
    assert "this worker's copy; the chief writes" in outputs[1]
    twin = tmp_path / "m.worker-1"
    cards = [json.loads((d / "run.json").read_text()) for d in (out, twin)]
    assert [c["replicas"] for c in cards] == [2, 2]
    assert cards[0]["metrics"] == cards[1]["metrics"]
    for name in ("best.keras", "epoch-002.keras"):
        a, b = _weights(out / "checkpoints" / name), _weights(twin / "checkpoints" / name)
        assert len(a) == len(b) == 102
        # trainable weights by the summed gradients, BatchNorm statistics by the epoch-end mean
        for wa, wb in zip(a, b):
            np.testing.assert_array_equal(wa, wb)


def test_two_workers_train_as_one_process_with_their_global_batch(tiny_run, tmp_path):
    """The reference: the same epoch in one process (`Model.fit`, batch 8). Two workers with 4
    images each and summed gradients take the same Adam steps. VGG19 has no BatchNorm, whose batch
    statistics would differ between 4 and 8 images."""
    from cxrsal.config import load_config
    from cxrsal.training.fit import train

    args = ["--arch", "vgg19", "--epochs", "1", "--batch-size", "8", "--set", "train.lr=1e-4"]
    run_workers(tiny_run, tmp_path / "two", args)
    train(load_config(overrides=["model.arch=vgg19", "train.epochs=1", "pipeline.batch_size=8", "train.lr=1e-4"]),
          tiny_run, tmp_path / "one", log=lambda *_: None, verbose=0)
    two, one = _weights(tmp_path / "two" / "checkpoints" / "best.keras"), _weights(tmp_path / "one" / "checkpoints"
                                                                                    / "best.keras")
    diff = np.concatenate([np.abs(a - b).ravel() for a, b in zip(two, one)])
    # sums in another order round differently (measured: at most 2.4e-8); Adam's first steps are
    # about lr * sign(gradient), so a gradient within rounding of 0 may step otherwise: allow
    # one element in 10^4 to, never more than the 2 steps of lr taken
    assert np.quantile(diff, 0.9999) < 1e-6 and diff.max() <= 2 * 1e-4 + 1e-6
    # the reported loss: the mean of the replicas' means is the mean over the global batches
    losses = [float(next(csv.DictReader(open(tmp_path / d / "history.csv")))["loss"]) for d in ("two", "one")]
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


def test_a_baseline_refuses_several_workers_in_one_line(tiny_run, tmp_path):
    """U-Net/RetinaNet validate with Keras' `evaluate`, which Keras 3 cannot run under
    MultiWorkerMirroredStrategy: refused before anything is written, naming the way out."""
    env = {**os.environ, "TF_CONFIG": tf_config({"worker": [f"localhost:{free_ports(1)[0]}"]}, "worker", 0)}
    r = subprocess.run([sys.executable, "-m", "cxrsal.cli", "train-baseline", "unet", "--data", str(tiny_run),
                        "--out", str(tmp_path / "u"), "--epochs", "1"], env=env, capture_output=True, text=True,
                       timeout=TIMEOUT_S)
    assert r.returncode != 0
    lines = [line for line in (r.stdout + r.stderr).splitlines() if "does not train on several workers" in line]
    assert len(lines) == 1 and "unset TF_CONFIG" in lines[0], r.stdout + r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "u").exists()


def test_slurm_script_gives_each_node_its_worker(tmp_path, monkeypatch):
    """deploy/train_multiworker.sbatch, run as SLURM runs it (stand-ins for `srun`, which starts
    the worker once per node, `scontrol`, and `cxrsal`, which records its TF_CONFIG and
    arguments): every node gets the same cluster and its own index; node 0 is the chief."""
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "deploy" / "train_multiworker.sbatch"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_ins = {
        "srun": 'while [ "${1#--}" != "$1" ]; do shift; done\nfor i in 0 1 2; do SLURM_PROCID=$i "$@"; done\n',
        "scontrol": 'printf "gpu-a01\\ngpu-a02\\ngpu-b07\\n"\n',
        "cxrsal": f'echo "$TF_CONFIG" > {tmp_path}/tf_config.$SLURM_PROCID\necho "$@" > {tmp_path}/args.$SLURM_PROCID\n',
    }
    for name, body in stand_ins.items():
        (bin_dir / name).write_text("#!/bin/bash\n" + body)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_NODELIST": "gpu-a[01-02],gpu-b07"}
    env.pop("TF_CONFIG", None)
    subprocess.run(["bash", script, "runs/rsna", "runs/m", "--arch", "inceptionv3", "--batch-size", "64"], env=env,
                   check=True, timeout=60)
    hosts = ["gpu-a01:23456", "gpu-a02:23456", "gpu-b07:23456"]
    for i in range(3):
        cfg = json.loads((tmp_path / f"tf_config.{i}").read_text())
        assert cfg == {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}}
        assert (tmp_path / f"args.{i}").read_text().split() == [
            "train", "--data", "runs/rsna", "--out", "runs/m", "--quiet", "--arch", "inceptionv3", "--batch-size", "64"]
        monkeypatch.setenv("TF_CONFIG", json.dumps(cfg))
        assert worker_role() == (i == 0, f"worker-{i}")


MIRRORED = """
import json, sys
import numpy as np, tensorflow as tf, keras
from cxrsal.training.strategy import epoch_runner, sync_states
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
keras.utils.set_random_seed(0)
x = np.random.default_rng(0).random((32, 8, 8, 1)).astype("float32")
y = (x.mean((1, 2, 3)) > 0.5).astype("float32")
with strategy.scope():
    inp = keras.Input((8, 8, 1))
    h = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inp))
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(h)))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
epoch_runner(model, strategy, batch_size=8, log=print)(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), 0, None, 0)
bn = model.layers[2]
replicas = lambda v: [np.asarray(t).tolist() for t in v.value.values]
before = {"mean": replicas(bn.moving_mean), "var": replicas(bn.moving_variance)}
sync_states(model, strategy)
after = {"mean": replicas(bn.moving_mean), "var": replicas(bn.moving_variance)}
print(json.dumps({"before": before, "after": after}))
"""


def test_batchnorm_statistics_of_several_gpus_are_averaged():
    """MirroredStrategy on two logical CPUs stands in for two GPUs: after Keras' `fit` each replica
    holds moving statistics of its own half batches; `sync_states` sets both to their mean."""
    r = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("mean", "var"):
        first, second = map(np.asarray, result["before"][key])
        assert np.abs(first - second).max() > 1e-5          # the replicas saw different images
        for replica in result["after"][key]:
            np.testing.assert_allclose(replica, (first + second) / 2, rtol=1e-6, atol=1e-7)
