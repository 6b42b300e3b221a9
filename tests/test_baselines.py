"""U-Net baseline pieces: losses against hand-computed values, the model, its image score, a few
training steps with falling loss."""

import math

import keras
import numpy as np
import pytest

from cxrsal.baselines.losses import FocalDiceLoss, batch_dice_loss, dice_loss, focal_loss
from cxrsal.baselines.unet import build_unet, classification_score
from cxrsal.errors import CxrsalError


def test_focal_loss_by_hand():
    # one image, two cells: (y=1, p=0.8) and (y=0, p=0.3)
    # cell 1: -0.25 * 0.2^2 * ln 0.8; cell 2: -0.75 * 0.3^2 * ln 0.7
    y = np.array([[1.0, 0.0]], np.float32)
    p = np.array([[0.8, 0.3]], np.float32)
    expected = (-0.25 * 0.04 * math.log(0.8) - 0.75 * 0.09 * math.log(0.7)) / 2
    assert float(focal_loss(y, p)[0]) == pytest.approx(expected, rel=1e-5)
    # gamma 0, alpha 0.5 is half the binary cross-entropy
    bce = -(math.log(0.8) + math.log(0.7)) / 2
    assert float(focal_loss(y, p, gamma=0.0, alpha=0.5)[0]) == pytest.approx(bce / 2, rel=1e-5)


def test_dice_loss_by_hand():
    y = np.array([[1.0, 1.0, 0.0, 0.0]], np.float32)
    p = np.array([[0.9, 0.5, 0.2, 0.0]], np.float32)
    # intersection 1.4, |X| 2, |Y| 1.6, smooth 1: 1 - (2.8 + 1) / (3.6 + 1)
    assert float(dice_loss(y, p)[0]) == pytest.approx(1 - 3.8 / 4.6, rel=1e-6)
    assert float(dice_loss(y, y, smooth=0.0)[0]) == pytest.approx(0.0, abs=1e-7)


def test_batch_dice_by_hand():
    # image 1: mask (1, 1), p (0.9, 0.5); image 2: no mask, p (0.2, 0.0)
    y = np.array([[1.0, 1.0], [0.0, 0.0]], np.float32)
    p = np.array([[0.9, 0.5], [0.2, 0.0]], np.float32)
    # over the batch: intersection 1.4, |X| 2, |Y| 1.6 -> the same value for both images
    np.testing.assert_allclose(batch_dice_loss(y, p), [1 - 3.8 / 4.6] * 2, rtol=1e-6)
    # per image the empty mask scores 1 - 1 / 1.2 whatever small p it predicts
    np.testing.assert_allclose(dice_loss(y, p), [1 - 3.8 / 4.4, 1 - 1 / 1.2], rtol=1e-6)


@pytest.mark.parametrize("dice", ["batch", "image"])
def test_focal_dice_sum_and_config(dice):
    y = np.zeros((2, 4, 4, 1), np.float32)
    y[0, 1:3, 1:3] = 1
    p = np.random.default_rng(0).uniform(0.05, 0.95, y.shape).astype(np.float32)
    loss = FocalDiceLoss(focal_weight=2.0, dice_weight=0.5, dice=dice)
    d = batch_dice_loss(y, p) if dice == "batch" else dice_loss(y, p)
    expected = np.mean(2.0 * np.asarray(focal_loss(y, p)) + 0.5 * np.asarray(d))
    assert float(loss(y, p)) == pytest.approx(expected, rel=1e-5)
    clone = FocalDiceLoss.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config() and clone.dice == dice
    with pytest.raises(ValueError, match="dice must be batch or image"):
        FocalDiceLoss(dice="pixel")


def test_unet_shapes_and_flat_graph():
    model = build_unet((64, 48, 1), filters=4, depth=3)
    assert model.output_shape == (None, 64, 48, 1)
    assert not any(isinstance(l, keras.Model) for l in model.layers)
    with pytest.raises(CxrsalError, match="divisible by 2\\^4"):
        build_unet((60, 60, 1))


def test_classification_score_mean_of_marked_cells():
    p = np.array([[0.9, 0.7, 0.1, 0.2], [0.1, 0.2, 0.3, 0.4]])
    np.testing.assert_allclose(classification_score(p), [0.8, 0.0])


def test_tiny_unet_learns_a_few_steps(tiny_run):
    from cxrsal.data.pipeline import PreparedSplit

    images, _, masks = PreparedSplit(tiny_run, "train").arrays()
    keras.utils.set_random_seed(0)
    model = build_unet((32, 32, 1), filters=4, depth=2)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=FocalDiceLoss())
    losses = []
    for _ in range(30):
        model.reset_metrics()          # train_on_batch reports a running mean otherwise
        losses.append(float(model.train_on_batch(images, masks)))
    assert np.isfinite(losses).all() and losses[-1] < losses[0] * 0.9
