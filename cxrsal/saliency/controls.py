"""Control maps: maps whose answer is known by construction, registered like methods, scored and
randomized like them, and judged apart, so that the report can say whether each check can fail.

- `edge`: the Sobel gradient magnitude of the input image: no model at all (Adebayo et al.,
  NeurIPS 2018: an edge detector "explains" an image without a model);
- `random`: uniform noise seeded by the image and the model's weights: it changes with the
  model and carries no information;
- `oracle`: the ground truth (mask, or boxes drawn as a mask) smoothed by a Gaussian: perfect
  localization, no model.

Each control's `expected` holds the verdict it must get from each check and why: the report's
"Can these checks fail?" section compares them with the verdicts observed (`cxrsal.stats.controls`).
"""

import hashlib

import numpy as np

from ..domains import Number
from .base import Method, register

CONTROL_ORDER = 200     # after every method in the tables: controls are shown apart


class Control(Method):
    """A control map: not one of the study's methods (`--methods controls` or `all` adds them);
    never in the mixed-model fits or post-hoc comparisons of the methods.
    `expected`: {check: (verdict, why)}, the checks named as `cxrsal.stats.controls.CHECKS` does."""

    control = True
    channels = False
    expected = {}


def sobel_magnitude(image):
    """Sobel gradient magnitude of a 2-D image (SciPy's 3 x 3 Sobel, borders mirrored)."""
    from scipy import ndimage

    image = np.asarray(image, np.float64)
    return np.hypot(ndimage.sobel(image, axis=0, mode="reflect"), ndimage.sobel(image, axis=1, mode="reflect"))


@register
class Edge(Control):
    name = "edge"
    order = CONTROL_ORDER
    defaults = {}
    expected = {
        "MPRT": ("FAIL", "its maps ignore the model, so randomizing the model cannot change them"),
        "sMPRT": ("FAIL", "its maps ignore the model, so randomizing the model cannot change them"),
        "eMPRT": ("FAIL", "its maps ignore the model: their complexity cannot rise"),
        "data randomization": ("FAIL", "its maps ignore the model, so a model of permuted labels gives the same"),
        "repeatability vs 0.5": ("PASS", "its maps ignore the model: two models give the same map"),
        "reproducibility vs 0.5": ("PASS", "its maps ignore the model: two models give the same map"),
    }

    def compute(self, adapter, images, cls, rngs, **params):
        grey = np.asarray(images, np.float64).mean(axis=-1)
        return np.stack([sobel_magnitude(g) for g in grey]).astype(np.float32)


def noise_seed(digest, image):
    """The seed of a `random` map: the model's weights digest and the image's bytes."""
    h = hashlib.sha256(digest.encode())
    h.update(np.ascontiguousarray(np.asarray(image, np.float32)).tobytes())
    return np.random.SeedSequence(int.from_bytes(h.digest()[:16], "little"))


@register
class RandomMap(Control):
    name = "random"
    order = CONTROL_ORDER + 1
    defaults = {}
    expected = {
        "utility vs average mask": ("FAIL", "noise cannot localize"),
        "repeatability vs 0.5": ("FAIL", "two models' noise does not agree"),
        "reproducibility vs 0.5": ("FAIL", "two models' noise does not agree"),
        "MPRT": ("PASS", "noise changes with the weights; a PASS of this check alone does not certify a method "
                         "(Binder et al., CVPR 2023)"),
        "data randomization": ("PASS", "noise changes with the weights; a PASS of this check alone does not "
                                       "certify a method"),
    }

    def compute(self, adapter, images, cls, rngs, **params):
        from .store import weights_digest

        digest = weights_digest(adapter.model)
        h, w = np.asarray(images).shape[1:3]
        return np.stack([np.random.default_rng(noise_seed(digest, x)).random((h, w)) for x in images]
                        ).astype(np.float32)


def smoothed_truth(mask, sd):
    """The ground-truth mask [H, W] smoothed by a Gaussian of `sd` pixels (zero outside the image)."""
    from scipy import ndimage

    return ndimage.gaussian_filter(np.asarray(mask, np.float64), sigma=sd, mode="constant", cval=0.0)


@register
class Oracle(Control):
    name = "oracle"
    order = CONTROL_ORDER + 2
    needs_truth = True
    defaults = {"blur": 1 / 32}
    config = {"blur": "saliency.oracle_blur"}    # the Gaussian's sd as a fraction of the image side
    domains = {"blur": Number(lo=0, hi=1, lo_open=True)}
    expected = {
        "utility vs average mask": ("PASS", "it is the ground truth"),
        "MPRT": ("FAIL", "its maps are the ground truth whatever the model"),
        "sMPRT": ("FAIL", "its maps are the ground truth whatever the model"),
        "eMPRT": ("FAIL", "its maps are the ground truth whatever the model: their complexity cannot rise"),
        "data randomization": ("FAIL", "its maps are the ground truth whatever the model"),
        "repeatability vs 0.5": ("PASS", "its maps are the ground truth whatever the model"),
        "reproducibility vs 0.5": ("PASS", "its maps are the ground truth whatever the model"),
    }

    def compute(self, adapter, images, cls, rngs, truth=None, blur=1 / 32):
        if truth is None:
            from ..errors import CxrsalError

            raise CxrsalError("method oracle: needs the images' ground truth (masks or boxes)")
        truth = np.asarray(truth, np.float64)
        truth = truth[..., 0] if truth.ndim == 4 else truth
        side = max(truth.shape[1:3])
        return np.stack([smoothed_truth(t, blur * side) for t in truth]).astype(np.float32)
