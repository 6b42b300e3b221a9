"""Issue 12's saliency-side decisions, each against an independent reference: gradients per
input channel, per-channel noise, Guided GradCAM's order, the similarity maps, Spearman of
|maps|, the threshold's pairs, receptive-field cell centres and the dilated ResNets."""

import keras
import numpy as np
import pytest
from scipy.stats import spearmanr

from cxrsal.config import load_config
from cxrsal.errors import ConfigError, CxrsalError
from cxrsal.experiments.randomization import comparable, rank_map, similarity_map
from cxrsal.metrics import argmax_points, degradation_threshold
from cxrsal.models import build_model
from cxrsal.models.receptive_field import feature_geometry
from cxrsal.models.layers import GrayToBackbone
from cxrsal.saliency import compute_maps, noise_rng, normalize, reduce_2d

TORCH_STD = np.array([0.229, 0.224, 0.225])
TORCH_MEAN = np.array([0.485, 0.456, 0.406])


def channel_model(seed=0, size=8):
    """grey -> torch preprocessing (3 channels, per-channel scale) -> 3x3 conv whose weights
    differ per input channel -> ReLU -> GAP -> logit."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((size, size, 1), name="image")
    p = GrayToBackbone("torch", name="preprocess")(x)
    h = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(p)
    f = keras.layers.Identity(name="features")(h)
    z = keras.layers.Dense(1, name="logit")(keras.layers.GlobalAveragePooling2D(name="gap")(f))
    model = keras.Model(x, keras.layers.Activation("sigmoid", name="score")(z))
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 1, (3, 3, 3, 3)).astype(np.float32)          # [dy, dx, c_in, k]
    model.get_layer("conv").set_weights([kernel, rng.normal(0, 0.5, 3).astype(np.float32)])
    return model


def numpy_channel_gradients(model, image):
    """d logit / d x_c of the replicated [0, 1] image, by a slow loop over the conv (NumPy)."""
    return numpy_gradients_at(model, np.repeat(image, 3, axis=-1))


def images(n, size=8, seed=3):
    return np.random.default_rng(seed).random((n, size, size, 1)).astype(np.float32)


def test_grad_per_input_channel_equals_a_numpy_loop():
    model, x = channel_model(), images(2)
    raw, processed = compute_maps(model, x, "grad")                    # default: input_channels 3
    assert raw.shape == (2, 8, 8, 3)
    for xi, got, proc in zip(x, raw, processed):
        ref = numpy_channel_gradients(model, xi)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
        # the processed map is sum over c of |d logit / d x_c|, not |sum over c|
        np.testing.assert_allclose(proc, normalize(np.abs(ref).sum(-1))[0], rtol=1e-4, atol=1e-5)
        assert not np.allclose(np.abs(ref).sum(-1), np.abs(ref.sum(-1)), rtol=1e-2)
    one, _ = compute_maps(model, x, "grad", input_channels=1)          # the grey input: sum of channels
    np.testing.assert_allclose(one[..., 0], raw.sum(-1), rtol=1e-4, atol=1e-6)


def test_smoothgrad_draws_its_noise_per_channel():
    model, x = channel_model(seed=1), images(2, seed=4)
    samples, noise = 3, 0.15
    raw, _ = compute_maps(model, x, "sg", seed=5, indices=[7, 8], samples=samples, noise=noise)
    for xi, got, index in zip(x, raw, [7, 8]):
        x3 = np.repeat(xi, 3, axis=-1)
        draws = noise_rng(5, index).normal(0.0, noise * (xi.max() - xi.min()), size=(samples, *x3.shape))
        assert not np.allclose(draws[..., 0], draws[..., 1])
        acc = np.zeros(x3.shape)
        for d in draws.astype(np.float32):
            # the gradient at a noisy 3-channel point: the loop above, channel by channel
            g = numpy_gradients_at(model, x3 + d)
            acc += g * g
        np.testing.assert_allclose(got, acc / samples, rtol=1e-3, atol=1e-7)


def numpy_gradients_at(model, x3):
    """d logit / d x_c at a 3-channel [0, 1] point (channels may differ): logit = v . mean_p
    relu(conv(torch-scaled x) + b), differentiated tap by tap."""
    kernel, bias = model.get_layer("conv").get_weights()
    v = model.get_layer("logit").get_weights()[0][:, 0]
    h, w = x3.shape[:2]
    pad = np.pad((x3 - TORCH_MEAN) / TORCH_STD, ((1, 1), (1, 1), (0, 0)))
    grad = np.zeros((h, w, 3))
    for i in range(h):
        for j in range(w):
            pre = (pad[i:i + 3, j:j + 3, :, None] * kernel).sum((0, 1, 2)) + bias
            for k in np.flatnonzero(pre > 0):
                for dy in range(3):
                    for dx in range(3):
                        y, x = i + dy - 1, j + dx - 1
                        if 0 <= y < h and 0 <= x < w:
                            grad[y, x] += v[k] / (h * w) * kernel[dy, dx, :, k] / TORCH_STD
    return grad


def test_ggcam_orders():
    model, x = channel_model(seed=2, size=16), images(2, 16, seed=6)
    gbp, _ = compute_maps(model, x, "gbp")
    gcam, _ = compute_maps(model, x, "gcam")
    processed, _ = compute_maps(model, x, "ggcam")                     # [A]: each post-processed first
    raw, _ = compute_maps(model, x, "ggcam", order="raw")
    for i in range(2):
        a, b = normalize(np.abs(gbp[i]).sum(-1))[0], normalize(gcam[i])[0]
        np.testing.assert_allclose(processed[i], a * b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(raw[i], np.abs(gbp[i]).sum(-1) * gcam[i], rtol=1e-5, atol=1e-8)
    with pytest.raises(CxrsalError, match="ggcam.order 'sideways'"):
        compute_maps(model, x, "ggcam", order="sideways")


def test_similarity_maps_and_spearman_of_absolute_values():
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 1, (10, 10, 3))
    stored = {"raw": raw, "processed": normalize(reduce_2d(raw, channels=True))[0]}
    np.testing.assert_array_equal(similarity_map(stored, True, "processed"), stored["processed"])
    signed = raw.sum(-1)
    np.testing.assert_allclose(similarity_map(stored, True, "raw"),
                               (signed - signed.min()) / (signed.max() - signed.min()))
    np.testing.assert_allclose(comparable(raw, True), similarity_map(stored, True, "raw"))
    with pytest.raises(CxrsalError, match="similarity.maps 'both'"):
        similarity_map(stored, True, "both")
    # Spearman ranks |raw map|: a map and its negation correlate perfectly, as [A] intends
    other = {"raw": -raw}
    a, b = rank_map(stored, True).ravel(), rank_map(other, True).ravel()
    assert spearmanr(a, b).statistic == pytest.approx(1.0)
    assert spearmanr(signed.ravel(), (-signed).ravel()).statistic == pytest.approx(-1.0)


def test_threshold_pairs_reachable_from_config_and_cli():
    cfg = load_config(overrides=["randomization.pairs=7", "randomization.pairs_per_image=3"])
    assert (cfg.randomization.pairs, cfg.randomization.pairs_per_image) == (7, 3)
    maps = np.random.default_rng(1).random((5, 8, 8))
    _, pairs, _ = degradation_threshold(maps, pairs=7, seed=0, return_pairs=True)
    assert len(pairs) == 7 and (pairs[:, 0] != pairs[:, 1]).all()
    _, pairs, _ = degradation_threshold(maps, pairs_per_image=3, seed=0, return_pairs=True)
    assert len(pairs) == 15 and (np.bincount(pairs[:, 0]) == 3).all()
    from click.testing import CliRunner

    from cxrsal.cli.main import cli

    help_text = CliRunner().invoke(cli, ["randomize", "--help"]).output
    assert "--pairs-per-image" in help_text and "--pairs " in help_text and "--similarity-maps" in help_text
    assert "--order [top-down|bottom-up|independent]" in help_text and "--smooth-samples" in help_text
    r = CliRunner().invoke(cli, ["randomize", "--model", "x", "--out", "y", "--order", "bottom-up", "--independent"])
    assert r.exit_code == 2 and "--independent contradicts --order bottom-up" in r.output


def test_defaults_and_the_a_configs():
    cfg = load_config()
    assert cfg.similarity.maps == "processed" and cfg.similarity.data_range == 1.0
    assert cfg.saliency.input_channels == 3 and cfg.ggcam.order == "processed"
    assert cfg.randomization.n_images == 0 and cfg.compare.n_images == 0          # all positives, as [A]
    assert cfg.pointwise.centres == "receptive-field"
    from pathlib import Path

    configs = Path(__file__).resolve().parents[1] / "configs"
    for name in ("a_rsna_inceptionv3", "a_rsna_densenet121", "a_siim_inceptionv3", "a_siim_densenet121",
                 "a_randomization", "a_repeatability"):
        a = load_config(configs / f"{name}.yaml")
        # [A]'s code: processed maps, data_range 2, the predicted class, 10 IG steps
        assert (a.similarity.maps, a.similarity.data_range, a.saliency.target, a.saliency.ig_steps) == \
            ("processed", 2.0, "predicted", 10), name
    for bad, match in (("similarity.maps=both", "similarity.maps must be one of processed, raw, got 'both'"),
                       ("saliency.input_channels=2", "saliency.input_channels must be one of 3, 1, got 2"),
                       ("pointwise.centres=middle", "pointwise.centres must be one of receptive-field, grid, got"),
                       ("similarity.data_range=0", "similarity.data_range must be a number > 0, got 0")):
        with pytest.raises(ConfigError, match=match):
            load_config(overrides=[bad])


# ------------------------------------------------------------------ cell geometry
@pytest.mark.parametrize("arch, start, jump", [
    # by hand from each network's layers (valid padding after explicit ZeroPadding2D):
    # ResNet: 7x7/2 conv after 3 px padding and 3x3/2 pool after 1 px start at pixel 0, and
    # so does every later stride-2 3x3 (1 px padding) or 1x1 layer: start 0, cell centres
    # 32 i + 1/2, 15.5 px before [B]'s (i + 1/2) 32
    ("resnet18", 0.0, 32), ("resnet50", 0.0, 32),
    # DenseNet: each 2x2/2 average pool of a transition moves the start by half its stride
    # in input pixels: 2 + 4 + 8 = 14 -> centres 32 i + 14.5, 1.5 px before the grid
    ("densenet121", 14.0, 32),
    # VGG-19: 'same' 3x3 convs; four 2x2/2 pools (block5's not used) -> 0.5 + 1 + 2 + 4 = 7.5:
    # centres 16 i + 8, on the grid
    ("vgg19", 7.5, 16)])
def test_receptive_field_centres_by_hand(arch, start, jump):
    geo = feature_geometry(build_model(arch, "classification", (224, 224, 1)))
    assert geo["start"] == [start, start] and geo["jump"] == [jump, jump]
    grid_centre = jump / 2
    assert {"resnet18": 15.5, "resnet50": 15.5, "densenet121": 1.5, "vgg19": 0.0}[arch] == \
        grid_centre - (start + 0.5)


def test_receptive_field_centre_measured_by_a_gradient():
    """An all-positive linear network: the gradient of one interior cell is symmetric about its
    receptive field's centre, so its centroid measures the centre independently."""
    keras.utils.set_random_seed(0)
    x = keras.Input((64, 64, 1), name="image")
    h = keras.layers.ZeroPadding2D(2)(x)
    h = keras.layers.Conv2D(1, 5, strides=2, kernel_initializer="ones", use_bias=False)(h)
    h = keras.layers.AveragePooling2D(2, strides=2)(h)
    h = keras.layers.Conv2D(1, 3, strides=2, padding="same", kernel_initializer="ones", use_bias=False)(h)
    h = keras.layers.Conv2D(1, 3, dilation_rate=2, padding="same", kernel_initializer="ones", use_bias=False)(h)
    f = keras.layers.Identity(name="features")(h)
    model = keras.Model(x, f)
    geo = feature_geometry(model)
    import tensorflow as tf

    t = tf.constant(np.ones((1, 64, 64, 1), np.float32))
    for i, j in ((3, 3), (4, 3)):   # receptive fields inside the image (no padding taps)
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = model(t)[0, i, j, 0]
        g = tape.gradient(y, t).numpy()[0, ..., 0]
        ys, xs = np.mgrid[:64, :64] + 0.5
        centre = ((g * ys).sum() / g.sum(), (g * xs).sum() / g.sum())
        expected = (geo["start"][0] + i * geo["jump"][0] + 0.5, geo["start"][1] + j * geo["jump"][1] + 0.5)
        np.testing.assert_allclose(centre, expected, atol=1e-4)


def test_argmax_points_on_the_grid_and_at_receptive_field_centres():
    native = np.zeros((2, 2))
    native[1, 0] = 1.0
    assert argmax_points([native], 64).tolist() == [[48.0, 16.0]]                 # [B]'s grid
    geo = {"start": [0.0, 0.0], "jump": [32, 32], "size": [2, 2]}
    assert argmax_points([native], 64, geometry=geo).tolist() == [[32.5, 0.5]]
    # the same cell upsampled to the input (bilinear, half-pixel): the peak pixel maps back to it
    up = np.zeros((64, 64))
    up[47, 15] = 1.0        # pixel centre (47.5, 15.5) = feature coordinate (0.984, -0.016)
    np.testing.assert_allclose(argmax_points([up], 64, geometry=geo)[0], [0.984375 * 32 + 0.5, -0.015625 * 32 + 0.5])
    np.testing.assert_allclose(argmax_points([up], 64)[0], [47.5, 15.5])


def test_dilated_resnet_keeps_kernels_and_gets_finer_maps():
    coarse = build_model("resnet18", "classification", (64, 64, 1))
    fine = build_model("resnet18", "classification", (64, 64, 1), output_stride=8)
    assert coarse.get_layer("features").output.shape[1:3] == (2, 2)
    assert fine.get_layer("features").output.shape[1:3] == (8, 8)
    assert [w.shape for w in coarse.weights] == [w.shape for w in fine.weights]   # weights transfer
    fine.set_weights(coarse.get_weights())
    geo = feature_geometry(fine)
    assert geo["jump"] == [8, 8] and geo["size"] == [8, 8]
    with pytest.raises(CxrsalError, match="output_stride 8: resnet50 offers 32"):
        build_model("resnet50", "classification", (64, 64, 1), output_stride=8)
