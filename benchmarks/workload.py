"""[A]'s map workload scaled by F: model evaluations/s, the forward+gradient bound, hours at F = 1.

    python benchmarks/workload.py --scale F [--arch inceptionv3] [--size 320] [--replicates 3]
                                  [--batch-size 32|auto] [--jit] [--precision float32|mixed]
                                  [--no-randomization] [--compare-jit]

[A]'s workload per architecture: the 8 study methods (grad 1, sg 25, ig 25, sig 625, gcam 1,
xrai 200, gbp 1, ggcam 2 = 880 model evaluations per image, [A]'s parameters) on its 601
positive test images for each of 3 replicates, plus cascading randomization: 100 images x 12
steps x 3 replicates, the same 880 each. Scaled by F: image counts x F (at least one image),
methods, steps and parameters kept. Images are random (the cost does not depend on them); each
randomization step re-initialises the model's blocks from the top down, as `cxrsal randomize`.

Prints the evaluations/s achieved (every method through cxrsal's own code path, the runner's
grouping and XRAI's pipelining), the forward+input-gradient bound of the same model at the same
batch (images/s), their ratio, and the hours the whole [A] workload of this architecture takes
at F = 1 at that rate (and with a DenseNet121 as [A] had too: run again with --arch densenet121
--replicates 1 and add). `--compare-jit` times the gradient methods with and without XLA
side by side on the same model.
"""

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import numpy as np  # noqa: E402

A_POSITIVES, A_RAND_IMAGES, A_STEPS = 601, 100, 12
METHODS = ("grad", "sg", "ig", "sig", "gcam", "xrai", "gbp", "ggcam")
A_PARAMS = {"sg": {"samples": 25}, "ig": {"steps": 25}, "sig": {"samples": 25, "steps": 25},
            "xrai": {"steps": 100}}


def evaluations_per_image():
    from cxrsal.saliency import METHODS as REGISTRY

    return {m: REGISTRY.get(m).evaluations(REGISTRY.get(m).resolve(A_PARAMS.get(m, {}))) for m in METHODS}


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


def maps(adapter, images, group, executor):
    """Every study method on `images` in the runner's groups; returns evaluations done."""
    from cxrsal.saliency import METHODS as REGISTRY
    from cxrsal.saliency import noise_rng

    evals = 0
    for name in METHODS:
        m = REGISTRY.get(name)
        params = m.resolve(A_PARAMS.get(name, {}))
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
    ap.add_argument("--replicates", type=int, default=3)
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

    batch = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    n_maps = max(1, round(A_POSITIVES * args.scale))
    n_rand = 0 if args.no_randomization else max(1, round(A_RAND_IMAGES * args.scale))
    per_image = evaluations_per_image()
    per = sum(per_image.values())
    total_f1 = args.replicates * (A_POSITIVES + A_RAND_IMAGES * A_STEPS) * per
    print(f"{args.arch} at {args.size} px, F = {args.scale:g}: {n_maps} images x {args.replicates} replicates of maps"
          + (f", {n_rand} images x {A_STEPS} steps x {args.replicates} of randomization" if n_rand else "")
          + f"; {per} evaluations per image ({', '.join(f'{k} {v}' for k, v in per_image.items())})")
    print(f"[A] at F = 1 for this architecture: {total_f1 / 1e6:.2f} million evaluations")

    keras.utils.set_random_seed(0)
    model = build_model(args.arch, "classification", (args.size, args.size, 1))
    blocks = backbone_blocks(model, args.arch)
    steps = steps_of(blocks, order="top-down", all_blocks=False, arch=args.arch)[:A_STEPS]
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
            evals += maps(adapter, images, args.group, executor)
            images = adapter.lift(rng.random((n_rand, args.size, args.size, 1)).astype(np.float32))
            for name, randomized in steps if n_rand else ():
                apply_weights(adapter.model, trained, step_weights(model, blocks, randomized, init="truncated-normal",
                                                                   sigma=0.01, seed=r))
                evals += maps(adapter, images, args.group, executor)
            apply_weights(adapter.model, trained, {})
            print(f"replicate {r + 1}: {evals} evaluations in {time.perf_counter() - t0:.0f} s", flush=True)
    seconds = time.perf_counter() - t0
    achieved = evals / seconds
    print(f"\nachieved: {achieved:.1f} model evaluations/s ({evals} in {seconds:.0f} s)")
    print(f"bound:    {rate:.1f} evaluations/s (forward+gradient, same model and batch)")
    print(f"ratio achieved/bound: {achieved / rate:.2f}")
    print(f"projected for [A]'s workload of this architecture (F = 1, {total_f1 / 1e6:.2f} M evaluations): "
          f"{total_f1 / achieved / 3600:.2f} h")
    print("the goal: all of [A] (3 InceptionV3 replicates and a DenseNet121, about 5.3 M evaluations) in "
          "15 min on one H100, about 5,900 evaluations/s")

    if args.compare_jit:
        x = adapter.lift(rng.random((2 * adapter.batch_size, args.size, args.size, 1)).astype(np.float32))
        for jit in (False, True):
            a = ModelAdapter(model, batch_size=adapter.batch_size, jit_compile=jit, precision=args.precision)
            a.input_gradients(x[:adapter.batch_size], 1)
            t0 = time.perf_counter()
            a.input_gradients(x, 1)
            a.input_gradients(x, 1)
            print(f"input gradients, jit_compile={jit!s:<5}: {2 * len(x) / (time.perf_counter() - t0):.1f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
