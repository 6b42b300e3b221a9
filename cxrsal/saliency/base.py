"""Saliency method registry and the seeded noise every smoothed method draws.

A method is one file: a `Method` subclass (or a wrapped instance, `Smooth(IG())`) registered
with `register`. What it declares is the only list of methods: its place in the tables
(`order`), whether it is one of the study's methods (`study`), whether it needs a WILDCAT head
(`needs_wildcat`) and the config keys of its parameters (`config`). `ordered()`, the CLI's
choices, the `saliency:` config section and the stats and report method lists derive from it.
"""

import numpy as np

from .. import config as _config
from ..errors import CxrsalError
from ..registry import Registry

METHODS = Registry("saliency method")
KEYWORDS = ("study", "controls", "all")


class Method:
    """A saliency method: `compute` takes a batch of images and returns raw maps.

    `order`: position in tables and method lists. `study`: one of the audited methods ([A]'s
    eight, [B]'s WILDCAT map): what `--methods study` (the default) computes; others run when
    named or with `all`. `needs_wildcat`: needs a WILDCAT head's class maps.
    `channels`: True when raw maps keep the input's channels ([N, H, W, C]; post-processing
    sums their absolute values), False for 2-D maps ([N, H, W]; no abs).
    `defaults`: every parameter, so a run records all of them; `config`: the parameters a
    config sets, {parameter: "section.key"} (`saliency.KEY` keys are declared by the method).
    `grid`: True when the map is the feature map's grid upsampled (GradCAM, WILDCAT), so its
    cells sit at the receptive-field centres of the feature map (pointwise detection).
    `domains`: what each configurable parameter accepts (`cxrsal.domains`), checked wherever
    a config sets it.
    `control`: a control map (`cxrsal.saliency.controls`): not in `study`, judged apart.
    `needs_truth`: `compute` takes the images' ground truth as `truth` ([N, H, W, 1] masks).
    `needs_layers`: needs the model's inner layers (the GradCAM layer, its ReLUs), which a
    SavedModel does not expose; the gradient methods do not.
    """

    name = ""
    order = 1000
    study = False
    needs_wildcat = False
    channels = True
    grid = False
    needs_layers = False
    control = False
    needs_truth = False
    expected = {}     # a control's verdicts by construction: {check: (verdict, why)}
    defaults = {}
    config = {}
    domains = {}      # parameter -> its `cxrsal.domains` domain (every configurable one declares it)

    def resolve(self, params):
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise CxrsalError(f"method {self.name}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                              f"valid: {', '.join(sorted(self.defaults)) or 'none'}")
        return {**self.defaults, **params}

    def compute(self, adapter, images, cls, rngs, **params):
        raise NotImplementedError

    def evaluations(self, params):
        """Model evaluations (forward + gradient) per map."""
        return 1

    def extras(self, adapter, images):
        """Arrays stored beside each map ({name: [N, ...]}), e.g. WILDCAT's native class map."""
        return {}

    def start(self, adapter, images, cls, rngs, executor=None, **params):
        """Begin computing; returns a zero-argument callable giving the raw maps. Methods with
        CPU-side work (XRAI's segmentation) run it on `executor` while the next batch's
        gradients are computed."""
        raw = self.compute(adapter, images, cls, rngs, **params)
        return lambda: raw


def register(obj):
    """Register a method: a class (decorator; the registry holds one instance of it) or an
    instance (a wrapped method, `register(Smooth(IG(), "sig", order=40))`)."""
    method = obj() if isinstance(obj, type) else obj
    missing = set(method.config) - set(method.defaults)
    if missing:
        raise ValueError(f"method {method.name}: config fields {sorted(missing)} have no default")
    METHODS.register(method.name)(method)
    _config.declare(method.name, method.config, method.defaults, method.domains)
    return obj


def ordered(names=None):
    """Registered method names (or `names`) in table order."""
    names = METHODS.names() if names is None else names
    return sorted(names, key=lambda n: (METHODS.get(n).order, n))


def study_methods():
    return [n for n in ordered() if METHODS.get(n).study]


def control_methods():
    """The control maps (`cxrsal.saliency.controls`), in table order."""
    return [n for n in ordered() if getattr(METHODS.get(n), "control", False)]


def is_control(name):
    return name in METHODS and bool(getattr(METHODS.get(name), "control", False))


def keyword_methods(word):
    """The methods a keyword of --methods names: `study`, `controls` or `all`."""
    return {"study": study_methods, "controls": control_methods, "all": ordered}[word]()


def method_names(text):
    """--methods as written (keywords and names, comma-separated) -> registered names in table
    order; an unknown name is one error naming the valid choices."""
    names = set()
    for t in (t.strip() for t in str(text).split(",")):
        if not t:
            continue
        if t in KEYWORDS:
            names.update(keyword_methods(t))
        elif t in METHODS:
            names.add(t)
        else:
            raise CxrsalError(f"--methods {t!r}: valid choices: {', '.join(KEYWORDS + tuple(ordered()))}")
    if not names:
        raise CxrsalError(f"--methods {text!r}: names no method; valid choices: "
                          f"{', '.join(KEYWORDS + tuple(ordered()))}")
    return ordered(names)


def parse_methods(text, has_wildcat, has_layers=True):
    """`study` (the audited methods), `controls` (the control maps), `all` (every registered
    method) or a comma list of names and keywords -> names in table order; methods needing a
    WILDCAT head, or inner layers a SavedModel does not expose, are left out of the keywords when
    the model lacks them and refused when named."""
    text = "study" if text in ("", None) else str(text)

    def possible(n):
        m = METHODS.get(n)
        return (has_wildcat or not m.needs_wildcat) and (has_layers or not m.needs_layers)

    words = {t.strip() for t in text.split(",")}
    names = method_names(text)
    if words & set(KEYWORDS):     # what a keyword names is left out where the model cannot give it
        named = {t for t in words if t not in KEYWORDS}
        names = [n for n in names if n in named or possible(n)]
    for n in names:
        if METHODS.get(n).needs_wildcat and not has_wildcat:
            raise CxrsalError(f"--methods {n}: the model has no WILDCAT head")
        if METHODS.get(n).needs_layers and not has_layers:
            raise CxrsalError(f"--methods {n}: needs the model's inner layers, which a SavedModel does not expose; "
                              "save the model as .keras, or use grad, sg, ig, sig, xrai")
    return names


def noise_rng(seed, index):
    """The generator of image `index` (global position in the run): the same noise for it
    whatever the batching, sharding or resumption."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def image_noise(rng, image, samples, noise):
    """`samples` Gaussian draws of sigma = noise * (max - min of the image) (SmoothGrad)."""
    sigma = noise * (float(np.max(image)) - float(np.min(image)))
    return rng.normal(0.0, sigma, size=(samples, *image.shape)).astype(np.float32)
