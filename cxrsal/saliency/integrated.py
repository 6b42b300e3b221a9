"""`ig`: Integrated Gradients (PAIR) from a black baseline, all steps batched."""

import numpy as np

from ..domains import Number, NumberText
from ..errors import CxrsalError
from .base import Method, register

# interpolation steps per PAIR call, for every image of the stack at once (the adapter chunks the
# evaluations into padded batches): [A]'s 25 in one call, XRAI's 100 in two. A constant, not a
# share of an evaluation budget: PAIR sums each call's gradients before adding the calls up, so
# an image's map must not depend on how many images share the stack
STEPS_PER_CALL = 64


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

    return IntegratedGradients().GetMask(images, adapter.call_model_function, {"cls": cls},
                                         x_baseline=baseline, x_steps=int(steps), batch_size=STEPS_PER_CALL)


@register
class IG(Method):
    name = "ig"
    order = 30
    study = True
    defaults = {"steps": 25, "baseline": "black"}   # [A]'s text: 25 steps (its code used 10)
    # black (0 = -1 in [-1, 1] scaling) | white | a number
    config = {"steps": "saliency.ig_steps", "baseline": "saliency.ig_baseline"}
    domains = {"steps": Number(lo=1, integer=True), "baseline": NumberText(("black", "white"), Number(0, 1))}

    def evaluations(self, params):
        return int(params["steps"])

    def compute(self, adapter, images, cls, rngs, steps=25, baseline="black"):
        return integrated_gradients(adapter, images, cls, baseline_for(images, baseline), steps)
