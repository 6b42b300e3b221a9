"""Saliency engine: the eight methods of [A], WILDCAT maps and any method added as one file of
this package, batched, through one PAIR adapter.

Every module of the package is imported here, so a method's file registers it (`base.register`):
adding a method touches no other file.
"""

import importlib
import pkgutil

import numpy as np

from ..errors import CxrsalError
from .adapter import ModelAdapter
from .base import METHODS, Method, noise_rng, ordered, parse_methods, register, study_methods
from .postprocess import normalize, postprocess, reduce_2d

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

ORDER = tuple(ordered())     # every registered method, in table order

__all__ = ["compute_maps", "METHODS", "Method", "ORDER", "ModelAdapter", "noise_rng", "normalize", "ordered",
           "parse_methods", "postprocess", "reduce_2d", "register", "study_methods"]


def compute_maps(model, images, method, *, target="positive", seed=0, batch_size=32, input_channels=3,
                 indices=None, return_flags=False, card=None, truth=None, **params):
    """Saliency maps of `images` ([N, H, W, 1] in [0, 1]) for one method.

    Returns (raw, processed): raw maps as the method gives them (float32, [N, H, W, C] for
    gradient methods -- C = 3 with `input_channels=3` ([A]: gradients with respect to the grey
    image replicated to 3 channels) -- [N, H, W] for 2-D ones) and processed 2-D maps in [0, 1]; with
    `return_flags`, also a bool array marking constant maps (processed to zeros). `indices`
    (default 0..N-1) name each image's noise stream, so a map does not depend on the batch.

    `model`: a cxrsal model, any Keras classifier, or the path of a saved one (.keras, .h5, a
    SavedModel folder: gradient methods only) (wrapped once by `cxrsal.models.external.wrap` with `card`, a `ModelCard`: logit, GradCAM layer, input,
    preprocessing); keep the returned adapter's model (`ModelAdapter(wrap(...))`) to call again.
    `truth`: the images' ground-truth masks ([N, H, W, 1]), for a method that needs them (`oracle`).
    """
    import os

    m = METHODS.get(method)
    params = m.resolve(params)
    images = np.asarray(images, np.float32)
    if isinstance(model, (str, os.PathLike)):      # a saved model: .keras, .h5 or a SavedModel folder
        from ..models.external import ModelCard, is_saved_model, load_user_model, wrap, wrap_saved_model

        card = card or ModelCard()
        model = wrap_saved_model(model, card) if is_saved_model(model) else wrap(load_user_model(model), card)
        card = None
    if not isinstance(model, ModelAdapter) and (card is not None or not {"features", "logit", "logits"}
                                                 & {layer.name for layer in model.layers}):
        from ..models.external import ModelCard, wrap

        model = wrap(model, card or ModelCard())
    adapter = model if isinstance(model, ModelAdapter) else ModelAdapter(model, batch_size=batch_size,
                                                                         input_channels=input_channels)
    if m.needs_layers and not adapter.has_layers:
        raise CxrsalError(f"method {method}: needs the model's inner layers, which a SavedModel does not expose; "
                          "save the model as .keras, or use grad, sg, ig, sig, xrai")
    images = adapter.lift(images)
    indices = range(len(images)) if indices is None else indices
    cls = adapter.classes(images, target)
    if m.needs_truth and truth is None:
        raise CxrsalError(f"method {method}: needs the images' ground truth (truth=masks)")
    extra = {"truth": np.asarray(truth)} if m.needs_truth else {}
    raw = m.compute(adapter, images, cls, [noise_rng(seed, i) for i in indices], **params, **extra)
    done = [postprocess(r, channels=m.channels) for r in raw]
    processed = np.stack([d[0] for d in done])
    flags = np.array([d[1] for d in done])
    return (raw, processed, flags) if return_flags else (raw, processed)
