"""Images/s of the cached tf.data pipeline vs decoding the DICOM files every time (same files, one run).

    python benchmarks/data_pipeline.py [--n 200] [--size 320] [--root DIR --dataset rsna]

Target: the cached pipeline is at least 10x faster.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def rate(ds, epochs):
    """Images/s over `epochs` passes, after one untimed pass (graph tracing, file cache warm-up)."""
    for _ in ds:
        pass
    n, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in ds:
            n += int(batch[0].shape[0])
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="synthetic images (ignored with --root)")
    ap.add_argument("--root", default=None, help="an existing data set instead of synthetic data")
    ap.add_argument("--dataset", default="rsna")
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import tensorflow as tf

    from cxrsal.config import load_config
    from cxrsal.data.dicom import read_image
    from cxrsal.data.manifest import read_manifest
    from cxrsal.data.pipeline import make_dataset
    from cxrsal.data.prepare import prepare, resize_image
    from cxrsal.data.synth import synth

    work = Path(tempfile.mkdtemp(prefix="cxrsal-bench-"))
    root = Path(args.root) if args.root else work / "data"
    if not args.root:
        t0 = time.perf_counter()
        synth(args.dataset, root, args.n, seed=0, image_size=1024)
        print(f"synth: {args.n} DICOM files at 1024 px in {time.perf_counter() - t0:.1f} s")
    cfg = load_config(options={"data.dataset": args.dataset, "data.root": str(root), "data.size": args.size})
    t0 = time.perf_counter()
    summary = prepare(cfg, work / "run", progress=False, log=lambda *_: None)
    print(f"prepare (decode + cache, {os.cpu_count()} workers): {summary['images']} images "
          f"in {time.perf_counter() - t0:.1f} s")

    rows = [r for r in read_manifest(work / "run") if r["split"] == "train"]
    paths = [str(root / r["path"]) for r in rows]
    labels = np.array([r["label"] for r in rows], np.float32)
    size = args.size

    def decode(path):
        return resize_image(read_image(path.numpy().decode()), size)[..., None]

    def load(path, label):
        image = tf.py_function(decode, [path], tf.float32)
        image.set_shape((size, size, 1))
        return image, label

    decoded = (tf.data.Dataset.from_tensor_slices((paths, labels)).shuffle(len(paths), seed=0)
               .map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(args.batch).prefetch(tf.data.AUTOTUNE))
    cached = make_dataset(work / "run", "train", batch_size=args.batch, with_masks=False)

    r_cached = rate(cached, args.epochs)
    r_decode = rate(decoded, max(1, args.epochs // 3))
    ratio = r_cached / r_decode
    print(f"{'pipeline':<28}{'images/s':>10}")
    print(f"{'cached (cxrsal)':<28}{r_cached:>10.1f}")
    print(f"{'decode DICOM every time':<28}{r_decode:>10.1f}")
    print(f"ratio cached/decode: {ratio:.1f}x (target >= 10x) -> {'PASS' if ratio >= 10 else 'FAIL'}")
    return 0 if ratio >= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
