"""SmoothGrad as a wrapper around any method (`sg` = SmoothGrad of grad, `sig` = of ig).

Every image draws its own seeded noise (base.noise_rng); the noisy copies of a batch are
handed to the wrapped method as one stack, in pieces small enough for memory.
"""

import numpy as np

from .base import Method, register, image_noise
from .gradients import Grad
from .integrated import IG

# noisy inputs per call of the wrapped method (times its evaluations per input)
EVALS_PER_PIECE = 1024


class Smooth(Method):
    base = None

    def evaluations(self, params):
        return int(params["samples"]) * self.evals_per_input(params)

    def compute(self, adapter, images, cls, rngs, samples=25, noise=0.15, magnitude=True, **base_params):
        n = len(images)
        noise_draws = np.stack([image_noise(rng, img, samples, noise) for rng, img in zip(rngs, images)], axis=1)
        total = np.zeros(images.shape, np.float64)
        per_piece = max(1, EVALS_PER_PIECE // (self.evals_per_input(base_params) * n))
        for start in range(0, samples, per_piece):
            chunk = noise_draws[start:start + per_piece]                   # [s, N, H, W, C]
            noisy = (images[None] + chunk).reshape(-1, *images.shape[1:])
            grads = self.base.compute(adapter, noisy, np.tile(cls, len(chunk)), None, **base_params)
            grads = grads.reshape(len(chunk), n, *images.shape[1:]).astype(np.float64)
            total += (grads * grads).sum(0) if magnitude else grads.sum(0)
        return (total / samples).astype(np.float32)


@register
class SmoothGrad(Smooth):
    name = "sg"
    base = Grad()
    defaults = {"samples": 25, "noise": 0.15, "magnitude": True}

    def evals_per_input(self, base_params):
        return 1


@register
class SmoothIG(Smooth):
    name = "sig"
    base = IG()
    defaults = {"samples": 25, "noise": 0.15, "magnitude": True, "steps": 25, "baseline": "black"}

    def evals_per_input(self, base_params):
        return int(base_params.get("steps", 25))
