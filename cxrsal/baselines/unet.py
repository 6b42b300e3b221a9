"""U-Net (no pretraining) for [A]'s segmentation baseline: one flat functional graph,
grey [H, W, 1] in [0, 1] -> per-pixel probability [H, W, 1]."""

import numpy as np

from ..errors import CxrsalError


def build_unet(input_shape=(256, 256, 1), *, filters=16, depth=4):
    """Encoder of `depth` double-conv stages (filters doubling), decoder with skip connections."""
    import keras
    from keras import layers

    h, w = input_shape[:2]
    if h % (2 ** depth) or w % (2 ** depth):
        raise CxrsalError(f"U-Net input {h}x{w} must be divisible by 2^{depth} = {2 ** depth}")

    def block(x, f, name):
        for i in (1, 2):
            x = layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
            x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
        return x

    image = keras.Input((h, w, 1), name="image")
    x, skips = image, []
    for d in range(depth):
        x = block(x, filters * 2 ** d, f"down{d}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{d}_pool")(x)
    x = block(x, filters * 2 ** depth, "bottom")
    for d in reversed(range(depth)):
        x = layers.Conv2DTranspose(filters * 2 ** d, 2, strides=2, name=f"up{d}_transpose")(x)
        x = layers.Concatenate(name=f"up{d}_concat")([x, skips[d]])
        x = block(x, filters * 2 ** d, f"up{d}")
    logits = layers.Conv2D(1, 1, name="logits")(x)
    probability = layers.Activation("sigmoid", dtype="float32", name="probability")(logits)
    return keras.Model(image, probability, name="unet")


def classification_score(probability, threshold=0.5):
    """[A]'s image score from a segmentation map: the mean of the cells the network marks
    (sigmoid above `threshold`); 0 when it marks none."""
    p = np.asarray(probability, np.float64).reshape(len(probability), -1)
    marked = p > threshold
    sums = np.where(marked, p, 0.0).sum(axis=1)
    counts = marked.sum(axis=1)
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
