"""`ig`: Integrated Gradients (PAIR) from a black baseline, all steps batched."""

import numpy as np

from ..errors import CxrsalError
from .base import Method, register

# model evaluations handed to the adapter per PAIR call (it chunks them into batch_size)
EVALS_PER_CALL = 512


def baseline_for(images, baseline):
    """black = 0 in cxrsal's [0, 1] input (= -1 in [-1, 1] scaling); white = 1; or a number."""
    if baseline == "black":
        return np.zeros_like(images)
    if baseline == "white":
        return np.ones_like(images)
    try:
        return np.full_like(images, float(baseline))
    except (TypeError, ValueError):
        raise CxrsalError(f"ig baseline {baseline!r}: use black, white or a number") from None


def integrated_gradients(adapter, images, cls, baseline, steps):
    from saliency.core import IntegratedGradients

    per_call = max(1, EVALS_PER_CALL // max(1, len(images)))
    return IntegratedGradients().GetMask(images, adapter.call_model_function, {"cls": cls},
                                         x_baseline=baseline, x_steps=int(steps), batch_size=per_call)


@register
class IG(Method):
    name = "ig"
    defaults = {"steps": 25, "baseline": "black"}   # [A]'s text: 25 steps (its code used 10)

    def evaluations(self, params):
        return int(params["steps"])

    def compute(self, adapter, images, cls, rngs, steps=25, baseline="black"):
        return integrated_gradients(adapter, images, cls, baseline_for(images, baseline), steps)
