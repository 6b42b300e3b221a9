"""A Keras classifier nobody here trained (cxrsal.models.external), on a folder of PNGs with boxes:
wrapped into one flat graph (nested models inlined, the logit before its softmax), then saliency,
score, randomize and compare through the CLI. References: the user's own model called directly, a
NumPy softmax, tf.GradientTape."""

import json

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from cxrsal.errors import CxrsalError
from cxrsal.models.external import ModelCard, discover_blocks, read_model_card, wrap
from cxrsal.saliency import compute_maps
from helpers import cxrsal


def nested_cnn(seed=0, head="sigmoid"):
    """A functional CNN used as one layer of a Sequential, then a Dense head."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(x)
    h = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="conv_b")(h)
    inner = keras.Model(x, keras.layers.GlobalAveragePooling2D(name="gap")(h), name="inner")
    units = 1 if head == "sigmoid" else 2
    return keras.Sequential([keras.Input((16, 16, 3)), inner, keras.layers.Dense(units, activation=head, name="out")])


def test_nested_model_is_inlined_and_explained_at_its_logit():
    user = nested_cnn(head="softmax")
    x = np.random.default_rng(0).random((3, 16, 16, 1)).astype(np.float32)
    probs = user(np.repeat(x, 3, -1)).numpy()
    model = wrap(user, ModelCard(preprocessing="[-1,1]"))
    names = [layer.name for layer in model.layers]
    # one flat graph: the inner model's layers are the wrapper's own
    assert {"conv_a", "conv_b", "gap", "features", "logit"} <= set(names) and "inner" not in names
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    assert names.index("features") == names.index("conv_b") + 1          # the last 4-D layer by default
    # the logit is the softmax's input, class 1: softmax of the two pre-activations gives the user's output
    logits = user(np.repeat(x, 3, -1) * 2 - 1).numpy()                  # the layer now returns logits
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True),
                               nested_cnn(head="softmax")(np.repeat(x, 3, -1) * 2 - 1).numpy(), rtol=1e-5)
    z = keras.Model(model.input, model.get_layer("logit").output)(x).numpy()[:, 0]
    np.testing.assert_allclose(z, logits[:, 1], rtol=1e-5, atol=1e-6)
    assert probs.shape == (3, 2)
    # GRAD through the wrapper: the gradient of the class-1 logit w.r.t. the grey image, by GradientTape
    raw, _ = compute_maps(model, x, "grad", input_channels=1)
    t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(t)
        y = tf.reduce_sum(user(tf.repeat(t, 3, axis=-1) * 2 - 1)[:, 1])
    np.testing.assert_allclose(raw, tape.gradient(y, t).numpy(), rtol=1e-4, atol=1e-7)


def test_compute_maps_takes_any_keras_model_with_a_card():
    user = nested_cnn(seed=1)
    x = np.random.default_rng(1).random((2, 16, 16, 1)).astype(np.float32)
    raw, processed = compute_maps(user, x, "gcam", card=ModelCard(gradcam_layer="conv_a"))
    assert processed.shape == (2, 16, 16) and np.isfinite(raw).all()


def test_a_grey_model_is_explained_at_its_own_channel():
    """A user model of one input channel: its gradients are of its own grey input (the replicated
    3-channel image exists only in front of a 3-channel backbone), so it maps with the default
    saliency.input_channels, as its logit's gradient computed here with tf.GradientTape."""
    from cxrsal.saliency import ModelAdapter

    keras.utils.set_random_seed(2)
    x_in = keras.Input((16, 16, 1))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv")(x_in)
    h = keras.layers.GlobalAveragePooling2D()(h)
    user = keras.Model(x_in, keras.layers.Dense(1, name="out")(h))
    reference = keras.models.clone_model(user)          # wrap inlines the user's layers into its graph
    reference.set_weights(user.get_weights())
    adapter = ModelAdapter(wrap(user), batch_size=4)
    x = np.random.default_rng(3).random((2, 16, 16, 1)).astype(np.float32)
    assert adapter.input_channels == 1
    logits, grads = adapter.input_gradients(x, np.ones(2, np.int32))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = reference(xt)
        total = tf.reduce_sum(y)
    np.testing.assert_allclose(logits, y.numpy()[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads, tape.gradient(total, xt).numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("build, card, message", [
    (lambda: keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
                               keras.layers.Dense(2, activation="relu", name="relu_out")]),
     ModelCard(), "is not a logit or a sigmoid/softmax of one"),
    (nested_cnn, ModelCard(gradcam_layer="gap"), "gradcam_layer 'gap': its output (None, 6) is not 4-D"),
    (nested_cnn, ModelCard(gradcam_layer="conv_z"), "gradcam_layer 'conv_z': no such layer"),
    (nested_cnn, ModelCard(logit_layer="nope"), "logit_layer 'nope': no such layer"),
    (nested_cnn, ModelCard(input_size=24), "give a square input_size the model accepts"),
    (nested_cnn, ModelCard(input_channels=1), "the model takes 3 channels"),
    (nested_cnn, ModelCard(class_index=3), "class_index 3: the logit layer 'out' has 1 unit"),
])
def test_models_that_cannot_be_explained_say_why(build, card, message):
    with pytest.raises(CxrsalError, match=message.replace("(", r"\(").replace(")", r"\)")):
        wrap(build(), card)


def test_model_cards_and_block_discovery(tmp_path):
    (tmp_path / "card.yaml").write_text("class_index: 0\npreprocessing: imagenet-torch\nblocks: [conv5, conv4]\n")
    card = read_model_card(tmp_path / "card.yaml", gradcam_layer="relu")
    assert card == ModelCard(class_index=0, preprocessing="imagenet-torch", blocks=("conv5", "conv4"),
                             gradcam_layer="relu")
    (tmp_path / "bad.yaml").write_text("preprocesing: x\n")
    with pytest.raises(CxrsalError, match="unknown field 'preprocesing'"):
        read_model_card(tmp_path / "bad.yaml")
    with pytest.raises(CxrsalError, match="preprocessing must be one of \\[0,1\\], \\[-1,1\\]"):
        read_model_card(preprocessing="bgr")
    # Keras applications' names: InceptionV3's mixed*, DenseNet's conv*_block*
    names = ["conv2d", "mixed0", "conv2d_5", "mixed1", "mixed10"]
    groups, order = discover_blocks(names)
    assert order == ["mixed10", "mixed1", "mixed0", "stem"] and groups["conv2d_5"] == "mixed0"
    groups, order = discover_blocks(["conv1_conv", "conv2_block1_0_bn", "pool2_conv", "conv3_block1_0_bn"],
                                    ("conv3", "conv2"))
    assert order == ["conv3", "conv2", "stem"] and groups["pool2_conv"] == "conv2"


# ---------------------------------------------------------------- end to end, through the CLI

H = 64
BOX = (20, 16, 22, 18)


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    """A folder of PNGs with boxes (prepared, every image in the test split) and two users'
    DenseNet121s with a softmax head, saved as .keras."""
    base = tmp_path_factory.mktemp("user")
    root = base / "pngs"
    (root / "images").mkdir(parents=True)
    labels, boxes = ["image_id,label"], ["image_id,x,y,width,height"]
    for i in range(8):
        img = (np.random.default_rng(i).random((H, H)) * 150).astype(np.uint8)
        if i % 2:
            x, y, w, h = BOX
            img[y:y + h, x:x + w] = 250
            boxes.append(f"case{i},{x},{y},{w},{h}")
        cv2.imwrite(str(root / "images" / f"case{i}.png"), img)
        labels.append(f"case{i},{i % 2}")
    (root / "labels.csv").write_text("\n".join(labels) + "\n")
    (root / "boxes.csv").write_text("\n".join(boxes) + "\n")
    rc, _, err = cxrsal("prepare", "--dataset", "folder", "--root", root, "--size", H, "--split", "all=test",
                        "--out", base / "run", "--workers", 1, "--quiet")
    assert rc == 0, err
    for k, name in enumerate(("user_a", "user_b")):
        keras.utils.set_random_seed(k)
        backbone = keras.applications.DenseNet121(weights=None, include_top=False, input_shape=(H, H, 3),
                                                  pooling="avg")
        user = keras.Sequential([keras.Input((H, H, 3)), backbone, keras.layers.Dense(2, activation="softmax",
                                                                                        name="diagnosis")])
        user.save(base / f"{name}.keras")
    (base / "card.yaml").write_text("preprocessing: imagenet-torch\nblocks: [conv5, conv4]\n")
    return base


QUICK = ["--set", "saliency.samples=2", "--set", "saliency.ig_steps=2", "--set", "saliency.xrai_steps=2",
         "--set", "saliency.batch_size=8", "--quiet"]


def test_audit_of_a_users_densenet_through_the_cli(audit):
    user = [audit / "user_a.keras", "--data", audit / "run", "--model-card", audit / "card.yaml"]
    rc, out, err = cxrsal("saliency", "--model", *user, "--methods", "all", "--limit", 2, "--out",
                          audit / "maps", *QUICK)
    assert rc == 0, err
    adopted = audit / "maps" / "adopted" / "external-user_a"
    card = json.loads((adopted / "run.json").read_text())
    assert card["arch"] == "external-user_a" and card["source"]["model_card"]["preprocessing"] == "imagenet-torch"
    from cxrsal.saliency import ordered
    from cxrsal.saliency.store import MapStore

    store = MapStore(audit / "maps")
    assert set(store.methods()) == set(ordered()) - {"wildcat"}
    assert all(len(store.ids(m)) == 2 for m in store.methods())
    assert store.load("gcam", store.ids("gcam")[0])["processed"].shape == (H, H)

    rc, _, err = cxrsal("score", "--maps", audit / "maps", "--out", audit / "scores")
    assert rc == 0, err
    scores = pd.read_csv(audit / "scores" / "scores.csv")
    assert {"grad", "gcam", "xrai", "ggcam"} <= set(scores.method) and scores.value.notna().all()

    rc, _, err = cxrsal("randomize", "--model", *user, "--methods", "grad,gcam", "--n-images", 2,
                        "--out", audit / "rand", *QUICK)
    assert rc == 0, err
    curves = pd.read_csv(audit / "rand" / "curves.csv")
    assert list(dict.fromkeys(curves.sort_values("step").step_name)) == ["trained", "logits", "conv5", "conv4"]

    rc, _, err = cxrsal("compare", "--models", audit / "user_a.keras", audit / "user_b.keras", "--data", audit / "run",
                        "--model-card", audit / "card.yaml", "--methods", "grad,gcam", "--n-images", 2,
                        "--out", audit / "cmp", *QUICK)
    assert rc == 0, err
    table = pd.read_csv(audit / "cmp" / "compare.csv")
    assert len(table) == 4 and set(table.model_a) == {"external-user_a"} and table.value.between(-1, 1).all()


def test_a_saved_model_needs_its_images(audit, tmp_path):
    rc, _, err = cxrsal("saliency", "--model", audit / "user_a.keras", "--out", tmp_path / "m")
    assert rc == 2 and "a saved Keras model needs --data PREPARED_RUN" in err
    (tmp_path / "junk.keras").write_bytes(b"PK\x03\x04 not a model")
    rc, _, err = cxrsal("saliency", "--model", tmp_path / "junk.keras", "--data", audit / "run", "--out", tmp_path / "m")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "not a loadable Keras model" in err


def small_cnn(head):
    keras.utils.set_random_seed(3)
    x = keras.Input((H, H, 3))
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(x)
    h = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, keras.layers.Dense(1 if head == "sigmoid" else 2, activation=head, name="out")(h))


def test_a_saved_model_folder_is_audited_where_gradients_allow(audit, tmp_path):
    """A SavedModel (model.export) opens as one TFSMLayer: the gradient methods run, explaining
    the log-odds of its sigmoid output, which is the pre-sigmoid logit: its gradient maps equal
    those of the same model saved as .keras (explained at its logit) up to float rounding. The
    methods needing inner layers, and randomization, are refused with one line each."""
    from cxrsal.models.external import wrap_saved_model
    from cxrsal.saliency.store import MapStore

    user = small_cnn("sigmoid")
    user.save(tmp_path / "user.keras")
    user.export(str(tmp_path / "user_savedmodel"), verbose=False)
    run = ["--data", audit / "run", "--limit", 2, "--quiet"]
    rc, _, err = cxrsal("saliency", "--model", tmp_path / "user_savedmodel", *run, "--methods", "all",
                        "--out", tmp_path / "sm", "--set", "saliency.samples=2", "--set", "saliency.ig_steps=2",
                        "--set", "saliency.xrai_steps=2")
    assert rc == 0, err
    sm = MapStore(tmp_path / "sm")
    # the gradient methods, and the control maps, which need no inner layer either
    assert sm.methods() == sorted(["grad", "sg", "ig", "sig", "xrai", "edge", "random", "oracle"])
    rc, _, err = cxrsal("saliency", "--model", tmp_path / "user.keras", *run, "--methods", "grad",
                        "--out", tmp_path / "keras")
    assert rc == 0, err
    ks = MapStore(tmp_path / "keras")
    for i in ks.ids("grad"):
        a, b = sm.load("grad", i), ks.load("grad", i)
        assert a["logit"] == pytest.approx(b["logit"], rel=1e-4, abs=1e-5)
        np.testing.assert_allclose(a["raw"], b["raw"], rtol=1e-3, atol=1e-6 * np.abs(b["raw"]).max())

    for args, message in ((["saliency", "--methods", "gcam", "--out", tmp_path / "x"], "needs the model's inner layers"),
                          (["randomize", "--methods", "grad", "--out", tmp_path / "y"], "randomization needs the model's own layers")):
        rc, _, err = cxrsal(args[0], "--model", tmp_path / "user_savedmodel", "--data", audit / "run", *args[1:])
        assert rc == 2 and len(err.strip().splitlines()) == 1 and message in err, err

    # a softmax output: the explained logit is the log-odds of class 1, log p1 - log p0 = z1 - z0
    two = small_cnn("softmax")
    two.export(str(tmp_path / "two"), verbose=False)
    wrapped = wrap_saved_model(tmp_path / "two")
    x = np.random.default_rng(0).random((3, H, H, 1)).astype(np.float32)
    p = np.asarray(two(np.repeat(x, 3, axis=-1)))
    logit = keras.Model(wrapped.input, wrapped.get_layer("logit").output)
    np.testing.assert_allclose(np.asarray(logit(x))[:, 0], np.log(p[:, 1]) - np.log(p[:, 0]), rtol=1e-4, atol=1e-5)
    with pytest.raises(CxrsalError, match="inner layers cannot be reached"):
        wrap_saved_model(tmp_path / "two", ModelCard(gradcam_layer="conv2d"))
    # in Python: compute_maps takes the folder's path; GradCAM is refused, not computed on nothing
    raw, processed = compute_maps(str(tmp_path / "user_savedmodel"), x[:2], "grad")
    keras_raw, _ = compute_maps(keras.models.load_model(tmp_path / "user.keras"), x[:2], "grad")
    np.testing.assert_allclose(raw, keras_raw, rtol=1e-3, atol=1e-6 * np.abs(keras_raw).max())
    with pytest.raises(CxrsalError, match="needs the model's inner layers"):
        compute_maps(tmp_path / "user_savedmodel", x[:2], "gcam")
