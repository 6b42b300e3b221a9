"""A user's own Keras classifier, made into a cxrsal model: one flat functional graph with the
layers every cxrsal command looks for (`preprocess`, `features`, `logit`, `score`).

The model card (`--model-card FILE.yaml`, every field optional) says what to explain:

    logit_layer: dense_1      # the layer whose output holds the logits [default: the output layer;
                              # a sigmoid or softmax there is traced back to its pre-activation]
    class_index: 1            # which unit [default: 0 for one output, 1 (positive) for two or more]
    gradcam_layer: relu       # a 4-D layer [default: the last 4-D layer before the logit]
    input_size: 224           # [default: the model's own input size]
    input_channels: 3         # 1 or 3 [default: the model's]
    preprocessing: "[0,1]"    # [0,1] | [-1,1] | imagenet-torch | imagenet-caffe | inside (0-255:
                              # the model scales its input itself)
    blocks: [conv5, conv4]    # randomization blocks, layer-name prefixes from the top down
                              # [default: discovered: InceptionV3's mixed*, DenseNet's and ResNet's
                              # conv*_block*, VGG's block*]

A Keras application used as one layer inside a Sequential or functional model (a nested model)
is inlined layer by layer, so its inner layers (GradCAM's, the randomization blocks) are reachable.

A SavedModel folder opens as one opaque `keras.layers.TFSMLayer` (its serving signature): the
gradients of its output reach the input, so the gradient methods (grad, sg, ig, sig, xrai) work,
but no inner layer does (no GradCAM, Guided Backprop or randomization blocks). Its explained
logit: the output itself when it is one, else (a Sigmoid or Softmax op ends the signature's
graph) the log-odds log p - log(1 - p) of the card's class, which for a sigmoid is exactly the
pre-activation logit. The card's `logit_layer` names the signature's output (default: its only one).
"""

import dataclasses
import re
import typing
from pathlib import Path

from ..domains import Number, OneOf, Optional, Seq, Text
from ..errors import CxrsalError

PREPROCESSING = {"[0,1]": "unit", "[-1,1]": "tf", "imagenet-torch": "torch", "imagenet-caffe": "caffe",
                 "inside": "pixels"}
RESERVED = ("image", "preprocess", "features", "logit", "score")
# block name patterns of Keras applications, tried in turn: the one matching most layers wins
BLOCK_PATTERNS = (r"^(mixed\d+)", r"^(conv\d+_block\d+)", r"^(block\d+)_", r"^(conv\d+)_")


@dataclasses.dataclass(frozen=True)
class ModelCard:
    logit_layer: typing.Optional[str] = None
    class_index: typing.Optional[int] = None
    gradcam_layer: typing.Optional[str] = None
    input_size: typing.Optional[int] = None
    input_channels: typing.Optional[int] = None
    preprocessing: str = "[0,1]"
    blocks: typing.Optional[tuple] = None


# what each field of a model card accepts
CARD_DOMAINS = {"logit_layer": Optional(Text(nonempty=True)), "class_index": Optional(Number(lo=0, integer=True)),
                "gradcam_layer": Optional(Text(nonempty=True)), "input_size": Optional(Number(8, 8192, integer=True)),
                "input_channels": Optional(OneOf(1, 3)), "preprocessing": OneOf(*PREPROCESSING),
                "blocks": Optional(Seq(Text(nonempty=True), nonempty=True, unique=True))}


def read_model_card(path=None, **options):
    """The card from a YAML file (or none), then `options` (None = not given) over it."""
    from ..config import read_yaml_mapping

    data = read_yaml_mapping(path, f"--model-card {path}", "expected a mapping of card fields") if path else {}
    data.update({k: v for k, v in options.items() if v is not None})
    where = f"--model-card {path}" if path else "model card"
    names = [f.name for f in dataclasses.fields(ModelCard)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise CxrsalError(f"{where}: unknown field {unknown[0]!r}; valid fields: {', '.join(names)}")
    for k, v in data.items():
        if not CARD_DOMAINS[k].accepts(v):
            raise CxrsalError(f"{where}: {k} must be {CARD_DOMAINS[k].describe()}, got {v!r}")
    if data.get("blocks") is not None:
        data["blocks"] = tuple(str(b) for b in data["blocks"])
    return ModelCard(**data)


def is_saved_model(path):
    return Path(path).is_dir() and (Path(path) / "saved_model.pb").is_file()


def load_user_model(path):
    """A saved Keras model: `.keras` or `.h5` (a SavedModel folder: `wrap_saved_model`)."""
    import keras

    path = Path(path)
    if not path.exists():
        raise CxrsalError(f"--model {path}: no such file or folder")
    if is_saved_model(path):
        raise CxrsalError(f"--model {path}: a SavedModel folder; open it with wrap_saved_model (or `cxrsal adopt`)")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CxrsalError(f"--model {path}: not a loadable Keras model ({type(e).__name__}: {first[:200]})") from None


class _Replay:
    """Calls a model's layers on new symbolic inputs, inlining nested models; remembers each
    layer (output tensor, first input) and the order layers were called in. The output of layer
    `features` is passed on through an Identity layer named "features" (GradCAM's)."""

    def __init__(self, features=None):
        self.outputs, self.order, self.features = {}, [], features

    def model(self, model, x):
        import keras

        if isinstance(model, keras.Sequential):
            for layer in model.layers:
                x = self.call(layer, x)
            return x
        return model._run_through_graph(x, operation_fn=lambda op: (lambda *a, **k: self.call(op, *a, **k)))

    def call(self, layer, *args, **kwargs):
        import keras

        if isinstance(layer, keras.layers.InputLayer):
            return args[0]
        if layer.name in RESERVED:
            raise CxrsalError(f"the model has a layer named {layer.name!r}, a name cxrsal gives its own layers; "
                              "rename it before saving")
        out = self.model(layer, args[0]) if isinstance(layer, keras.Model) else layer(*args, **kwargs)
        if layer.name == self.features:
            out = keras.layers.Identity(name="features")(out)
        self.outputs[layer.name] = (layer, out, args[0] if args else None)
        self.order.append(layer.name)
        return out


def _activation(layer):
    return getattr(getattr(layer, "activation", None), "__name__", None)


def _logit_kind(layer):
    """"input": the layer's input holds the logits (a sigmoid/softmax Activation or Softmax);
    "linear": its output does (a Dense/Conv, linear or with a sigmoid/softmax `wrap` removes)."""
    import keras

    if isinstance(layer, keras.layers.Softmax) or (isinstance(layer, keras.layers.Activation)
                                                   and _activation(layer) in ("sigmoid", "softmax")):
        return "input"
    if isinstance(layer, keras.layers.Activation) and _activation(layer) == "linear":
        return "linear"
    if _activation(layer) in ("linear", "sigmoid", "softmax", None) and isinstance(
            layer, (keras.layers.Dense, keras.layers.Conv2D)):
        return "linear"
    raise CxrsalError(f"logit layer {layer.name!r} ({type(layer).__name__}, activation {_activation(layer)}) is not "
                      "a logit or a sigmoid/softmax of one: no differentiable logit; name the logit layer in the "
                      "model card (logit_layer:)")


def _input_of(shape, card, what):
    """(size, channels) of the images a model of input `shape` [B, H, W, C] takes, the card's
    input_size / input_channels over its own; refused when they do not fit."""
    size = card.input_size or shape[1]
    channels = card.input_channels or shape[-1]
    if not size or shape[1] not in (None, size) or shape[2] not in (None, size):
        raise CxrsalError(f"{what}: input {shape[1:]}, model card input_size {card.input_size}: give a square "
                          "input_size the model accepts")
    if shape[-1] not in (None, channels):
        raise CxrsalError(f"model card input_channels {channels}: the model takes {shape[-1]} channels")
    return size, channels


def wrap(model, card=ModelCard()):
    """The user's `model` as a cxrsal model: grey [0, 1] (size, size, 1) in, the card's
    preprocessing, the model's layers inlined, `features` = the GradCAM layer, `logit` = the
    explained unit's logit, `score` = its sigmoid. A Dense/Conv logit layer with a sigmoid or
    softmax activation is set to linear (the loaded model object is changed)."""
    import keras

    from .layers import GrayToBackbone, SelectClass

    shape = model.input_shape
    if isinstance(shape, list):
        raise CxrsalError(f"model {model.name}: {len(shape)} inputs; cxrsal audits a model of one image input")
    size, channels = _input_of(shape, card, f"model {model.name}")

    def replay(features=None):
        image = keras.Input((size, size, 1), name="image")
        pre = GrayToBackbone(PREPROCESSING[card.preprocessing], channels=channels, name="preprocess")(image)
        r = _Replay(features)
        out = r.model(model, pre)
        if isinstance(out, (list, tuple)) and len(out) != 1:
            raise CxrsalError(f"model {model.name}: {len(out)} outputs; cxrsal audits a model of one output")
        return image, r

    _, first = replay()
    name = card.logit_layer or first.order[-1]
    if name not in first.outputs:
        raise CxrsalError(f"model card logit_layer {name!r}: no such layer (the last ones are "
                          f"{', '.join(first.order[-4:])})")
    layer = first.outputs[name][0]
    kind = _logit_kind(layer)
    before = first.order[:first.order.index(name)]
    fourd = [n for n in before if len(first.outputs[n][1].shape) == 4]
    gname = card.gradcam_layer or (fourd[-1] if fourd else None)
    if gname is None:
        raise CxrsalError(f"model {model.name}: no 4-D layer before the logit for GradCAM; name one in the model "
                          "card (gradcam_layer:)")
    if gname not in first.outputs:
        raise CxrsalError(f"model card gradcam_layer {gname!r}: no such layer")
    if len(first.outputs[gname][1].shape) != 4:
        raise CxrsalError(f"model card gradcam_layer {gname!r}: its output {tuple(first.outputs[gname][1].shape)} "
                          "is not 4-D (batch, height, width, channels)")
    if _activation(layer) in ("sigmoid", "softmax") and not isinstance(layer, keras.layers.Activation):
        layer.activation = keras.activations.linear      # its output is now the logits
    image, final = replay(features=gname)
    _, out, inp = final.outputs[name]
    logits = inp if kind == "input" else out
    units = logits.shape[-1]
    index = card.class_index if card.class_index is not None else (0 if units == 1 else 1)
    if not 0 <= index < units:
        raise CxrsalError(f"model card class_index {index}: the logit layer {name!r} has {units} unit(s)")
    logit = SelectClass(index, name="logit")(logits)
    score = keras.layers.Activation("sigmoid", name="score")(logit)
    return keras.Model(image, score, name=f"{model.name}_audited")


def _output_op(fn, index):
    """The op type that computes output `index` of a concrete function, looking through
    Identity ops and into the functions it calls (a SavedModel's serving signature calls the
    model's traced function)."""
    lib = {f.signature.name: f for f in fn.graph.as_graph_def().library.function}

    def inside(fdef, tensor, depth):
        node = {n.name: n for n in fdef.node_def}.get(tensor.split(":")[0])
        if node is None or depth > 50:
            return "argument"
        if node.op in ("Identity", "IdentityN"):
            return inside(fdef, node.input[0], depth + 1)
        if node.op in ("StatefulPartitionedCall", "PartitionedCall") and node.attr["f"].func.name in lib:
            inner = lib[node.attr["f"].func.name]
            k = int(tensor.split(":")[-1]) if tensor.count(":") == 2 else 0
            return inside(inner, inner.ret[inner.signature.output_arg[k].name], depth + 1)
        return node.op

    op = fn.outputs[index].op
    while op.type == "Identity":
        tensor = op.inputs[0]
        op = tensor.op
    if op.type in ("StatefulPartitionedCall", "PartitionedCall"):
        name = op.get_attr("f").name
        name = name.decode() if isinstance(name, bytes) else name
        inner = lib.get(name)
        if inner is not None:
            return inside(inner, inner.ret[inner.signature.output_arg[tensor.value_index].name], 0)
    return op.type


def wrap_saved_model(path, card=ModelCard()):
    """A SavedModel folder as a cxrsal model of its serving signature: grey [0, 1] in, the card's
    preprocessing, one TFSMLayer, `logit` (the output, or the log-odds of a sigmoid/softmax
    output's class), `score` = its sigmoid; no `features` (its inner layers are unreachable)."""
    import keras
    import tensorflow as tf

    from .layers import GrayToBackbone, LogOdds, SelectClass

    path = Path(path)
    if card.gradcam_layer or card.blocks:
        raise CxrsalError(f"--model {path}: a SavedModel's inner layers cannot be reached, so the model card's "
                          f"{'gradcam_layer' if card.gradcam_layer else 'blocks'} cannot apply; save the model as "
                          ".keras (model.save('model.keras')) for GradCAM, Guided Backprop and randomization")
    try:
        fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    except KeyError:
        raise CxrsalError(f"--model {path}: the SavedModel has no serving_default signature (export it with "
                          "model.export(path))") from None
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CxrsalError(f"--model {path}: not a loadable SavedModel ({type(e).__name__}: {first[:200]})") from None
    args, kwargs = fn.structured_input_signature
    specs = list(args) + list(kwargs.values())
    if len(specs) != 1 or len(specs[0].shape) != 4:
        raise CxrsalError(f"--model {path}: its serving signature takes {len(specs)} input(s) "
                          f"{[tuple(s.shape) for s in specs]}; cxrsal audits a model of one image input [B, H, W, C]")
    shape = tuple(specs[0].shape)
    size, channels = _input_of(shape, card, f"--model {path}")
    outputs = list(fn.structured_outputs)
    key = card.logit_layer or (outputs[0] if len(outputs) == 1 else None)
    if key not in outputs:
        raise CxrsalError(f"--model {path}: " + (f"model card logit_layer {key!r}: no such output" if key else
                          f"{len(outputs)} outputs") + f" (the signature's outputs: {', '.join(outputs)}); name "
                          "one in the model card (logit_layer:)")
    index_of_key = [t.name.split(":")[0] for t in fn.outputs].index(
        fn.structured_outputs[key].name.split(":")[0]) if len(outputs) > 1 else 0
    activation = _output_op(fn, index_of_key)
    units = fn.structured_outputs[key].shape[-1]
    index = card.class_index if card.class_index is not None else (0 if units == 1 else 1)
    if units is None or not 0 <= index < units:
        raise CxrsalError(f"model card class_index {index}: the output {key!r} has {units} unit(s)")
    if activation in ("ArgMax", "ArgMin", "Round", "Cast"):
        raise CxrsalError(f"--model {path}: output {key!r} comes from a {activation} op: no differentiable logit")
    image = keras.Input((size, size, 1), name="image")
    pre = GrayToBackbone(PREPROCESSING[card.preprocessing], channels=channels, name="preprocess")(image)
    out = keras.layers.TFSMLayer(str(path.resolve()), call_endpoint="serving_default", name="saved_model")(pre)
    out = out[key] if isinstance(out, dict) else out
    probability = activation in ("Sigmoid", "Softmax")
    logit = (LogOdds(index, name="logit") if probability else SelectClass(index, name="logit"))(out)
    score = keras.layers.Activation("sigmoid", name="score")(logit)
    return keras.Model(image, score, name=f"{path.name}_audited")


def discover_blocks(names, prefixes=None):
    """{layer name: block} of the backbone layers `names` (in order), and the blocks from the
    top down. `prefixes` (the card's `blocks`): a layer belongs to the first prefix it starts
    with. Otherwise the pattern of Keras applications that matches most layers; layers before
    the first block are the stem, layers between blocks belong to the block before them."""
    groups = {}
    if prefixes:
        for n in names:
            groups[n] = next((p for p in prefixes if n.startswith(p)), None)
    else:
        best, pattern = -1, None
        for pat in BLOCK_PATTERNS:
            hits = sum(bool(re.match(pat, n)) for n in names)
            if hits > best:
                best, pattern = hits, pat
        for n in names:
            m = re.match(pattern, n)
            groups[n] = m.group(1) if m else None
    current, order = "stem", []
    for n in names:
        current = groups[n] or current
        groups[n] = current
        if current not in order:
            order.append(current)
    return groups, order[::-1]
