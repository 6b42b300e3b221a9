"""Serializable Keras layers of cxrsal models: input preprocessing and the WILDCAT pooling."""

import keras
from keras import ops

PACKAGE = "cxrsal"

# ImageNet statistics used by the backbones' own preprocessing (Keras applications)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
MODES = ("tf", "torch", "caffe", "unit", "pixels")


@keras.saving.register_keras_serializable(package=PACKAGE)
class GrayToBackbone(keras.layers.Layer):
    """[B, H, W, 1] grey in [0, 1] -> [B, H, W, 3] scaled as the backbone expects (a 3-channel
    [0, 1] input is scaled without the replication).

    `tf`: [-1, 1] (InceptionV3, as [A]); `torch`: ImageNet mean/std (DenseNet, ResNet-18/34);
    `caffe`: 0-255 BGR minus the ImageNet means (ResNet-50/101/152, VGG-19); for a user's own
    model (`cxrsal.models.external`): `unit` [0, 1] as it is, `pixels` 0-255 (the model scales
    inside). `channels` 1 keeps the grey image one channel (a model with a grey input).
    """

    def __init__(self, mode="tf", channels=3, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"unknown preprocessing mode {mode!r}; valid choices: {', '.join(MODES)}")
        if channels not in (1, 3) or (channels == 1 and mode not in ("tf", "unit", "pixels")):
            raise ValueError(f"channels {channels} with mode {mode!r}: 3, or 1 with tf, unit or pixels")
        self.mode, self.channels = mode, channels

    def call(self, x):
        if x.shape[-1] == 1 and self.channels == 3:
            x = ops.concatenate([x, x, x], axis=-1)
        # else: already the replicated 3-channel [0, 1] image (saliency differentiates with
        # respect to it, as [A]); only the scaling applies
        if self.mode == "unit":
            return x
        if self.mode == "pixels":
            return x * 255.0
        if self.mode == "tf":
            return x * 2.0 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(_TORCH_MEAN, dtype=x.dtype)
            std = ops.convert_to_tensor(_TORCH_STD, dtype=x.dtype)
            return (x - mean) / std
        return x * 255.0 - ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=x.dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "channels": self.channels}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClassWisePool(keras.layers.Layer):
    """Mean of the `num_maps` modality maps of each class, channels-last.

    [B, H, W, C * M] -> [B, H, W, C]; channels c*M ... c*M + M - 1 belong to class c
    (the WILDCAT reference's ordering).
    """

    def __init__(self, num_maps, **kwargs):
        super().__init__(**kwargs)
        if int(num_maps) < 1:
            raise ValueError(f"num_maps must be at least 1, got {num_maps}")
        self.num_maps = int(num_maps)

    def call(self, x):
        channels = x.shape[-1]
        if channels % self.num_maps:
            raise ValueError(f"{channels} channels are not a multiple of num_maps={self.num_maps}")
        shape = ops.shape(x)
        x = ops.reshape(x, (shape[0], shape[1], shape[2], channels // self.num_maps, self.num_maps))
        return ops.mean(x, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // self.num_maps)

    def get_config(self):
        return {**super().get_config(), "num_maps": self.num_maps}


def resolve_k(k, n):
    """Number of regions for a WILDCAT k on a map of n cells (docs/methods.md):
    k <= 0 -> 0; 0 < k < 1 -> round(k * n) (Python's round); k > n -> n; else int(k)."""
    if k <= 0:
        return 0
    if k < 1:
        return round(k * n)
    if k > n:
        return int(n)
    return int(k)


@keras.saving.register_keras_serializable(package=PACKAGE)
class WildcatPool2d(keras.layers.Layer):
    """WILDCAT spatial pooling [Durand et al., CVPR 2017], channels-last: [B, H, W, C] -> [B, C].

    Score = mean of the `kmax` highest cells; when `kmin` > 0 and `alpha` != 0 it is
    (mean of the kmax highest + alpha * mean of the kmin lowest) / 2, the reference
    implementation's formula. `kmin=None` means kmin = kmax. A float alpha of 0.0 is treated as
    zero (the reference's `alpha is not 0` test halves the score there; not reproduced).
    """

    def __init__(self, kmax=1, kmin=None, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.kmax = kmax
        self.kmin = kmin
        self.alpha = float(alpha)

    def ks(self, n):
        kmax = resolve_k(self.kmax, n)
        kmin = kmax if self.kmin is None else resolve_k(self.kmin, n)
        if kmax < 1:
            raise ValueError(f"WildcatPool2d: kmax={self.kmax} selects no region of the {n}-cell map")
        return kmax, kmin

    def call(self, x):
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        if h is None or w is None:
            raise ValueError("WildcatPool2d needs a known spatial size (build the model with a fixed input size)")
        n = h * w
        kmax, kmin = self.ks(n)
        flat = ops.transpose(ops.reshape(x, (-1, n, c)), (0, 2, 1))      # [B, C, n]
        top = ops.top_k(flat, kmax, sorted=False)[0]
        score = ops.mean(top, axis=-1)
        if kmin > 0 and self.alpha != 0:
            low = -ops.top_k(-flat, kmin, sorted=False)[0]
            score = (score + self.alpha * ops.mean(low, axis=-1)) / 2.0
        return score

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "kmax": self.kmax, "kmin": self.kmin, "alpha": self.alpha}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SelectClass(keras.layers.Layer):
    """Column `index` of [B, K] as [B, 1] (the positive class of a two-way head)."""

    def __init__(self, index=1, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, x):
        return x[:, self.index:self.index + 1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "index": self.index}


@keras.saving.register_keras_serializable(package=PACKAGE)
class LogOdds(keras.layers.Layer):
    """The log-odds of class `index` of probabilities [B, K]: log p - log(1 - p), as [B, 1].

    For a sigmoid output it is the pre-activation logit itself (the inverse of the sigmoid), so
    its gradients are the logit's; for a two-way softmax it is z1 - z0. What cxrsal explains of a
    SavedModel, whose pre-activation logits cannot be reached. A saturated probability (0 or 1
    in float32) has no finite log-odds."""

    def __init__(self, index=0, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, p):
        from keras import ops

        q = p[:, self.index:self.index + 1]
        return ops.log(q) - ops.log1p(-q)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "index": self.index}
