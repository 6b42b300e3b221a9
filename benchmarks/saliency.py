"""Maps/s per method: cxrsal vs the PAIR library used as its README shows, and the bound.

    python benchmarks/saliency.py [--arch densenet121] [--size 224] [--images 2] [--methods ...]

Same model (weights=None, fixed seed) and images for all; methods of one evaluation per map
run on a full best-size batch of copies of the images (as the runner groups them), the others
on `--images` images. The bound is (model evaluations per
map) / (forward + input-gradient images/s at the best batch size). Targets: cxrsal >=
2x PAIR for sg, ig, sig and xrai; within 1.3x of the bound for every gradient method; XRAI
<= 1.1x its own IG time (segmentation hidden behind the gradients).
"""

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

# run as a script, this file's folder comes first on sys.path and its name would shadow PAIR's
# `saliency` package
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import numpy as np  # noqa: E402

EVALS = {"grad": 1, "sg": 25, "ig": 25, "sig": 625, "gcam": 1, "xrai": 200, "gbp": 1, "ggcam": 2}
GRADIENT_METHODS = ("grad", "sg", "ig", "sig", "gcam", "gbp", "ggcam")


def pair_readme(model, images, method):
    """PAIR's core API as its README / Examples_core notebook use it (eager model call,
    SmoothGrad one sample at a time, IG and XRAI with batch_size=20)."""
    import saliency.core as saliency
    import tensorflow as tf

    from cxrsal.models import feature_model

    net = feature_model(model)

    def call_model_function(batch, call_model_args=None, expected_keys=None):
        batch = tf.convert_to_tensor(batch)
        with tf.GradientTape() as tape:
            if expected_keys == [saliency.base.INPUT_OUTPUT_GRADIENTS]:
                tape.watch(batch)
                _, output = net(batch)
                return {saliency.base.INPUT_OUTPUT_GRADIENTS: np.array(tape.gradient(output[:, 0], batch))}
            conv, output = net(batch)
            return {saliency.base.CONVOLUTION_LAYER_VALUES: np.array(conv),
                    saliency.base.CONVOLUTION_OUTPUT_GRADIENTS: np.array(tape.gradient(output[:, 0], conv))}

    maps = []
    for im in images:
        base = np.zeros_like(im)
        if method == "grad":
            maps.append(saliency.GradientSaliency().GetMask(im, call_model_function, {}))
        elif method == "sg":
            maps.append(saliency.GradientSaliency().GetSmoothedMask(im, call_model_function, {}))
        elif method == "ig":
            maps.append(saliency.IntegratedGradients().GetMask(im, call_model_function, {}, x_steps=25,
                                                               x_baseline=base, batch_size=20))
        elif method == "sig":
            maps.append(saliency.IntegratedGradients().GetSmoothedMask(im, call_model_function, {}, x_steps=25,
                                                                       x_baseline=base, batch_size=20))
        elif method == "gcam":
            maps.append(saliency.GradCam().GetMask(im, call_model_function, {}))
        elif method == "xrai":
            maps.append(saliency.XRAI().GetMask(im, call_model_function, {}, batch_size=20))
    return maps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="densenet121")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--group", type=int, default=8,
                    help="sg and ig run on this many images, as the runner groups them (saliency.group_size); "
                         "PAIR, one image at a time, on --images")
    ap.add_argument("--methods", default="grad,sg,ig,sig,gcam,xrai,gbp,ggcam")
    ap.add_argument("--batch-sizes", default="1,8,16,32,64")
    ap.add_argument("--xrai-images", type=int, default=4,
                    help="XRAI runs in groups of one image, pipelined as the runner does: only the last "
                         "image's region selection is not hidden behind gradients")
    args = ap.parse_args()

    import keras

    from cxrsal.models import build_model
    from cxrsal.saliency import METHODS, ModelAdapter, noise_rng
    from cxrsal.saliency.integrated import integrated_gradients

    keras.utils.set_random_seed(0)
    model = build_model(args.arch, "classification", (args.size, args.size, 1))
    images = np.random.default_rng(0).random((args.images, args.size, args.size, 1)).astype(np.float32)

    # bound: forward + input gradient at the best batch size
    best_rate, best_bs = 0.0, 1
    for bs in map(int, args.batch_sizes.split(",")):
        adapter = ModelAdapter(model, batch_size=bs)
        x = adapter.lift(np.repeat(images, max(1, (2 * bs) // len(images) + 1), axis=0)[: max(2 * bs, 8)])
        adapter.input_gradients(x[:bs], 1)              # trace
        t0 = time.perf_counter()
        adapter.input_gradients(x, 1)
        rate = len(x) / (time.perf_counter() - t0)
        print(f"forward+gradient at batch {bs:>3}: {rate:7.1f} images/s")
        if rate > best_rate:
            best_rate, best_bs = rate, bs
    adapter = ModelAdapter(model, batch_size=best_bs)
    grey, images = images, adapter.lift(images)    # cxrsal's default: gradients per input channel, as [A]
    cls = np.ones(len(images), np.int32)
    rngs = lambda: [noise_rng(0, i) for i in range(len(images))]
    print(f"best batch {best_bs}: {best_rate:.1f} images/s; {args.arch} at {args.size} px, {args.images} images\n")

    rows, ok = [], True
    for name in args.methods.split(","):
        m = METHODS.get(name)
        params = m.resolve({})
        cheap = EVALS[name] <= 2
        if cheap:
            batch = np.resize(images, (best_bs, *images.shape[1:]))
        elif name in ("sg", "ig"):
            batch = np.resize(images, (args.group, *images.shape[1:]))
        else:
            batch = images
        m.compute(adapter, images[:1], cls[:1], rngs()[:1], **{**params, **({"steps": 2} if name == "xrai" else {})})
        if name == "xrai":
            # the runner's pipelining: each image's region selection overlaps the next one's gradients
            xi = np.resize(images, (args.xrai_images, *images.shape[1:]))
            one = np.ones(1, np.int32)
            with ThreadPoolExecutor(1) as ex:
                t0 = time.perf_counter()
                pending = None
                for i in range(len(xi)):
                    f = m.start(adapter, xi[i:i + 1], one, [noise_rng(0, i)], ex, **params)
                    if pending:
                        pending()
                    pending = f
                pending()
                t_cx = time.perf_counter() - t0
            t0 = time.perf_counter()
            for i in range(len(xi)):
                x1 = xi[i:i + 1]
                integrated_gradients(adapter, x1, one, np.full_like(x1, x1.min()), params["steps"])
                integrated_gradients(adapter, x1, one, np.full_like(x1, x1.max()), params["steps"])
            t_ig = time.perf_counter() - t0
        else:
            bcls = np.ones(len(batch), np.int32)
            t0 = time.perf_counter()
            m.compute(adapter, batch, bcls, [noise_rng(0, i) for i in range(len(batch))], **params)
            t_cx = time.perf_counter() - t0
        cx = (len(batch) if name != "xrai" else args.xrai_images) / t_cx
        pair_rate = None
        if name in ("grad", "sg", "ig", "sig", "gcam", "xrai"):
            n_pair = min(4, len(batch)) if cheap else (len(images) if name not in ("sig", "xrai") else 1)
            n_pair = min(n_pair, len(batch))
            pair_images = batch[:n_pair]
            pair_readme(model, grey[:1], "grad")        # warm-up (PAIR's README: the model's own input)
            t0 = time.perf_counter()
            pair_readme(model, pair_images[..., :1], name)
            pair_rate = n_pair / (time.perf_counter() - t0)
        bound = best_rate / EVALS[name]
        rows.append((name, cx, pair_rate, bound))
        verdicts = []
        if name in ("sg", "ig", "sig", "xrai"):
            verdicts.append(f"vs PAIR {cx / pair_rate:.1f}x {'PASS' if cx >= 2 * pair_rate else 'FAIL'}")
            ok &= cx >= 2 * pair_rate
        if name in GRADIENT_METHODS:
            verdicts.append(f"bound/cxrsal {bound / cx:.2f} {'PASS' if bound / cx <= 1.3 else 'FAIL'}")
            ok &= bound / cx <= 1.3
        if name == "xrai":
            verdicts.append(f"XRAI/IG time {t_cx / t_ig:.2f} {'PASS' if t_cx / t_ig <= 1.1 else 'FAIL'}")
            ok &= t_cx / t_ig <= 1.1
        print(f"{name:<6} cxrsal {cx:8.2f} maps/s  PAIR {pair_rate if pair_rate else float('nan'):8.2f}  "
              f"bound {bound:8.2f}   " + "; ".join(verdicts), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
