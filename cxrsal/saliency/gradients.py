"""`grad`: the input gradient of the explained logit (PAIR GradientSaliency)."""

from .base import Method, register


@register
class Grad(Method):
    name = "grad"
    order = 10
    study = True
    defaults = {}

    def compute(self, adapter, images, cls, rngs, **params):
        from saliency.core import GradientSaliency

        # the whole stack is one PAIR input: one batched model call for every image
        return GradientSaliency().GetMask(images, adapter.call_model_function, {"cls": cls})
