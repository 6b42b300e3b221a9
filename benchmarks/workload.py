"""[A]'s map workload scaled by F: model evaluations/s, the forward+gradient bound, and the hours of
[A]'s whole protocol as `cxrsal study configs/study_a.yaml --plan` counts it.

    python benchmarks/workload.py --scale F [--arch inceptionv3] [--size 320] [--replicates 1]
                                  [--batch-size 32|auto] [--jit] [--precision float32|mixed]
                                  [--no-randomization] [--compare-jit]

The count comes from the study's own graph (`cxrsal.study.cost`, the function `--plan` uses):
[A]'s methods with the settings of configs/a_*_inceptionv3.yaml (grad 1, sg 25, ig 10, sig 25 x 10,
gcam 1, xrai 2 x 100, gbp 1, ggcam 2 model evaluations per image), the maps of every positive test
and validation image, GradCAM of every test image, cascading randomization of 100 images over the
architecture's cascade (InceptionV3: 11 steps), the replicate's, the permuted twin's and the other
architecture's maps for the comparisons, on both data sets. Timed here: every method on F x 601
images through cxrsal's own code path (the runner's grouping and XRAI's pipelining) for each of
`--replicates` model copies, plus F x 100 images at every randomization step.

Prints the evaluations/s achieved, the forward+input-gradient bound of the same model at the same
batch (images/s), their ratio, and the hours [A]'s graph of this architecture takes at that rate.
The achieved rate is stored in the user's cache (`cxrsal.study.cost.throughput_file()`) for this
architecture, size and device, where `cxrsal study --plan` reads it. `--compare-jit` times the
gradient methods with and without XLA side by side on the same model.
"""

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import numpy as np  # noqa: E402

STUDY_A = Path(__file__).resolve().parents[1] / "configs" / "study_a.yaml"
A_POSITIVES, A_RAND_IMAGES = 601, 100
METHODS = ("grad", "sg", "ig", "sig", "gcam", "xrai", "gbp", "ggcam")


def study_a_workload(arch):
    """[A]'s graph as `--plan` counts it: the methods' evaluations per image (the RSNA maps'
    settings), the cascade's steps, the mapped model's replicates, the evaluations of the jobs
    run on `arch` (both data sets), and each method's parameters."""
    import tempfile

    from cxrsal.saliency import METHODS as REGISTRY
    from cxrsal.study import load_study
    from cxrsal.study.cost import per_image, randomization_steps
    from cxrsal.study.graph import build_jobs
    from cxrsal.study.layout import Context
    from cxrsal.study.tasks import map_configs

    study = load_study(STUDY_A)
    rsna = study.datasets["rsna"]
    with tempfile.TemporaryDirectory() as out:
        jobs = build_jobs(study, out)
        cfg = map_configs(Context(study, out), "rsna", rsna.experiments.mapped)[0]
    mapped = rsna.models[rsna.experiments.mapped]
    params = {m: REGISTRY.get(m).resolve(cfg.method_params(m)) for m in METHODS}
    # per image: every map the study file asks for (its control maps too: one logit each)
    return {"per_image": per_image(cfg, rsna.experiments.methods, False), "steps": randomization_steps(arch),
            "replicates": mapped.replicates, "total": sum(j.evaluations for j in jobs if j.arch == arch),
            "params": params, "evaluations": {m: REGISTRY.get(m).evaluations(params[m]) for m in METHODS}}


def bound(adapter, size, batch):
    """Forward + input gradient images/s at `batch` (best of two timed passes of 2 batches)."""
    x = np.random.default_rng(1).random((2 * batch, size, size, adapter.input_shape[-1])).astype(np.float32)
    adapter.input_gradients(x[:batch], 1)
    best = 0.0
    for _ in range(2):
        t0 = time.perf_counter()
        adapter.input_gradients(x, 1)
        best = max(best, len(x) / (time.perf_counter() - t0))
    return best


def maps(adapter, images, group, executor, params_of):
    """Every study method on `images` in the runner's groups (`params_of`: each method's
    parameters); returns evaluations done."""
    from cxrsal.saliency import METHODS as REGISTRY
    from cxrsal.saliency import noise_rng

    evals = 0
    for name in METHODS:
        m = REGISTRY.get(name)
        params = params_of[name]
        per = max(group, -(-adapter.batch_size // m.evaluations(params)))
        pending = None
        for start in range(0, len(images), per):
            x = images[start:start + per]
            finish = m.start(adapter, x, np.ones(len(x), np.int32),
                             [noise_rng(0, start + i) for i in range(len(x))], executor, **params)
            if pending:
                pending()
            pending = finish
            evals += m.evaluations(params) * len(x)
        pending()
    return evals


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, required=True, help="F: image counts x F")
    ap.add_argument("--arch", default="inceptionv3")
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--replicates", type=int, default=1, help="model copies timed (the rate does not depend on it)")
    ap.add_argument("--batch-size", default="32")
    ap.add_argument("--group", type=int, default=8, help="saliency.group_size")
    ap.add_argument("--jit", action="store_true")
    ap.add_argument("--precision", default="float32", choices=("float32", "mixed"))
    ap.add_argument("--no-randomization", action="store_true")
    ap.add_argument("--compare-jit", action="store_true")
    args = ap.parse_args()

    from cxrsal.console import quiet_native_logs

    quiet_native_logs()      # TensorFlow's C++ log lines stay off the output
    import keras

    from cxrsal.experiments.randomization import apply_weights, step_weights, steps_of
    from cxrsal.models import backbone_blocks, build_model
    from cxrsal.saliency import ModelAdapter
    from cxrsal.study.cost import device_name, store_throughput

    a = study_a_workload(args.arch)
    batch = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    n_maps = max(1, round(A_POSITIVES * args.scale))
    n_rand = 0 if args.no_randomization else max(1, round(A_RAND_IMAGES * args.scale))
    print(f"{args.arch} at {args.size} px, F = {args.scale:g}: {n_maps} images x {args.replicates} model "
          f"cop{'ies' if args.replicates > 1 else 'y'} of maps"
          + (f", {n_rand} images x {a['steps']} steps of randomization" if n_rand else "")
          + f"; {a['per_image']} evaluations per image ({', '.join(f'{k} {v}' for k, v in a['evaluations'].items())})")
    print(f"[A]'s graph (configs/study_a.yaml, both data sets) runs {a['total'] / 1e6:.2f} million evaluations on "
          f"{args.arch} ({a['replicates']} replicates mapped, a cascade of {a['steps']} steps)")

    keras.utils.set_random_seed(0)
    model = build_model(args.arch, "classification", (args.size, args.size, 1))
    blocks = backbone_blocks(model, args.arch)
    steps = steps_of(blocks, order="top-down", all_blocks=False, arch=args.arch)
    assert len(steps) == a["steps"], (len(steps), a["steps"])       # the cascade --plan counts
    trained = [np.array(w) for w in model.get_weights()]
    work = keras.models.clone_model(model)
    work.set_weights(trained)
    adapter = ModelAdapter(work, batch_size=batch, jit_compile=args.jit, precision=args.precision, log=print)
    rate = bound(adapter, args.size, adapter.batch_size)
    print(f"bound: forward+gradient {rate:.1f} images/s at batch {adapter.batch_size}"
          + (" (XLA)" if args.jit else "") + (" (mixed precision)" if args.precision == "mixed" else ""))

    rng = np.random.default_rng(0)
    evals, t0 = 0, time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as executor:
        for r in range(args.replicates):
            images = adapter.lift(rng.random((n_maps, args.size, args.size, 1)).astype(np.float32))
            evals += maps(adapter, images, args.group, executor, a["params"])
            images = adapter.lift(rng.random((n_rand, args.size, args.size, 1)).astype(np.float32))
            for name, randomized in steps if n_rand else ():
                apply_weights(adapter.model, trained, step_weights(model, blocks, randomized, init="truncated-normal",
                                                                   sigma=0.01, seed=r))
                evals += maps(adapter, images, args.group, executor, a["params"])
            apply_weights(adapter.model, trained, {})
            print(f"copy {r + 1}: {evals} evaluations in {time.perf_counter() - t0:.0f} s", flush=True)
    seconds = time.perf_counter() - t0
    achieved = evals / seconds
    device = device_name()
    print(f"\nachieved: {achieved:.1f} model evaluations/s ({evals} in {seconds:.0f} s) on {device}")
    print(f"bound:    {rate:.1f} evaluations/s (forward+gradient, same model and batch)")
    print(f"ratio achieved/bound: {achieved / rate:.2f}")
    print(f"projected for [A]'s graph on {args.arch} ({a['total'] / 1e6:.2f} M evaluations): "
          f"{a['total'] / achieved / 3600:.2f} h")
    if args.jit or args.precision != "float32":
        print("not stored for `cxrsal study --plan` (the study runs float32 without XLA unless its settings say)")
    else:
        print(f"stored for `cxrsal study --plan`: {store_throughput(args.arch, args.size, device, achieved)}")

    if args.compare_jit:
        x = adapter.lift(rng.random((2 * adapter.batch_size, args.size, args.size, 1)).astype(np.float32))
        for jit in (False, True):
            m = ModelAdapter(model, batch_size=adapter.batch_size, jit_compile=jit, precision=args.precision)
            m.input_gradients(x[:adapter.batch_size], 1)
            t0 = time.perf_counter()
            m.input_gradients(x, 1)
            m.input_gradients(x, 1)
            print(f"input gradients, jit_compile={jit!s:<5}: {2 * len(x) / (time.perf_counter() - t0):.1f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
