"""`gcampp` (GradCAM++ through tf-keras-vis) against its closed form for a GAP + linear head."""

import keras
import numpy as np
from scipy.ndimage import zoom

from cxrsal.saliency import compute_maps, postprocess

from helpers import images, small_cnn


def test_gradcampp_closed_form_for_a_linear_head():
    # logit S = sum_k w_k mean_ij A_ijk + b: dS/dA_ijk = w_k / (h w), the same at every cell, so
    # GradCAM++'s alphas are equal over the cells (tf-keras-vis scales them to sum 1 per channel)
    # and its weights are relu(exp(S) w_k) / (h w): the map is relu(sum_k relu(w_k) A_k) up to a
    # positive factor, upsampled bilinearly (scipy zoom, order 1), then post-processed as GradCAM
    model = small_cnn(activation="relu", seed=2)
    x = images(2, seed=5)
    raw, processed = compute_maps(model, x, "gcampp", input_channels=1)
    feats = np.asarray(keras.Model(model.input, model.get_layer("features").output)(x))
    w = model.get_layer("logit").get_weights()[0][:, 0]
    for i in range(2):
        cam = np.maximum(feats[i] @ np.maximum(w, 0), 0)
        want = zoom(cam, (16 / cam.shape[0], 16 / cam.shape[1]), order=1)
        ratio = raw[i].max() / want.max()
        np.testing.assert_allclose(raw[i], want * ratio, rtol=1e-4, atol=1e-6 * raw[i].max())
        np.testing.assert_allclose(processed[i], postprocess(want, channels=False)[0], atol=1e-5)
