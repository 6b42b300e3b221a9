"""Global average pooling + dense: one sigmoid logit (default) or a two-way softmax ([A])."""

from ...errors import CxrsalError
from . import HEADS

OUTPUTS = ("sigmoid", "softmax")


@HEADS.register("classification")
def classification_head(features, *, output="sigmoid"):
    """-> (logit [B, 1] or None, score [B, 1]); the logit is what saliency explains."""
    from keras import layers

    from ..layers import SelectClass

    if output not in OUTPUTS:
        raise CxrsalError(f"model.output {output!r}: valid choices: {', '.join(OUTPUTS)}")
    x = layers.GlobalAveragePooling2D(name="gap")(features)
    if output == "sigmoid":
        logit = layers.Dense(1, name="logit")(x)
        return logit, layers.Activation("sigmoid", dtype="float32", name="score")(logit)
    # two-way softmax: the logit of the positive class is column 1 of `logits`; the helpers
    # (logit_model, ...) select it, since a branch off the output path would not be kept
    logits = layers.Dense(2, name="logits")(x)
    probs = layers.Activation("softmax", dtype="float32", name="probs")(logits)
    return None, SelectClass(1, dtype="float32", name="score")(probs)
