"""tf.distribute strategy per SPEC §3: multi-worker with TF_CONFIG, mirrored with >1 GPU, else default."""

import json
import os


def choose_strategy():
    """(strategy, one-line description). Never a module-level global: callers keep it."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        try:
            cluster = json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
        except json.JSONDecodeError:
            from ..errors import CxrsalError

            raise CxrsalError("TF_CONFIG is set but is not valid JSON") from None
        workers = len(cluster.get("worker", []))
        s = tf.distribute.MultiWorkerMirroredStrategy()
        return s, f"MultiWorkerMirroredStrategy ({workers} workers from TF_CONFIG, {s.num_replicas_in_sync} replicas)"
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        s = tf.distribute.MirroredStrategy()
        return s, f"MirroredStrategy ({s.num_replicas_in_sync} GPUs)"
    s = tf.distribute.get_strategy()
    return s, f"default strategy ({'1 GPU' if gpus else 'CPU'})"
