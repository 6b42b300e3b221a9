"""Smoothing as a wrapper over any method instance (Captum's NoiseTunnel): `sg` = Smooth(Grad()),
`sig` = Smooth(IG()); `NoiseAveraged(method)` is sMPRT's denoising of any method.

Every image draws its own seeded noise (base.noise_rng); the noisy copies of a batch are
handed to the wrapped method as one stack, in pieces small enough for memory.
"""

import numpy as np

from ..domains import Flag, Number
from .base import Method, register, image_noise
from .gradients import Grad
from .integrated import IG

# noisy inputs per call of the wrapped method (times its evaluations per input)
EVALS_PER_PIECE = 1024
SMOOTHING = {"samples": 25, "noise": 0.15, "magnitude": True}
# samples: noisy copies; noise: sigma as a fraction of (max - min) of the image; magnitude:
# average squared maps (SmoothGrad's "squared" variant, [A])
SMOOTHING_CONFIG = {"samples": "saliency.samples", "noise": "saliency.noise", "magnitude": "saliency.magnitude"}
# noise 0 would average one map with itself: a SmoothGrad of no smoothing
SMOOTHING_DOMAINS = {"samples": Number(lo=1, integer=True), "noise": Number(lo=0, lo_open=True), "magnitude": Flag()}


class Smooth(Method):
    """`base` averaged over `samples` noisy copies of each image; its parameters are the
    smoothing ones plus the base method's."""

    def __init__(self, base, name, *, order, study=False):
        self.base, self.name, self.order, self.study = base, name, order, study
        self.channels, self.grid, self.needs_wildcat = base.channels, base.grid, base.needs_wildcat
        self.defaults = {**SMOOTHING, **base.defaults}
        self.config = {**SMOOTHING_CONFIG, **base.config}
        self.domains = {**SMOOTHING_DOMAINS, **base.domains}

    def _split(self, params):
        return {k: v for k, v in params.items() if k not in SMOOTHING}

    def evaluations(self, params):
        base_params = self.base.resolve(self._split(params))
        return int(params["samples"]) * self.base.evaluations(base_params)

    def compute(self, adapter, images, cls, rngs, samples=25, noise=0.15, magnitude=True, **base_params):
        base_params = self.base.resolve(base_params)
        return average_over_noise(self.base, adapter, images, cls, rngs, samples, noise, magnitude, base_params)


def average_over_noise(base, adapter, images, cls, rngs, samples, noise, magnitude, base_params, clean_last=False,
                       truth=None):
    """The mean of `base`'s maps (squared first when `magnitude`) over `samples` noisy copies of
    each image; the noise of image i comes from rngs[i]; `clean_last`: the last copy is the image
    itself (no noise); `truth`: the images' ground truth, handed to every copy of its image (a
    method that `needs_truth`). The wrapped method gets, for every copy
    of image i, a copy of rngs[i] as it was before the noise was drawn (so a wrapped SmoothGrad
    draws its own noise as it would unwrapped); methods without noise ignore them."""
    import copy

    n = len(images)
    inner = [copy.deepcopy(r) for r in rngs] if rngs is not None else None
    noise_draws = np.stack([image_noise(rng, img, samples, noise) for rng, img in zip(rngs, images)], axis=1)
    if clean_last:
        noise_draws[-1] = 0
    total = None
    per_piece = max(1, EVALS_PER_PIECE // (base.evaluations(base_params) * n))
    for start in range(0, samples, per_piece):
        chunk = noise_draws[start:start + per_piece]                       # [s, N, H, W, C]
        noisy = (images[None] + chunk).reshape(-1, *images.shape[1:])
        copies = None if inner is None else [copy.deepcopy(r) for _ in range(len(chunk)) for r in inner]
        extra = {} if truth is None else {"truth": np.tile(truth, (len(chunk),) + (1,) * (np.ndim(truth) - 1))}
        maps = np.asarray(base.compute(adapter, noisy, np.tile(cls, len(chunk)), copies, **base_params, **extra))
        maps = maps.reshape(len(chunk), n, *maps.shape[1:]).astype(np.float64)
        for m in maps:     # sample by sample, in order: the sum does not depend on the pieces
            m = m * m if magnitude else m
            total = m if total is None else total + m
    return (total / samples).astype(np.float32)


class NoiseAveraged(Method):
    """sMPRT's denoised explanation (Hedstroem et al. 2023, "Sanity checks revisited"): any
    method's maps averaged (plain mean, not squared) over `samples` copies of the input, the
    first samples - 1 with Gaussian noise of sigma = `noise` x (max - min of the image), the last
    the input itself (as the authors' code, so that one sample is the method's own map). With
    samples 1 it gives the method's own maps, bit for bit (sMPRT reduces to MPRT). Same name,
    parameters and table place as the wrapped method; `smoothing` is recorded in the store's
    params.json."""

    def __init__(self, base, samples, noise):
        self.base, self.samples, self.noise = base, int(samples), float(noise)
        for attr in ("name", "order", "study", "needs_wildcat", "needs_layers", "channels", "grid", "defaults",
                     "config", "domains", "control", "needs_truth", "expected"):
            setattr(self, attr, getattr(base, attr))
        self.smoothing = {"samples": self.samples, "noise": self.noise, "last_copy": "input"}

    def evaluations(self, params):
        return self.samples * self.base.evaluations(params)

    def extras(self, adapter, images):
        return self.base.extras(adapter, images)

    def compute(self, adapter, images, cls, rngs, truth=None, **params):
        return average_over_noise(self.base, adapter, images, cls, rngs, self.samples, self.noise, False, params,
                                  clean_last=True, truth=truth)


register(Smooth(Grad(), "sg", order=20, study=True))
register(Smooth(IG(), "sig", order=40, study=True))
