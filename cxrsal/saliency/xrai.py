"""`xrai`: PAIR XRAI with its defaults (IG from the image's min and max, 100 steps, `full`).

The IG attributions of a batch are computed through the adapter in large batches; the
Felzenszwalb segmentation starts on a worker thread before them, and the region selection
runs there after them, while the runner already computes the next batch's gradients.
"""

import numpy as np

from ..domains import Number, OneOf
from ..errors import CxrsalError
from .base import Method, register
from .integrated import integrated_gradients

ALGORITHMS = ("full", "fast")


DILATION_RADIUS = 5   # PAIR's default


class SegmentCache:
    """XRAI's segments by image content, bit-packed, least recently used first out past
    `max_bytes`. The segmentation depends on the image alone, never on the model, while
    randomization maps the same images at every step (12 per model in [A]) and compare maps them
    once per model; segmenting (PAIR segments at 224 px, 6 scales) takes CPU time which on a
    2-core machine competes with the gradients (`python benchmarks/xrai_segments.py`)."""

    def __init__(self, max_bytes=256 * 2 ** 20):
        import collections
        import threading

        self.max_bytes, self.bytes, self.hits, self.misses = max_bytes, 0, 0, 0
        self._items, self._lock = collections.OrderedDict(), threading.Lock()

    @staticmethod
    def key(image):
        import hashlib

        image = np.ascontiguousarray(image)
        h = hashlib.blake2b(f"{image.dtype.str}{image.shape}".encode(), digest_size=20)
        h.update(image.tobytes())
        return h.digest()

    def get(self, image, compute):
        """`compute(image)`'s masks (a list of boolean [H, W] arrays), computed once per content."""
        key = self.key(image)
        with self._lock:
            packed = self._items.get(key)
            if packed is not None:
                self._items.move_to_end(key)
                self.hits += 1
        if packed is not None:
            bits, shape = packed
            return list(np.unpackbits(bits, count=int(np.prod(shape))).reshape(shape).astype(bool))
        masks = compute(image)
        shape = (len(masks), *image.shape[:2])
        bits = np.packbits(np.asarray(masks, bool).reshape(-1)) if masks else np.zeros(0, np.uint8)
        with self._lock:
            self.misses += 1
            if key not in self._items and bits.nbytes <= self.max_bytes:
                self._items[key] = (bits, shape)
                self.bytes += bits.nbytes
                while self.bytes > self.max_bytes:
                    _, (old, _) = self._items.popitem(last=False)
                    self.bytes -= old.nbytes
        return masks


SEGMENTS = SegmentCache()


def _segments(image):
    """XRAI's segments of `image`, from `SEGMENTS` when this content was segmented before."""
    return SEGMENTS.get(image, _felzenszwalb)


def _felzenszwalb(image):
    """PAIR's Felzenszwalb segments, dilated with OpenCV instead of scikit-image: the same masks
    (a disk is convex and symmetric, so scikit-image's reflected border adds nothing), much
    faster -- the dilation was most of XRAI's segmentation time."""
    import cv2
    from saliency.core.xrai import _get_segments_felzenszwalb
    from skimage.morphology import disk

    footprint = disk(DILATION_RADIUS).astype(np.uint8)
    masks = _get_segments_felzenszwalb(image, dilation_rad=0)
    return [cv2.dilate(m.astype(np.uint8), footprint).astype(bool) for m in masks]


def _select(image, attribution, segments, steps, algorithm):
    from saliency.core import XRAI, XRAIParameters

    params = XRAIParameters(steps=steps, algorithm=algorithm)
    return XRAI().GetMask(image, None, base_attribution=attribution, segments=segments,
                          extra_parameters=params).astype(np.float32)


@register
class Xrai(Method):
    name = "xrai"
    order = 60
    study = True
    channels = False
    defaults = {"steps": 100, "algorithm": "full"}     # PAIR's defaults; algorithm full | fast
    config = {"steps": "saliency.xrai_steps", "algorithm": "saliency.xrai_algorithm"}
    domains = {"steps": Number(lo=1, integer=True), "algorithm": OneOf(*ALGORITHMS)}

    def start(self, adapter, images, cls, rngs, executor=None, steps=100, algorithm="full"):
        if algorithm not in ALGORITHMS:
            raise CxrsalError(f"xrai algorithm {algorithm!r}: valid choices: {', '.join(ALGORITHMS)}")
        # PAIR imported here first: the worker thread's segmentation and this thread's IG would
        # otherwise import it at once, and Python's import locks deadlock on the package's cycle
        # (saliency.core imports .xrai; seen when a resumed run had only XRAI left to compute)
        import saliency.core  # noqa: F401

        run = executor.submit if executor is not None else (lambda f, *a: _Done(f(*a)))
        segs = [run(_segments, image) for image in images]
        # XRAI's own baselines: each image's minimum and maximum; attributions averaged
        axes = tuple(range(1, images.ndim))
        lows = np.min(images, axis=axes, keepdims=True) * np.ones_like(images)
        highs = np.max(images, axis=axes, keepdims=True) * np.ones_like(images)
        # both baselines in one stack: one PAIR call per share of steps, fuller padded batches
        both = integrated_gradients(adapter, np.stack([images, images]), cls, np.stack([lows, highs]), steps)
        attr = (both[0] + both[1]) / 2.0
        maps = [run(lambda i=i: _select(images[i], attr[i], segs[i].result(), steps, algorithm))
                for i in range(len(images))]
        return lambda: np.stack([m.result() for m in maps])

    def compute(self, adapter, images, cls, rngs, **params):
        return self.start(adapter, images, cls, rngs, None, **params)()

    def evaluations(self, params):
        return 2 * int(params["steps"])


class _Done:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value
