"""WILDCAT head: 1x1 conv to C*M maps -> class-wise pooling -> WILDCAT spatial pooling."""

from . import HEADS


@HEADS.register("wildcat")
def wildcat_head(features, *, num_maps=4, kmax=1, kmin=None, alpha=0.0, num_classes=1):
    """-> (logit [B, 1], score [B, 1]); the layer `class_maps` holds the [B, h, w, C] class maps.

    Defaults are [B]'s setting (k=1, M=4, alpha=0); the original demo used k=0.2, M=8, alpha=0.7.
    With one class the map is the positive class's, and the pooled value is its logit.
    """
    from keras import layers

    from ...errors import CxrsalError
    from ..layers import ClassWisePool, SelectClass, WildcatPool2d, resolve_k

    h, w = features.shape[1], features.shape[2]
    if h and w and resolve_k(kmax, h * w) < 1:
        # a fraction of the cells that rounds to none on this model's map: known only here
        raise CxrsalError(f"model.kmax {kmax}: selects no region of the {h} x {w} class map this input size gives "
                          f"(round({kmax} x {h * w}) = 0); use a count >= 1 or a fraction above {0.5 / (h * w):.3g}")
    maps = layers.Conv2D(num_classes * num_maps, 1, name="wildcat_conv")(features)
    class_maps = ClassWisePool(num_maps, name="class_maps")(maps)
    pooled = WildcatPool2d(kmax, kmin, alpha, name="wildcat_pool" if num_classes > 1 else "logit")(class_maps)
    logit = SelectClass(num_classes - 1, name="logit")(pooled) if num_classes > 1 else pooled
    return logit, layers.Activation("sigmoid", dtype="float32", name="score")(logit)
