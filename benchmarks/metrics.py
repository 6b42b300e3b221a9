"""Per-image AUPRC at 1024x1024: cxrsal vs scikit-learn, same values (one run).

    python benchmarks/metrics.py [--size 1024] [--images 10]

Maps as the store keeps them (uint16, 65536 levels) and as float32. Target: >= 5x.
"""

import argparse
import sys
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--images", type=int, default=10)
    args = ap.parse_args()

    from sklearn.metrics import average_precision_score

    from cxrsal.metrics import auprc_score

    rng = np.random.default_rng(0)
    cases = []
    for _ in range(args.images):
        mask = np.zeros((args.size, args.size), bool)
        y, x = rng.integers(0, args.size // 2, 2)
        mask[y:y + args.size // 4, x:x + args.size // 5] = True
        smooth = rng.random((args.size // 16, args.size // 16))
        import cv2
        smap = cv2.resize(smooth, (args.size, args.size), interpolation=cv2.INTER_CUBIC) + mask * 0.3
        smap = (smap - smap.min()) / (smap.max() - smap.min())
        cases.append((mask, np.round(smap * 65535).astype(np.uint16)))

    def timed(f):
        t0 = time.perf_counter()
        values = [f(m, s) for m, s in cases]
        return values, (time.perf_counter() - t0) / len(cases)

    ref, t_sk = timed(lambda m, s: average_precision_score(m.ravel(), s.ravel().astype(np.float64)))
    q, t_q = timed(lambda m, s: auprc_score(m, s))
    f, t_f = timed(lambda m, s: auprc_score(m, s.astype(np.float32) / 65535))
    assert np.allclose(ref, q, atol=1e-12) and np.allclose(ref, f, atol=1e-12), "values differ from scikit-learn"
    print(f"{args.images} maps of {args.size}x{args.size}; max |difference| to scikit-learn: "
          f"{max(abs(a - b) for a, b in zip(ref, q)):.1e} (uint16), {max(abs(a - b) for a, b in zip(ref, f)):.1e} (float32)")
    print(f"{'implementation':<36}{'ms/map':>9}{'speed-up':>10}")
    print(f"{'scikit-learn average_precision_score':<36}{t_sk * 1e3:>9.1f}{1:>10.1f}")
    print(f"{'cxrsal auprc_score, uint16 maps':<36}{t_q * 1e3:>9.1f}{t_sk / t_q:>10.1f}")
    print(f"{'cxrsal auprc_score, float32 maps':<36}{t_f * 1e3:>9.1f}{t_sk / t_f:>10.1f}")
    ok = t_sk / t_q >= 5
    print(f"store maps (uint16): {t_sk / t_q:.1f}x (target >= 5x) -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
