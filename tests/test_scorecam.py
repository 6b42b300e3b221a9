"""`scorecam` (Score-CAM through tf-keras-vis) against a slow loop over the channels written here."""

import keras
import numpy as np
from scipy.ndimage import zoom

from cxrsal.saliency import compute_maps

from helpers import images, small_cnn


def scorecam_by_hand(model, image):
    """Score-CAM (Wang et al. 2020): each feature channel, upsampled and min-max scaled, masks the
    image; the softmax probability of the positive class of [0, z] (= sigmoid(z)) on the masked
    image weights the channel; map = relu(sum_k weight_k A_k), upsampled bilinearly."""
    feats = np.asarray(keras.Model(model.input, model.get_layer("features").output)(image[None]))[0]
    logit = keras.Model(model.input, model.get_layer("logit").output)
    h, w = image.shape[:2]
    weights = []
    for k in range(feats.shape[-1]):
        up = zoom(feats[..., k], (h / feats.shape[0], w / feats.shape[1]), order=1, mode="nearest")
        mask = (up - up.min()) / (up.max() - up.min() + keras.config.epsilon())
        z = float(np.asarray(logit((image * mask[..., None])[None]))[0, 0])
        weights.append(1 / (1 + np.exp(-z)))
    cam = np.maximum(feats @ np.array(weights), 0)
    return zoom(cam, (h / cam.shape[0], w / cam.shape[1]), order=1)


def test_scorecam_equals_the_slow_loop():
    model = small_cnn(activation="relu", seed=3)
    x = images(2, seed=6)
    raw, _ = compute_maps(model, x, "scorecam", input_channels=1, batch_size=5)
    for i in range(2):
        np.testing.assert_allclose(raw[i], scorecam_by_hand(model, x[i]), rtol=1e-4, atol=1e-6)
    # Faster-Score-CAM: only the channels of largest spatial std
    few, _ = compute_maps(model, x, "scorecam", input_channels=1, max_n=2)
    assert few.shape == raw.shape and not np.allclose(few, raw)
