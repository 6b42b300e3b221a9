"""build_model: one flat functional graph image -> preprocessing -> backbone -> features -> head.

Named layers every helper relies on: `image` (input, [H, W, 1] grey in [0, 1]), `preprocess`,
`features` (the last convolutional feature map, GradCAM's target), `logit` (positive-class
logit, what saliency explains), `score` (the model output: positive-class probability) and,
for WILDCAT, `class_maps`.
"""

import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import CxrsalError
from ..files import atomic_path
from .backbones import BACKBONES
from .heads import HEADS

DOWNLOAD_TIMEOUT_S = 10


def keras_cache_dir():
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "models"


def imagenet_weights(arch):
    """Path of `arch`'s ImageNet weights in the Keras cache, downloading them when possible.

    Offline the download fails fast (a short timeout instead of Keras' unbounded one) with a
    message naming the file to place in the cache.
    """
    bb = BACKBONES.get(arch)
    if bb.weights_file is None:
        raise CxrsalError(
            f"model.weights=imagenet: no Keras ImageNet weights exist for {arch}; pass a weights file "
            f"(--set model.weights=PATH, a .weights.h5 of the {arch} backbone) or none")
    target = keras_cache_dir() / Path(bb.weights_file).name
    if target.is_file():
        return str(target)
    try:
        with urllib.request.urlopen(bb.weights_url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            with atomic_path(target) as tmp:
                with open(tmp, "wb") as f:
                    while chunk := response.read(1 << 20):
                        f.write(chunk)
    except (urllib.error.URLError, socket.timeout, OSError) as e:
        reason = getattr(e, "reason", e)
        raise CxrsalError(
            f"model.weights=imagenet: cannot download {bb.weights_url} ({reason}); place the file "
            f"{target.name} in {target.parent}/ (or set KERAS_HOME), or use --set model.weights=none") from None
    return str(target)


def _resolve_weights(arch, weights):
    if weights in (None, "none", "None", ""):
        return None
    if weights == "imagenet":
        return imagenet_weights(arch)
    if not Path(weights).is_file():
        raise CxrsalError(f"model.weights={weights}: no such file (expected imagenet, none or a weights file)")
    return str(weights)


def build_model(arch, head="classification", input_shape=(320, 320, 1), weights=None, *, output_stride=32,
                width=1.0, **head_options):
    """The model for `arch` x `head`: input [H, W, 1] grey in [0, 1] -> positive-class probability.

    `weights`: None/"none", "imagenet" (Keras cache; fetched when online) or a backbone weights
    file. `output_stride`: 32, or 16 / 8 for the backbones with a dilated variant (ResNet-18/34)
    -- a finer last map. `width`: a channel multiplier (ResNet-18/34; 1 = the published network,
    the only one standard weights fit). `head_options` go to the head (classification: output; wildcat:
    num_maps, kmax, kmin, alpha); unset options (None) keep the head's defaults.
    """
    import keras

    from .layers import GrayToBackbone

    bb = BACKBONES.get(arch)
    head_fn = HEADS.get(head)
    h, w = input_shape[:2]
    if min(h, w) < bb.min_size:
        raise CxrsalError(f"input size {h}x{w} is below {arch}'s smallest legal input ({bb.min_size})")
    if output_stride not in bb.output_strides:
        raise CxrsalError(f"model.output_stride {output_stride}: {arch} offers "
                          f"{', '.join(map(str, bb.output_strides))}")
    if width != 1:
        if not bb.widths:
            raise CxrsalError(f"model.width {width}: {arch} has no width option (ResNet-18/34 have)")
        if not 0 < width <= 1:
            raise CxrsalError(f"model.width {width}: must be in (0, 1]")
        if weights not in (None, "none"):
            raise CxrsalError(f"model.width {width} with model.weights={weights}: pretrained weights fit width 1 "
                              "only")
    path = _resolve_weights(arch, weights)
    image = keras.Input(shape=(h, w, 1), name="image")
    x = GrayToBackbone(bb.preprocess, name="preprocess")(image)
    variant = {} if output_stride == 32 else {"output_stride": output_stride}
    if width != 1:
        variant["width"] = width
    feats = keras.layers.Identity(name="features")(bb.apply(x, path, **variant))
    options = {k: v for k, v in head_options.items() if v is not None}
    try:
        _, score = head_fn(feats, **options)
    except TypeError as e:
        raise CxrsalError(f"head {head!r}: {e}") from None
    return keras.Model(image, score, name=f"{arch}_{head}")


def logit_tensor(model):
    """The positive-class logit [B, 1] of a cxrsal model (pre-sigmoid or pre-softmax)."""
    from .layers import SelectClass

    names = {l.name for l in model.layers}
    if "logit" in names:
        return model.get_layer("logit").output
    if "logits" in names:   # two-way softmax head: column 1
        return SelectClass(1, name="logit")(model.get_layer("logits").output)
    raise CxrsalError(f"model {model.name} has no 'logit' or 'logits' layer: not a cxrsal model")


def logit_model(model):
    """Same weights; output = positive-class logit [B, 1] (what saliency explains)."""
    import keras

    return keras.Model(model.input, logit_tensor(model))


def feature_model(model):
    """Same weights; outputs = (last conv feature map [B, h, w, C], logit [B, 1]) for GradCAM."""
    import keras

    return keras.Model(model.input, [model.get_layer("features").output, logit_tensor(model)])


def class_map_model(model):
    """WILDCAT models only: outputs = (class maps [B, h, w, C], logit [B, 1])."""
    import keras

    try:
        maps = model.get_layer("class_maps").output
    except ValueError:
        raise CxrsalError(f"model {model.name} has no WILDCAT head (no 'class_maps' layer)") from None
    return keras.Model(model.input, [maps, logit_tensor(model)])


EXTERNAL = "external"   # arch prefix of a user's own model (`cxrsal adopt`)


def backbone_blocks(model, arch, prefixes=()):
    """[(block, [layer names])] from the top down: `logits` (the head) first, then the
    backbone's ordered blocks. Only layers between `preprocess` and `features` are backbone.
    A user's model (arch `external-*`): blocks named by `prefixes`, or discovered
    (`cxrsal.models.external.discover_blocks`)."""
    names = [l.name for l in model.layers]
    if "features" not in names or "preprocess" not in names:
        raise CxrsalError(f"model {model.name}: randomization needs the model's own layers, which it does not expose "
                          "(a SavedModel is one opaque layer); save the model as .keras to randomize it")
    start, stop = names.index("preprocess") + 1, names.index("features")
    body, head = names[start:stop], names[stop + 1:]
    if arch.startswith(EXTERNAL):
        from .external import discover_blocks

        groups, order = discover_blocks(body, prefixes)
        return [("logits", head)] + [(b, [n for n in body if groups[n] == b]) for b in order]
    bb = BACKBONES.get(arch)
    groups = bb.groups(body)
    blocks = [("logits", head)]
    for b in bb.block_order:
        members = [n for n in body if groups[n] == b]
        if members:
            blocks.append((b, members))
    return blocks
