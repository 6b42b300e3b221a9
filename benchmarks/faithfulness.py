"""Faithfulness curves through DenseNet121: throughput against the forward-only bound (one run).

    python benchmarks/faithfulness.py [--size 224] [--images 4] [--batch-size 16] [--threads 2]

DenseNet121 (weights=None, one logit, sigmoid in a tf.function) on synthetic grey images
replicated to 3 channels and smooth maps with noise. Printed side by side:
(a) the forward-only bound: evaluations/s of the model at the batch size;
(b) deletion and insertion evaluations/s through `faithfulness_curves` (no ROAD), and b / a;
(c) ROAD: the time spent imputing (`road_batch`, its sparse solves on one thread and on a pool
    of --threads) against the forward passes of its inputs;
(d) every curve (ROAD, deletion, insertion) batched against a per-image loop with one predict
    call per input.
Goals: b / a >= 0.7; imputation time on the pool <= forward time. (d) is reported, not judged: on
a CPU a large model runs one image about as fast per image as a batch, so batching gains most on
small inputs and accelerators.
"""

import argparse
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import ndimage


def synthetic(n, size, seed=0):
    """Grey images in [0, 1] replicated to [n, size, size, 3] float32, and maps [n, size, size]."""
    rng = np.random.default_rng(seed)
    grey = np.stack([ndimage.gaussian_filter(rng.random((size, size)), size / 32) for _ in range(n)])
    grey = (grey - grey.min(axis=(1, 2), keepdims=True)) / np.ptp(grey, axis=(1, 2), keepdims=True)
    images = np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)
    maps = np.stack([ndimage.gaussian_filter(rng.random((size, size)), size / 16) for _ in range(n)])
    maps = maps + 0.02 * rng.random((n, size, size))
    return images, maps


def timed(f, *args, **kwargs):
    t0 = time.perf_counter()
    out = f(*args, **kwargs)
    return out, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="threads of ROAD's sparse solves in (c)")
    args = ap.parse_args()

    import keras
    import tensorflow as tf

    from cxrsal.metrics import faithfulness as fm

    keras.utils.set_random_seed(0)
    model = keras.applications.DenseNet121(weights=None, input_shape=(args.size, args.size, 3), classes=1,
                                           classifier_activation=None)
    forward = tf.function(lambda x: tf.sigmoid(model(x, training=False))[:, 0],
                          input_signature=[tf.TensorSpec([None, args.size, args.size, 3], tf.float32)])

    def predict(batch):
        return forward(batch).numpy()

    def predict_all(inputs):
        return np.concatenate([predict(inputs[i:i + args.batch_size]) for i in range(0, len(inputs), args.batch_size)])

    images, maps = synthetic(args.images, args.size)
    bs, n = args.batch_size, args.images
    predict(images[:1])                                      # trace and warm up
    predict(np.repeat(images[:1], bs, axis=0))

    def rng_for(i):
        return np.random.default_rng([0, i])

    # (a) the forward-only bound on as many inputs as (b) evaluates
    n_di = n * 2 * (args.steps + 1)
    _, t_fwd = timed(predict_all, np.resize(images, (n_di,) + images.shape[1:]))
    bound = n_di / t_fwd

    # (b) deletion and insertion through faithfulness_curves
    _, t_di = timed(fm.faithfulness_curves, predict, images, maps, channels=False, rng_for=rng_for, fractions=(),
                    steps=args.steps, batch_size=bs)
    di_rate = n_di / t_di

    # (c) ROAD: imputation (one thread, then a pool) against the forward passes of its inputs
    def impute_all(executor):
        out = []
        for i in range(n):
            order = fm.relevance_order(maps[i], channels=False)
            out += fm.road_batch(images[i], order, rng=rng_for(i), executor=executor)
        return np.concatenate(out)

    road_inputs, t_imp = timed(impute_all, None)
    with ThreadPoolExecutor(args.threads) as executor:
        pooled, t_pool = timed(impute_all, executor)
    assert np.array_equal(pooled, road_inputs), "the pool changed the images"
    _, t_road_fwd = timed(predict_all, road_inputs)

    # (d) every curve, batched against one predict call per input
    batched, t_batched = timed(fm.faithfulness_curves, predict, images, maps, channels=False, rng_for=rng_for,
                               steps=args.steps, batch_size=bs)

    def loop():
        out = []
        for i in range(n):
            order = fm.relevance_order(maps[i], channels=False)
            morf, lerf = fm.road_batch(images[i], order, rng=rng_for(i))
            deletion = fm.deletion_batch(images[i], order, steps=args.steps)
            blurred = fm.gaussian_blur(images[i], sd=args.size / 16)
            insertion = fm.insertion_batch(images[i], blurred, order, steps=args.steps)
            out.append(np.array([predict(x[None])[0] for x in np.concatenate([morf, lerf, deletion, insertion])]))
        return out

    looped, t_loop = timed(loop)
    n_all = len(looped[0]) * n
    diff = max(float(np.abs(np.concatenate([c.morf, c.lerf, c.deletion, c.insertion]) - ref).max())
               for c, ref in zip(batched, looped))

    print(f"DenseNet121 at {args.size}x{args.size}, {n} images, batch size {bs}, {len(fm.ROAD_FRACTIONS)} ROAD "
          f"fractions, {args.steps} deletion/insertion steps")
    print(f"{'':<52}{'evals':>7}{'s':>8}{'evals/s':>9}")
    print(f"{'(a) forward only (the bound)':<52}{n_di:>7}{t_fwd:>8.2f}{bound:>9.1f}")
    print(f"{'(b) deletion + insertion via faithfulness_curves':<52}{n_di:>7}{t_di:>8.2f}{di_rate:>9.1f}")
    print(f"{'(c) ROAD forward passes of the imputed inputs':<52}{len(road_inputs):>7}{t_road_fwd:>8.2f}"
          f"{len(road_inputs) / t_road_fwd:>9.1f}")
    print(f"{'    ROAD imputation (road_batch), 1 thread':<52}{len(road_inputs):>7}{t_imp:>8.2f}"
          f"{len(road_inputs) / t_imp:>9.1f}")
    print(f"{f'    ROAD imputation (road_batch), {args.threads} threads':<52}{len(road_inputs):>7}{t_pool:>8.2f}"
          f"{len(road_inputs) / t_pool:>9.1f}")
    print(f"{'(d) every curve, batched':<52}{n_all:>7}{t_batched:>8.2f}{n_all / t_batched:>9.1f}")
    print(f"{'    every curve, one predict call per input':<52}{n_all:>7}{t_loop:>8.2f}{n_all / t_loop:>9.1f}")
    print(f"max |batched - per-input| probability: {diff:.1e}")
    goals = [("(b) deletion/insertion rate / forward bound", di_rate / bound, di_rate / bound >= 0.7, ">= 0.7"),
             ("(c) imputation time / ROAD forward time, 1 thread", t_imp / t_road_fwd, None, "<= 1"),
             (f"(c) imputation time / ROAD forward time, {args.threads} threads", t_pool / t_road_fwd,
              t_pool <= t_road_fwd, "<= 1"),
             ("(d) speed-up of the batched path over the loop", t_loop / t_batched, None, "")]
    for name, value, ok, goal in goals:
        verdict = "" if ok is None else f"  (goal {goal}) -> {'PASS' if ok else 'FAIL'}"
        print(f"{name:<52}{value:>7.2f}{verdict}")
    return 0 if all(ok is not False for _, _, ok, _ in goals) and math.isfinite(diff) else 1


if __name__ == "__main__":
    sys.exit(main())
