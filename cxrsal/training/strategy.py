"""tf.distribute strategy: multi-worker with TF_CONFIG, mirrored with >1 GPU, else default
(docs/guides/cluster.md).

Keras 3's `Model.fit` cannot train under `MultiWorkerMirroredStrategy` (keras-team/keras#20585,
open since Keras 3.0: its first batch is reduced with an all-reduce that rejects per-replica
inputs, and its step reduces scalar losses along an axis they do not have). A multi-worker run
therefore trains through `epoch_runner`'s own loop: Keras' `train_step` on each replica (its
optimizer sums the gradients of every replica of every worker), the dataset sharded by batch.
One machine keeps `Model.fit`.
"""

import json
import os

from ..errors import CxrsalError


def _tf_config():
    try:
        config = json.loads(os.environ["TF_CONFIG"])
    except json.JSONDecodeError:
        raise CxrsalError("TF_CONFIG is set but is not valid JSON") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster", {}), dict):
        raise CxrsalError("TF_CONFIG is set but is not a JSON object with a \"cluster\" mapping "
                          "({\"cluster\": {\"worker\": [...]}, \"task\": {...}})")
    return config


def choose_strategy():
    """(strategy, one-line description). Never a module-level global: callers keep it."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        cluster = _tf_config().get("cluster", {})
        workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
        s = tf.distribute.MultiWorkerMirroredStrategy()
        return s, f"MultiWorkerMirroredStrategy ({workers} workers from TF_CONFIG, {s.num_replicas_in_sync} replicas)"
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        s = tf.distribute.MirroredStrategy()
        return s, f"MirroredStrategy ({s.num_replicas_in_sync} GPUs)"
    s = tf.distribute.get_strategy()
    return s, f"default strategy ({'1 GPU' if gpus else 'CPU'})"


def is_multi_worker(strategy):
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def worker_role():
    """(is_chief, name) of this process in TF_CONFIG's cluster: the chief is the `chief` task, or
    worker 0 when the cluster has none (TensorFlow's convention); (True, "") without TF_CONFIG."""
    if not os.environ.get("TF_CONFIG"):
        return True, ""
    cfg = _tf_config()
    task = cfg.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    chief = kind == "chief" or (kind == "worker" and index == 0 and not cfg.get("cluster", {}).get("chief"))
    return chief, f"{kind}-{index}"


def worker_dir(out):
    """The run directory this process writes: `out` for the chief (and a one-machine run), the
    twin `OUT.worker-N` beside it for another worker of a multi-worker run: every worker trains
    the same weights, and two writers of one folder (a shared file system) would collide."""
    from pathlib import Path

    chief, name = worker_role()
    out = Path(out)
    return out if chief else out.with_name(f"{out.name}.{name}")


def sync_states(model, strategy):
    """Every replica's non-trainable float state (BatchNorm's moving statistics) set to the mean
    over all replicas, of all workers. Gradients are summed over replicas, so trainable weights
    stay identical everywhere, but each replica updates its moving statistics from its own batches
    (Keras' `fit` on several GPUs too, which then saves the first GPU's); averaged at each epoch's
    end, every worker checkpoints the same model and the statistics summarize every batch."""
    if strategy.num_replicas_in_sync == 1:
        return
    import tensorflow as tf

    states = [v for v in model.non_trainable_variables if v.dtype in ("float16", "bfloat16", "float32", "float64")]
    if not states:
        return
    # one flat vector, one all-reduce
    local = strategy.run(lambda: tf.concat([tf.reshape(tf.cast(v.value, tf.float32), [-1]) for v in states], 0))
    means = tf.split(strategy.reduce("MEAN", local, axis=None), [int(tf.size(v.value)) for v in states])
    for v, mean in zip(states, means):
        v.assign(tf.cast(tf.reshape(mean, v.shape), v.dtype))


def agree(strategy, values):
    """`values` (a dict of floats) averaged over every replica of every worker: the workers of a
    multi-worker run take their early-stopping and learning-rate decisions from the same numbers
    (validation is computed on each worker; CPUs may round differently). Unchanged otherwise."""
    if not is_multi_worker(strategy):
        return values
    import tensorflow as tf

    keys = sorted(values)
    local = tf.constant([float(values[k]) for k in keys], tf.float64)
    mean = strategy.reduce("MEAN", strategy.run(lambda: tf.identity(local)), axis=None).numpy()
    return {k: float(v) for k, v in zip(keys, mean)}


def epoch_runner(model, strategy, *, batch_size, log=print):
    """A function (dataset, epoch, steps, verbose) -> {metric: float} that trains `model` (compiled
    under `strategy.scope()`) for one epoch: `Model.fit` on one machine; on several workers the
    loop below, where only full batches are used (every replica must step together) and the
    reported metrics are the mean of the replicas' own."""
    with strategy.scope():
        # the optimizer's slots made here, not inside the first trace of the training step: a
        # tf.function that creates variables is traced twice (a slower first epoch; the same
        # weights either way)
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    if not is_multi_worker(strategy):
        def fit(dataset, epoch, steps, verbose):
            hist = model.fit(dataset, epochs=epoch + 1, initial_epoch=epoch, verbose=verbose, shuffle=False,
                             steps_per_epoch=steps)
            return {k: float(v[-1]) for k, v in hist.history.items()}
        return fit

    import tensorflow as tf

    @tf.function
    def step(batch):
        logs = strategy.run(model.train_step, args=(batch,))
        return {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}

    def full(*batch):
        return tf.equal(tf.shape(tf.nest.flatten(batch)[0])[0], batch_size)

    def train_epoch(dataset, epoch, steps, verbose):
        options = tf.data.Options()
        # batches, not files, are split among the workers (the pipeline reads one array file)
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.filter(full).with_options(options)
        if steps:
            dataset = dataset.take(steps)
        model.reset_metrics()
        logs, n = {}, 0
        for batch in strategy.experimental_distribute_dataset(dataset):
            logs = step(batch)
            n += 1
        if not n:
            raise CxrsalError(f"no full batch of {batch_size} images to train on: lower pipeline.batch_size")
        if verbose:
            log(f"epoch {epoch + 1}: {n} steps on {strategy.num_replicas_in_sync} replicas")
        return {k: float(v) for k, v in logs.items()}
    return train_epoch
