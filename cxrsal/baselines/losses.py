"""Focal + Dice loss of [A]'s U-Net baseline, as a serializable Keras loss."""

import keras
from keras import ops


def focal_loss(y_true, y_pred, *, gamma=2.0, alpha=0.25, eps=1e-7):
    """Binary focal loss per image [Lin et al. 2017]: mean over cells of
    -alpha_t (1 - p_t)^gamma log p_t, with p_t = p for positives and 1 - p for negatives."""
    p = ops.clip(y_pred, eps, 1.0 - eps)
    p_t = y_true * p + (1.0 - y_true) * (1.0 - p)
    alpha_t = y_true * alpha + (1.0 - y_true) * (1.0 - alpha)
    loss = -alpha_t * ops.power(1.0 - p_t, gamma) * ops.log(p_t)
    return ops.mean(ops.reshape(loss, (ops.shape(loss)[0], -1)), axis=-1)


def dice_loss(y_true, y_pred, *, smooth=1.0):
    """1 - (2 |X n Y| + s) / (|X| + |Y| + s) per image (soft Dice on probabilities)."""
    t = ops.reshape(y_true, (ops.shape(y_true)[0], -1))
    p = ops.reshape(y_pred, (ops.shape(y_pred)[0], -1))
    inter = ops.sum(t * p, axis=-1)
    return 1.0 - (2.0 * inter + smooth) / (ops.sum(t, axis=-1) + ops.sum(p, axis=-1) + smooth)


def batch_dice_loss(y_true, y_pred, *, smooth=1.0):
    """Soft Dice over all cells of the batch at once, repeated per image: an image without a mask
    then counts through its false-positive cells instead of scoring ~1 whatever it predicts."""
    t, p = ops.reshape(y_true, (1, -1)), ops.reshape(y_pred, (1, -1))
    loss = dice_loss(t, p, smooth=smooth)[0]
    return ops.zeros((ops.shape(y_true)[0],), loss.dtype) + loss


@keras.saving.register_keras_serializable(package="cxrsal")
class FocalDiceLoss(keras.losses.Loss):
    """focal_weight * focal + dice_weight * Dice (`dice`: "batch" or "image")."""

    def __init__(self, gamma=2.0, alpha=0.25, smooth=1.0, focal_weight=1.0, dice_weight=1.0, dice="batch",
                 name="focal_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        if dice not in ("batch", "image"):
            raise ValueError(f"dice must be batch or image, got {dice!r}")
        self.gamma, self.alpha, self.smooth = float(gamma), float(alpha), float(smooth)
        self.focal_weight, self.dice_weight, self.dice = float(focal_weight), float(dice_weight), dice

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        dice = batch_dice_loss if self.dice == "batch" else dice_loss
        return (self.focal_weight * focal_loss(y_true, y_pred, gamma=self.gamma, alpha=self.alpha)
                + self.dice_weight * dice(y_true, y_pred, smooth=self.smooth))

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha, "smooth": self.smooth,
                "focal_weight": self.focal_weight, "dice_weight": self.dice_weight, "dice": self.dice}
