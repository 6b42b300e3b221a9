"""Seconds for image-level bootstrap intervals: vectorized replicates vs a Python loop (one run).

    python benchmarks/bootstrap.py [--methods 8] [--images 600] [--replicates 1000] [--repeats 3]

Mean interval of every method at once (per-image metric values, 10% missing in one method),
pointwise AP and ROC AUC intervals of one method; each the best of --repeats runs. Target: the
mean intervals of 8 methods x 600 images x 1000 replicates in under 2 s.
"""

import argparse
import sys
import time

import numpy as np


def best_of(repeats, f):
    """(result, best seconds) over `repeats` runs."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return out, min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", type=int, default=8)
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from cxrsal.metrics import bootstrap_ap_ci, bootstrap_auc_ci, bootstrap_indices, bootstrap_mean_ci

    rng = np.random.default_rng(0)
    m, n, r = args.methods, args.images, args.replicates
    values = rng.random((m, n))
    values[0, rng.random(n) < 0.1] = np.nan
    labels = rng.random(n) < 0.3
    scores = np.round(rng.random(n) + labels * 0.5, 2)              # a classifier with ties
    hits = labels & (rng.random(n) < 0.6)

    (low, high), t_mean = best_of(args.repeats, lambda: bootstrap_mean_ci(values, replicates=r, seed=0))

    def slow_mean():
        idx = bootstrap_indices(n, replicates=r, seed=0)
        stats = np.array([[np.nanmean(v[row]) for v in values] for row in idx])
        return np.nanpercentile(stats, [2.5, 97.5], axis=0)

    ref, t_slow = best_of(1, slow_mean)
    diff = max(np.abs(low - ref[0]).max(), np.abs(high - ref[1]).max())
    _, t_ap = best_of(args.repeats, lambda: bootstrap_ap_ci(labels, scores, hits, replicates=r, seed=0))
    _, t_auc = best_of(args.repeats, lambda: bootstrap_auc_ci(labels, scores, replicates=r, seed=0))

    print(f"{m} methods x {n} images x {r} replicates; max |difference| to the loop: {diff:.1e}")
    print(f"{'interval':<40}{'seconds':>10}")
    print(f"{'mean, all methods (vectorized)':<40}{t_mean:>10.4f}")
    print(f"{'mean, all methods (Python loop, 1 run)':<40}{t_slow:>10.4f}")
    print(f"{'pointwise AP, one method':<40}{t_ap:>10.4f}")
    print(f"{'ROC AUC, one method':<40}{t_auc:>10.4f}")
    print(f"loop / vectorized: {t_slow / t_mean:.0f}x")
    ok = t_mean < 2.0
    print(f"target < 2 s: {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
