"""Seconds for XRAI over the randomization steps of one model: segments cached vs recomputed.

    python benchmarks/xrai_segments.py [--images 8] [--size 64] [--steps 6] [--xrai-steps 20]

The demo's classifier (ResNet-18, output stride 16, untrained) maps the same chest-like images
with XRAI once per randomization step, as `cxrsal randomize` does (segmentation on the runner's
worker thread, beside the gradients). Cold: the segment cache holds nothing (`max_bytes` 0);
warm: the first step fills it. Both in this process, side by side.
"""

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

# benchmarks/saliency.py would shadow PAIR's `saliency` package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=6, help="randomization steps (the demo's ResNet-18: 6)")
    ap.add_argument("--xrai-steps", type=int, default=20, help="IG steps per baseline (the demo: 20)")
    args = ap.parse_args()

    from cxrsal.console import quiet_native_logs

    quiet_native_logs()
    from cxrsal.data.drawing import chest_image
    from cxrsal.models import build_model
    from cxrsal.saliency import xrai
    from cxrsal.saliency.adapter import ModelAdapter

    rng = np.random.default_rng(0)
    gray = np.stack([chest_image(rng, args.size) for _ in range(args.images)])[..., None]
    images = np.repeat(gray, 3, axis=-1).astype(np.float32)
    adapter = ModelAdapter(build_model("resnet18", input_shape=(args.size, args.size, 1), output_stride=16))
    cls = np.ones(args.images, np.int32)
    method = xrai.Xrai()

    def run_steps():
        with ThreadPoolExecutor(max_workers=1) as executor:
            t0 = time.perf_counter()
            maps = [method.start(adapter, images, cls, None, executor, steps=args.xrai_steps)()
                    for _ in range(args.steps)]
            return maps, time.perf_counter() - t0

    run_steps()                                   # traces the gradient function once
    xrai.SEGMENTS = xrai.SegmentCache(max_bytes=0)
    cold_maps, cold = run_steps()
    xrai.SEGMENTS = xrai.SegmentCache()
    warm_maps, warm = run_steps()
    same = all(np.array_equal(a, b) for a, b in zip(cold_maps, warm_maps))
    print(f"XRAI of {args.images} images at {args.size} px over {args.steps} steps: "
          f"segments recomputed {cold:.1f} s, cached {warm:.1f} s, ratio {cold / warm:.2f} "
          f"(maps identical: {same}; cache {xrai.SEGMENTS.bytes / 2 ** 20:.1f} MiB)")


if __name__ == "__main__":
    main()
