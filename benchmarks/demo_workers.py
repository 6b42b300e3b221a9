"""Wall time of `cxrsal demo` on one worker process vs several, and the same tables from both.

    python benchmarks/demo_workers.py [--size full] [--jobs 2] [--out DIR]

Runs the demo twice into fresh folders, first with `--jobs 1` (the stages one after another, as
the demo ran before it had workers; one TensorFlow thread) then with `--jobs N` (default: the
CPUs), side by side on this machine, and prints both wall times, their ratio, and whether every
stats table of the two reports is equal (it must be: each worker runs TensorFlow on one thread).
Also prints this machine's DenseNet121 forward + input gradient speed at 224 px, the yardstick
that makes timings of two machines comparable (the slowest machine of the class: 4 images/s).
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLES = ("table1.csv", "table2.csv", "tests.csv", "posthoc.csv", "findings.csv", "sanity.csv", "localization.csv")


def densenet_images_per_second(seconds=15.0):
    import numpy as np
    import tensorflow as tf
    import keras

    model = keras.applications.DenseNet121(weights=None, input_shape=(224, 224, 3), classes=1,
                                           classifier_activation=None)
    x = tf.constant(np.random.default_rng(0).random((8, 224, 224, 3), np.float32))

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(model(x, training=False))
        return tape.gradient(y, x)

    gradient(x)
    t, n = time.time(), 0
    while time.time() - t < seconds:
        gradient(x).numpy()
        n += len(x)
    return n / (time.time() - t)


def demo(out, size, jobs):
    t = time.time()
    r = subprocess.run([sys.executable, "-m", "cxrsal.cli", "demo", "--out", str(out), "--size", size, "--jobs", str(jobs),
                        "--quiet"], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"cxrsal demo --jobs {jobs} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return time.time() - t


def main():
    from cxrsal.console import quiet_native_logs
    from cxrsal.workers import default_workers

    quiet_native_logs()

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="full", choices=("tiny", "full", "large"))
    ap.add_argument("--jobs", type=int, default=default_workers())
    ap.add_argument("--out", type=Path, default=None, help="keep the two demos here (default: a temporary folder)")
    args = ap.parse_args()
    if args.jobs < 2:
        ap.error("--jobs: at least 2 (it is compared with --jobs 1)")

    import pandas as pd

    root = args.out or Path(tempfile.mkdtemp(prefix="cxrsal-bench-"))
    folders = {n: root / f"demo-jobs{n}" for n in (1, args.jobs)}
    for f in folders.values():
        shutil.rmtree(f, ignore_errors=True)
    seconds = {n: demo(f, args.size, n) for n, f in folders.items()}
    same = []
    for name in TABLES:
        a, b = (pd.read_csv(f / "report" / "stats" / name, keep_default_na=False) for f in folders.values())
        # the data set's name is its manifest's hash, and the manifest names its own folder
        a, b = (t.drop(columns=["dataset", "group"], errors="ignore") for t in (a, b))
        if "finding" in a.columns:
            a, b = (t.assign(finding=t.finding.str.replace(r"^[0-9a-f]{12}/", "", regex=True)) for t in (a, b))
        same.append(a.equals(b))
    print(f"cxrsal demo --size {args.size}: --jobs 1 {seconds[1] / 60:.2f} min, --jobs {args.jobs} "
          f"{seconds[args.jobs] / 60:.2f} min: {seconds[1] / seconds[args.jobs]:.2f}x")
    print(f"stats tables equal: {sum(same)} of {len(TABLES)}")
    print(f"this machine: DenseNet121 forward + input gradient {densenet_images_per_second():.1f} images/s at 224 px")
    if not args.out:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
