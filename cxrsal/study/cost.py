"""What a study costs, in model evaluations (one forward pass and one input gradient of one image):
the one count `cxrsal study --plan` prints and `benchmarks/workload.py` measures.

A map of method m costs its registered `evaluations(params)` (grad 1, sg n, ig s, sig n x s, gcam 1,
gbp 1, ggcam 2, xrai 2 x s for its two baselines), with the parameters the job's settings give it.
A job's count: images x the sum over its methods, times the model states it maps (cascading
randomization: one per step, the trained step's maps copied from the maps already computed),
times sMPRT's noisy copies. Training is counted apart, as images x epochs.

The throughput a projection uses: `--throughput N` evaluations/s, else the last figure
`benchmarks/workload.py` measured for the architecture, input side and device, stored in the
user's cache (`throughput_file()`).
"""

import json
import os
from pathlib import Path

from ..files import atomic_write_text


def per_image(cfg, methods, has_wildcat):
    """Model evaluations of one image's maps of `methods` (as --methods takes them) under `cfg`."""
    from ..saliency import METHODS
    from ..saliency.base import parse_methods

    names = parse_methods(methods, has_wildcat) if methods else []
    return sum(METHODS.get(n).evaluations(METHODS.get(n).resolve(cfg.method_params(n))) for n in names)


def faithfulness_per_image(cfg, methods, has_wildcat):
    """Model evaluations of one image's faithfulness curves, every method of `methods`: ROAD's
    fractions twice (MoRF, LeRF) and deletion's and insertion's steps + 1, each a forward pass,
    counted as a third of an evaluation (forward and input gradient), rounded up."""
    from ..saliency.base import parse_methods

    f = cfg.faithfulness
    forwards = len(parse_methods(methods, has_wildcat)) * (2 * len(f.fractions) + 2 * (f.steps + 1))
    return -(-forwards // 3)


def randomization_steps(arch, all_blocks=False, blocks=()):
    """The randomized states of one cascade: the logits, then each backbone block it randomizes
    (InceptionV3: logits and mixed10 ... mixed1, 11 steps). A user's model (not a registered
    backbone): the logits and the `blocks` its model card lists (its discovered blocks are only
    known once it is loaded)."""
    from ..models.backbones import BACKBONES

    if arch not in BACKBONES:
        return 1 + len(blocks)
    b = BACKBONES.get(arch)
    blocks = [x for x in b.block_order if all_blocks or x not in b.randomization_skips]
    return 1 + len(blocks)


def throughput_file():
    """Where `benchmarks/workload.py` stores its measured throughputs ($XDG_CACHE_HOME or ~/.cache)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "cxrsal" / "throughput.json"


def device_name():
    """The accelerator evaluations run on: the first GPU's name, else "cpu" (no TensorFlow import
    when CUDA_VISIBLE_DEVICES hides every GPU)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        return "cpu"
    try:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "gpu")
    except Exception:       # noqa: BLE001 (no TensorFlow device query: a CPU)
        pass
    return "cpu"


def _key(arch, size, device):
    return f"{arch}@{int(size)}@{device}"


def read_throughputs():
    path = throughput_file()
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def store_throughput(arch, size, device, evaluations_per_second):
    """Record a measured throughput (the latest figure wins)."""
    data = read_throughputs()
    data[_key(arch, size, device)] = float(evaluations_per_second)
    path = throughput_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def measured(arch, size, device):
    return read_throughputs().get(_key(arch, size, device))


def summarize(jobs):
    """{kind: evaluations} in the graph's order of kinds, and [(job, images x epochs)] of training."""
    per_kind, training = {}, []
    for j in jobs:
        if j.evaluations:
            per_kind[j.kind] = per_kind.get(j.kind, 0) + j.evaluations
        if j.training:
            training.append((j, j.training[0] * j.training[1]))
    return per_kind, training


def hours(jobs, throughput=None, device="cpu"):
    """(hours, [(arch@size, evaluations) with no throughput known]): the projected time of the
    jobs' evaluations at `throughput` evaluations/s, else at each job's measured figure."""
    total, unknown = 0.0, {}
    for j in jobs:
        if not j.evaluations:
            continue
        rate = throughput or measured(j.arch, j.size, device)
        if rate:
            total += j.evaluations / rate / 3600
        else:
            k = f"{j.arch} at {j.size} px"
            unknown[k] = unknown.get(k, 0) + j.evaluations
    return total, sorted(unknown.items())
