"""Saliency methods against analytic models, slow loops written here, NumPy formulas and PAIR itself."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from saliency import core as pair
from skimage.transform import resize

from cxrsal.errors import CxrsalError
from cxrsal.models import build_model, feature_model, logit_model
from cxrsal.saliency import ModelAdapter, compute_maps, noise_rng, normalize, reduce_2d
from helpers import channel_model, images, small_cnn


class Analytic(keras.layers.Layer):
    """logit = sum(a * x + b * x^2): d logit / dx = a + 2 b x (PAIR's own test uses f = 5x + y^2)."""

    def __init__(self, a, b, **kw):
        super().__init__(**kw)
        self.a, self.b = a, b

    def call(self, x):
        return keras.ops.sum(self.a * x + self.b * x * x, axis=(1, 2, 3))[:, None]


def analytic_model(a, b, size=6):
    x = keras.Input((size, size, 1), name="image")
    f = keras.layers.Identity(name="features")(x)
    z = Analytic(a, b, name="logit")(f)
    return keras.Model(x, keras.layers.Activation("sigmoid", name="score")(z))


def tape_grad(model, x):
    """Reference gradient of the logit, one image at a time."""
    lm = logit_model(model)
    out = []
    for xi in x:
        t = tf.constant(xi[None])
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = tf.reduce_sum(lm(t))
        out.append(tape.gradient(y, t).numpy()[0])
    return np.stack(out)


def test_unknown_method_or_parameter_is_one_line():
    with pytest.raises(CxrsalError, match="unknown saliency method 'lime'; valid choices"):
        compute_maps(small_cnn(), images(1), "lime")
    with pytest.raises(CxrsalError, match="unknown parameter"):
        compute_maps(small_cnn(), images(1), "ig", stepz=3)


def test_grad_analytic():
    x = images(2, 6)
    raw, _ = compute_maps(analytic_model(5.0, 1.5), x, "grad")
    np.testing.assert_allclose(raw, 5.0 + 3.0 * x, rtol=1e-6)


def test_predicted_target_flips_a_negative_sigmoid_prediction():
    x = images(2, 6)
    model = analytic_model(-5.0, 0.0)          # logit < 0 everywhere: predicted negative
    raw, _ = compute_maps(model, x, "grad", target="predicted")
    np.testing.assert_allclose(raw, 5.0 * np.ones_like(x), rtol=1e-6)


def test_ig_completeness():
    model = small_cnn()
    x = images(2)
    raw, _ = compute_maps(model, x, "ig", steps=600)
    lm = logit_model(model)
    f = np.asarray(lm(x))[:, 0] - np.asarray(lm(np.zeros_like(x)))[:, 0]
    np.testing.assert_allclose(raw.reshape(2, -1).sum(1), f, rtol=2e-2, atol=1e-4)


def test_ig_analytic_exact_for_a_quadratic():
    # for f = sum(a x + b x^2) from a zero baseline, IG = x * (a + b x) exactly (mean of the
    # gradient along the path) -- PAIR's Riemann sum over linspace(0, 1, steps) is exact for a
    # linear gradient
    x = images(1, 6)
    raw, _ = compute_maps(analytic_model(2.0, 3.0), x, "ig", steps=7)
    np.testing.assert_allclose(raw, x * (2.0 + 3.0 * x), rtol=1e-5)


@pytest.mark.parametrize("method, magnitude", [("sg", True), ("sg", False), ("sig", True)])
def test_smoothing_equals_a_plain_loop(method, magnitude):
    model = small_cnn()
    x = images(2)
    samples, noise, steps = 5, 0.15, 4
    params = dict(samples=samples, noise=noise, magnitude=magnitude)
    if method == "sig":
        params["steps"] = steps
    raw, _ = compute_maps(model, x, method, seed=7, indices=[10, 11], **params)
    expected = []
    for xi, index in zip(x, [10, 11]):
        rng = noise_rng(7, index)      # the documented stream of image `index`
        draws = rng.normal(0.0, noise * (xi.max() - xi.min()), size=(samples, *xi.shape)).astype(np.float32)
        acc = np.zeros(xi.shape)
        for d in draws:
            noisy = (xi + d)[None]
            if method == "sg":
                g = tape_grad(model, noisy)[0]
            else:   # IG from black with PAIR's path: linspace(0, 1, steps), both ends included
                path = np.stack([a * noisy[0] for a in np.linspace(0, 1, steps)])
                g = tape_grad(model, path).sum(0) * noisy[0] / steps
            acc += g * g if magnitude else g
        expected.append(acc / samples)
    np.testing.assert_allclose(raw, np.stack(expected), rtol=1e-4, atol=1e-7)


def test_gcam_numpy_formula():
    model = small_cnn()
    x = images(3)
    raw, _ = compute_maps(model, x, "gcam")
    fm = feature_model(model)
    for xi, got in zip(x, raw):
        t = tf.constant(xi[None])
        with tf.GradientTape() as tape:
            a, z = fm(t)
            y = tf.reduce_sum(z)
        g = tape.gradient(y, a).numpy()[0]
        a = a.numpy()[0]
        cam = np.maximum((a * g.mean(axis=(0, 1))).sum(-1), 0)
        if cam.max() > 0:
            cam = cam / cam.max()
        np.testing.assert_allclose(got, resize(cam, xi.shape[:2]), rtol=1e-4, atol=1e-6)


def test_gbp_two_layer_relu_by_hand():
    keras.utils.set_random_seed(3)
    inp = keras.Input((3, 3, 1), name="image")
    flat = keras.layers.Flatten()(inp)
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(flat)
    f = keras.layers.Identity(name="features")(hidden)
    model = keras.Model(inp, keras.layers.Activation("sigmoid", name="score")(keras.layers.Dense(1, name="logit")(f)))
    x = images(4, 3, seed=5) - 0.5
    raw, _ = compute_maps(model, x, "gbp")
    w1, b1 = model.get_layer("hidden").get_weights()
    w2 = model.get_layer("logit").get_weights()[0][:, 0]
    for xi, got in zip(x, raw):
        z1 = xi.reshape(-1) @ w1 + b1
        # guided ReLU: the gradient passes where the unit's input > 0 and the incoming gradient > 0
        passed = w2 * (z1 > 0) * (w2 > 0)
        np.testing.assert_allclose(got.reshape(-1), w1 @ passed, rtol=1e-5, atol=1e-7)
    assert model.get_layer("hidden").activation is keras.activations.relu   # the model is untouched


def test_gbp_equals_tf_keras_vis_guided_backprop():
    # an independent implementation: tf-keras-vis' model modifier swaps every ReLU activation of a
    # copy for its guided one; the gradient of the logit through that copy is Guided Backprop
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from tf_keras_vis.utils.model_modifiers import GuidedBackpropagation

    keras.utils.set_random_seed(8)
    model = build_model("resnet18", "classification", (32, 32, 1), output_stride=8)
    x = images(3, 32, seed=8)
    raw, _ = compute_maps(model, x, "gbp", input_channels=1)
    copy = keras.models.clone_model(logit_model(model))
    copy.set_weights(logit_model(model).get_weights())
    GuidedBackpropagation()(copy)
    t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(t)
        y = tf.reduce_sum(copy(t, training=False))
    want = tape.gradient(y, t).numpy()
    assert np.abs(want).max() > 0
    np.testing.assert_allclose(raw, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())


def test_ggcam_is_gbp_times_gcam():
    model = small_cnn(activation="relu")
    x = images(2)
    gbp, _ = compute_maps(model, x, "gbp")
    gcam, _ = compute_maps(model, x, "gcam")
    ggcam, _ = compute_maps(model, x, "ggcam", order="raw")
    np.testing.assert_allclose(ggcam, np.abs(gbp).sum(-1) * gcam, rtol=1e-5, atol=1e-8)


def pair_cmf(model):
    """A call_model_function written from PAIR's README, one batch at a time."""
    fm = feature_model(model)

    def call(x, call_model_args=None, expected_keys=None):
        t = tf.constant(np.asarray(x, np.float32))
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(t)
            a, z = fm(t)
            y = z[:, 0]
        if pair.base.INPUT_OUTPUT_GRADIENTS in expected_keys:
            return {pair.base.INPUT_OUTPUT_GRADIENTS: tape.gradient(y, t).numpy()}
        return {pair.base.CONVOLUTION_LAYER_VALUES: a.numpy(),
                pair.base.CONVOLUTION_OUTPUT_GRADIENTS: tape.gradient(y, a).numpy()}
    return call


def test_agrees_with_pair_called_directly():
    model = build_model("resnet18", "classification", (32, 32, 1))
    x = images(2, 32)
    cmf = pair_cmf(model)
    # PAIR differentiates with respect to the model's own (grey) input: input_channels 1
    grad, _ = compute_maps(model, x, "grad", input_channels=1)
    ig, _ = compute_maps(model, x, "ig", steps=25, input_channels=1)
    gcam, _ = compute_maps(model, x, "gcam")
    for i, xi in enumerate(x):
        np.testing.assert_allclose(grad[i], pair.GradientSaliency().GetMask(xi, cmf), rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(ig[i], pair.IntegratedGradients().GetMask(
            xi, cmf, x_baseline=np.zeros_like(xi), x_steps=25, batch_size=1), rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(gcam[i], pair.GradCam().GetMask(xi, cmf, should_resize=True, three_dims=False),
                                   rtol=1e-4, atol=1e-6)


def test_xrai_agrees_with_pair_called_directly():
    model = small_cnn(size=32)
    x = images(1, 32)
    got, processed = compute_maps(model, x, "xrai", steps=20)
    ref = pair.XRAI().GetMask(x[0], pair_cmf(model), extra_parameters=pair.XRAIParameters(steps=20))
    np.testing.assert_allclose(got[0], ref, rtol=1e-4, atol=1e-6)
    assert got.shape == (1, 32, 32) and processed.shape == (1, 32, 32)


def bilinear(m, h, w):
    """Half-pixel-centre bilinear upsampling with edge clamping (TensorFlow's resize)."""
    H, W = m.shape
    ys = np.clip((np.arange(h) + 0.5) * H / h - 0.5, 0, H - 1)
    xs = np.clip((np.arange(w) + 0.5) * W / w - 0.5, 0, W - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, H - 1), np.minimum(x0 + 1, W - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = m[y0][:, x0] * (1 - fx) + m[y0][:, x1] * fx
    bottom = m[y1][:, x0] * (1 - fx) + m[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def test_wildcat_map_is_the_upsampled_class_map():
    model = build_model("resnet18", "wildcat", (96, 96, 1), num_maps=2)
    x = images(2, 96)
    raw, _ = compute_maps(model, x, "wildcat")
    maps = np.asarray(keras.Model(model.input, model.get_layer("class_maps").output)(x))[..., 0]
    assert maps.shape == (2, 3, 3)
    for got, m in zip(raw, maps):
        np.testing.assert_allclose(got, bilinear(m, 96, 96), rtol=1e-5, atol=1e-6)
    with pytest.raises(CxrsalError, match="no WILDCAT head"):
        compute_maps(small_cnn(), images(1), "wildcat")


def test_postprocess_hand_made():
    raw = np.zeros((2, 2, 3))
    raw[0, 0] = [1, -2, 0.5]
    raw[1, 1] = [-1, -1, -1]
    np.testing.assert_allclose(reduce_2d(raw, channels=True), [[3.5, 0], [0, 3]])
    # 2-D maps keep their sign: no abs
    np.testing.assert_allclose(reduce_2d(np.array([[-1.0, 2.0]]), channels=False), [[-1.0, 2.0]])
    # 100 values 0..99: p99 = 98.01 (NumPy's linear interpolation); 99 is clipped to 1
    m = np.arange(100, dtype=float).reshape(10, 10)
    out, flag = normalize(m)
    np.testing.assert_allclose(out.ravel()[:99], np.arange(99) / 98.01, rtol=1e-6)
    assert out.ravel()[99] == 1.0 and out.min() == 0.0 and not flag
    out, flag = normalize(np.full((4, 4), 3.0))
    assert flag and not out.any() and not np.isnan(out).any()
    sparse = np.zeros((20, 20))
    sparse[0, 0] = 5.0       # p99 equals the minimum: plain min-max
    out, flag = normalize(sparse)
    assert not flag and out[0, 0] == 1.0 and out.sum() == 1.0


def test_fast_segments_equal_pairs():
    from saliency.core.xrai import _get_segments_felzenszwalb

    from cxrsal.saliency.xrai import _segments

    image = images(1, 48, seed=9)[0]
    ours, theirs = _segments(image), _get_segments_felzenszwalb(image)
    assert len(ours) == len(theirs) > 1
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_guided_copy_follows_weight_changes():
    # randomization changes a model's weights in place between calls of one adapter
    model = small_cnn(activation="relu")
    x = images(2)
    adapter = ModelAdapter(model)
    before, _ = compute_maps(adapter, x, "gbp")
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in model.get_weights()])
    after, _ = compute_maps(adapter, x, "gbp")
    fresh, _ = compute_maps(ModelAdapter(model), x, "gbp")
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, fresh, rtol=1e-6, atol=1e-9)


def test_xrai_segments_are_computed_once_per_image_content(monkeypatch):
    """The segment cache: the second XRAI of the same images (another model, a randomization step)
    segments nothing again and gives the same maps bit for bit; another image is a miss; the
    byte budget evicts the least recently used."""
    from saliency.core.xrai import _get_segments_felzenszwalb

    from cxrsal.saliency import xrai

    calls = []
    original = xrai._felzenszwalb
    monkeypatch.setattr(xrai, "_felzenszwalb", lambda image: calls.append(1) or original(image))
    monkeypatch.setattr(xrai, "SEGMENTS", xrai.SegmentCache())
    model = small_cnn(size=32)
    x = images(2, 32, seed=21)
    first, _ = compute_maps(model, x, "xrai", steps=5)
    assert len(calls) == 2 and (xrai.SEGMENTS.hits, xrai.SEGMENTS.misses) == (0, 2)
    again, _ = compute_maps(model, x, "xrai", steps=5)
    assert len(calls) == 2 and xrai.SEGMENTS.hits == 2
    np.testing.assert_array_equal(first, again)
    # a hit unpacks PAIR's own masks
    for a, b in zip(xrai._segments(x[0]), _get_segments_felzenszwalb(x[0])):
        np.testing.assert_array_equal(a, b)
    other = x[0].copy()
    other[0, 0, 0] += 1e-3                       # one value changed: another image
    xrai._segments(other)
    assert len(calls) == 3
    # budget of about one image's masks: the older entries go, the newest stays
    small = xrai.SegmentCache(max_bytes=xrai.SEGMENTS.bytes // 3 + 1)
    for image in (x[0], x[1], other):
        small.get(image, original)
    assert len(small._items) == 1 and small.bytes <= small.max_bytes
    small.get(other, lambda image: pytest.fail("evicted the newest entry"))


XRAI_IMPORT = """
import sys
import numpy as np
from cxrsal.saliency.xrai import Xrai
assert "saliency.core" not in sys.modules, "PAIR already imported: the probe would prove nothing"
class Stop(Exception):
    pass
class Probe:
    def submit(self, f, *args):
        print("PAIR imported before the worker thread's first task:", "saliency.core" in sys.modules)
        raise Stop
try:
    Xrai().start(None, np.zeros((1, 8, 8, 3), np.float32), np.ones(1, np.int32), None, Probe(), steps=2)
except Stop:
    pass
"""


def test_xrai_imports_pair_before_its_worker_thread_does():
    """Two threads importing PAIR at once deadlock on its package cycle (a resumed run with only
    XRAI left: segments on the worker thread, IG here): `start` imports it on its own thread
    before submitting anything. A fresh process, so PAIR is not imported yet."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", XRAI_IMPORT], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "PAIR imported before the worker thread's first task: True" in r.stdout


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


def conv_relu_net(seed=4):
    """4x4 grey input -> 3x3 valid convolution, 2 filters, ReLU ("features", 2x2x2) -> average
    pool -> one logit."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((4, 4, 1), name="image")
    a = keras.layers.Conv2D(2, 3, padding="valid", activation="relu", name="features")(x)
    z = keras.layers.Dense(1, name="logit")(keras.layers.GlobalAveragePooling2D(name="gap")(a))
    model = keras.Model(x, keras.layers.Activation("sigmoid", name="score")(z))
    w = np.random.default_rng(seed).normal(0, 1, (3, 3, 1, 2)).astype(np.float32)
    model.get_layer("features").set_weights([w, np.array([0.1, -0.1], np.float32)])
    model.get_layer("logit").set_weights([np.array([[1.5], [-0.7]], np.float32), np.zeros(1, np.float32)])
    return model


def by_hand(model, xi):
    """GBP and GradCAM of `conv_relu_net` for one image, in loops."""
    w, b = (v.astype(np.float64) for v in model.get_layer("features").get_weights())
    w2 = model.get_layer("logit").get_weights()[0][:, 0].astype(np.float64)
    img = xi[..., 0].astype(np.float64)
    z = np.zeros((2, 2, 2))
    for i in range(2):
        for j in range(2):
            for k in range(2):
                z[i, j, k] = (img[i:i + 3, j:j + 3] * w[:, :, 0, k]).sum() + b[k]
    a = np.maximum(z, 0)
    g_a = np.broadcast_to(w2 / 4, (2, 2, 2))              # d logit / d a: the average pool's share
    # guided ReLU: back through a unit only where its input was positive and the gradient is
    g_z = g_a * (z > 0) * (g_a > 0)
    gbp = np.zeros((4, 4))
    for i in range(2):
        for j in range(2):
            for k in range(2):
                gbp[i:i + 3, j:j + 3] += g_z[i, j, k] * w[:, :, 0, k]
    cam = np.maximum((a * g_a.mean(axis=(0, 1))).sum(-1), 0)
    cam = cam / cam.max() if cam.max() > 0 else cam
    return gbp, cam


def test_gbp_through_a_convolution_and_ggcam_by_hand():
    model = conv_relu_net()
    x = (np.random.default_rng(2).random((12, 4, 4, 1)) - 0.3).astype(np.float32)
    gbp, _ = compute_maps(model, x, "gbp")
    gcam, _ = compute_maps(model, x, "gcam")
    ggcam, _ = compute_maps(model, x, "ggcam", order="raw")
    n_cam = 0
    for xi, got_gbp, got_gcam, got_ggcam in zip(x, gbp, gcam, ggcam):
        want_gbp, cam = by_hand(model, xi)
        np.testing.assert_allclose(got_gbp[..., 0], want_gbp, rtol=1e-5, atol=1e-7)
        up = resize(cam, (4, 4))     # the 2x2 cell map to 4x4 as PAIR's GradCam: scikit-image's defaults
        np.testing.assert_allclose(got_gcam, up, rtol=1e-5, atol=1e-7)
        # Guided GradCAM, [A]'s raw order: |GBP| (summed over channels) times the upsampled GradCAM
        np.testing.assert_allclose(got_ggcam, np.abs(want_gbp) * up, rtol=1e-5, atol=1e-7)
        n_cam += cam.max() > 0
    assert n_cam >= 2 and np.abs(gbp).max() > 0          # the images exercise both maps
