"""U-Net (no pretraining) for [A]'s segmentation baseline: one flat functional graph,
grey [H, W, 1] in [0, 1] -> per-pixel probability [H, W, 1]."""

import numpy as np

from ..errors import CxrsalError
from ..runs import register_task
from .predict import BaselineTask


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
            # PyTorch's momentum (0.1 there, 0.9 here): with Keras' 0.99 the moving statistics lagged
            # the weights so far on short trainings that inference-mode maps were flat (measured)
            x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{i}")(x)
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


def mask_dataset(data_dir, split, size, pipeline, *, epoch=0, steps=0):
    """(images, masks) batches of a prepared split for the U-Net (flips apply to both)."""
    from ..data.pipeline import dataset_from_config

    ds = dataset_from_config(data_dir, split, pipeline, image_size=size, start_epoch=epoch, advance=False,
                             repeat=bool(steps))
    return ds.map(lambda images, labels, masks: (images, masks))


def dice_score(mask, probability, threshold=0.5):
    """Dice of the thresholded map with a non-empty mask (hard, for the run card)."""
    m, p = np.asarray(mask) > 0, np.asarray(probability) > threshold
    return 2.0 * (m & p).sum() / (m.sum() + p.sum())


@register_task
class UNetTask(BaselineTask):
    """`cxrsal train-baseline unet`: masks (SIIM; RSNA boxes drawn as masks work too), focal +
    Dice loss, early stopping and reduce-on-plateau on the validation loss."""

    name = "unet"

    def __init__(self, cfg, data_dir):
        from ..data.prepare import check_prepared

        super().__init__(cfg, data_dir)
        b = cfg.baseline
        if b.dice not in ("batch", "image"):
            raise CxrsalError(f"baseline.dice={b.dice!r}: valid choices: batch, image")
        size = cfg.model.input_size or check_prepared(data_dir)["size"]
        if size % (2 ** b.depth):
            raise CxrsalError(f"U-Net input {size} px must be divisible by 2^baseline.depth = {2 ** b.depth} "
                              "(set model.input_size, or baseline.depth lower)")

    def describe(self):
        from ..config import to_dict

        return {"arch": "unet", "head": "segmentation", "options": to_dict(self.cfg)["baseline"]}

    def build(self, size):
        import keras

        from .losses import FocalDiceLoss

        b = self.cfg.baseline
        model = build_unet((size, size, 1), filters=b.filters, depth=b.depth)
        model.compile(optimizer=keras.optimizers.Adam(self.cfg.train.lr),
                      loss=FocalDiceLoss(gamma=b.focal_gamma, alpha=b.focal_alpha, dice_weight=b.dice_weight,
                                         dice=b.dice))
        return model

    def dataset(self, split, size, epoch=0, steps=0):
        return mask_dataset(self.data_dir, split, size, self.cfg.pipeline, epoch=epoch, steps=steps)

    def predict(self, model, images, rows, masks):
        """Probability maps; image score: the mean of the cells above 0.5 ([A]); Dice of positives."""
        prob = np.asarray(model.predict_on_batch(images), np.float32)[..., 0]
        self._dice = getattr(self, "_dice", [])
        self._dice += [dice_score(m[..., 0], p) for r, p, m in zip(rows, prob, masks) if r["label"] == 1 and m.any()]
        return prob, classification_score(prob)

    def finish(self, out, split, metrics):
        dice = getattr(self, "_dice", [])
        metrics[f"{split}_dice"] = float(np.mean(dice)) if dice else float("nan")

    def summary(self, metrics, split):
        return f"Dice {metrics[f'{split}_dice']:.4f} (positives)"

    @classmethod
    def usage(cls, folder):
        return f"seg:{folder / 'maps'}"
