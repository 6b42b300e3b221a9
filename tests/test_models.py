"""Every backbone x head builds flat with the right shapes; blocks; save/load; weights handling."""

import keras
import numpy as np
import pytest

from cxrsal.errors import CxrsalError
from cxrsal.models import (BACKBONES, HEADS, backbone_blocks, build_model, class_map_model, feature_model,
                           logit_model)
from cxrsal.models.factory import imagenet_weights
from cxrsal.models.receptive_field import feature_geometry

# feature maps at the smallest legal input, from the architectures' strides: stride 32 for the
# ResNets/DenseNets at 32 px -> 1x1; InceptionV3's valid convolutions take 75 px to 1x1;
# VGG-19's block5_conv4 is stride 16 -> 2x2 at 32 px. Channels from the Keras applications.
EXPECTED = {
    "inceptionv3": (75, 1, 2048), "densenet121": (32, 1, 1024), "densenet169": (32, 1, 1664),
    "resnet18": (32, 1, 512), "resnet34": (32, 1, 512), "resnet50": (32, 1, 2048),
    "resnet101": (32, 1, 2048), "resnet152": (32, 1, 2048), "vgg19": (32, 2, 512),
}


def test_registry_is_complete():
    assert set(BACKBONES.names()) == set(EXPECTED)
    assert HEADS.names() == ["classification", "wildcat"]


@pytest.mark.parametrize("arch", sorted(EXPECTED))
@pytest.mark.parametrize("head", ["classification", "wildcat"])
def test_builds_flat_with_shapes(arch, head):
    size, cells, channels = EXPECTED[arch]
    model = build_model(arch, head, (size, size, 1))
    assert not any(isinstance(l, keras.Model) for l in model.layers), "nested model"
    assert model.input_shape == (None, size, size, 1) and model.output_shape == (None, 1)
    feats, logit = feature_model(model).outputs
    assert tuple(feats.shape) == (None, cells, cells, channels)
    assert tuple(logit.shape) == (None, 1)
    if head == "wildcat":
        maps, _ = class_map_model(model).outputs
        assert tuple(maps.shape) == (None, cells, cells, 1)
    else:
        with pytest.raises(CxrsalError, match="no WILDCAT head"):
            class_map_model(model)
    blocks = backbone_blocks(model, arch)
    names = [b for b, _ in blocks]
    assert names[0] == "logits" and names[1:] == [b for b in BACKBONES.get(arch).block_order if b in names]
    members = [n for _, layers in blocks for n in layers]
    assert len(members) == len(set(members))
    weighted = {l.name for l in model.layers if l.weights and l.name not in ("preprocess",)}
    assert weighted <= set(members)


def test_inception_blocks_top_down():
    model = build_model("inceptionv3", "classification", (75, 75, 1))
    names = [b for b, _ in backbone_blocks(model, "inceptionv3")]
    assert names == ["logits"] + [f"mixed{i}" for i in range(10, -1, -1)] + ["stem"]
    blocks = dict(backbone_blocks(model, "inceptionv3"))
    assert blocks["mixed10"][-1] == "mixed10" and blocks["mixed0"][-1] == "mixed0"
    assert all(n.startswith(("conv2d", "batch_normalization", "activation", "max_pooling2d")) for n in blocks["stem"])
    # the stem holds the five stem convolutions (Keras' InceptionV3 before mixed0)
    assert sum(n.startswith("conv2d") for n in blocks["stem"]) == 5


def test_larger_inputs():
    assert feature_model(build_model("inceptionv3", "classification", (299, 299, 1))).outputs[0].shape[1] == 8
    assert feature_model(build_model("resnet18", "classification", (224, 224, 1))).outputs[0].shape[1] == 7


def test_logit_is_pre_activation():
    model = build_model("resnet18", "classification", (32, 32, 1))
    x = np.random.default_rng(0).random((3, 32, 32, 1)).astype(np.float32)
    z = np.asarray(logit_model(model)(x))
    np.testing.assert_allclose(np.asarray(model(x)), 1 / (1 + np.exp(-z)), rtol=1e-5)
    two = build_model("resnet18", "classification", (32, 32, 1), output="softmax")
    logits = np.asarray(keras.Model(two.input, two.get_layer("logits").output)(x))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(two(x))[:, 0], p[:, 1], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(logit_model(two)(x))[:, 0], logits[:, 1], rtol=1e-6)


@pytest.mark.parametrize("head, options", [("wildcat", dict(num_maps=4, kmax=0.2, kmin=0.1, alpha=0.7)),
                                           ("classification", dict(output="softmax"))])
def test_save_and_load_identical(tmp_path, head, options):
    model = build_model("resnet18", head, (64, 64, 1), **options)
    x = np.random.default_rng(2).random((2, 64, 64, 1)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(loaded(x)))
    assert loaded.get_layer("features") is not None


def test_unknown_names_list_choices():
    with pytest.raises(CxrsalError, match="unknown architecture 'resnet19'; valid choices: densenet121"):
        build_model("resnet19")
    with pytest.raises(CxrsalError, match="unknown head 'gap'; valid choices: classification, wildcat"):
        build_model("resnet18", "gap", (32, 32, 1))
    with pytest.raises(CxrsalError, match="below inceptionv3's smallest legal input"):
        build_model("inceptionv3", "classification", (64, 64, 1))


def test_offline_imagenet_fails_fast_naming_the_file(tmp_path, monkeypatch):
    import socket
    import urllib.error

    import cxrsal.models.factory as factory

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    # offline: the download is asked with a short timeout (Keras' own waits without one), then
    # its failure names the file to place in the cache
    asked = []

    def offline(url, timeout=None):
        asked.append(timeout)
        raise urllib.error.URLError(socket.timeout("timed out"))

    monkeypatch.setattr(factory.urllib.request, "urlopen", offline)
    with pytest.raises(CxrsalError) as err:
        build_model("densenet121", "classification", (32, 32, 1), weights="imagenet")
    assert asked == [factory.DOWNLOAD_TIMEOUT_S] and 0 < factory.DOWNLOAD_TIMEOUT_S <= 30
    msg = str(err.value)
    assert "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg and str(tmp_path / "models") in msg
    with pytest.raises(CxrsalError, match="no Keras ImageNet weights exist for resnet18"):
        build_model("resnet18", "classification", (32, 32, 1), weights="imagenet")


def test_weights_from_the_keras_cache_and_from_a_path(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    # a backbone-only VGG-19 saved under the cache name stands in for the ImageNet file
    donor = keras.applications.VGG19(include_top=False, weights=None, input_shape=(32, 32, 3))
    (tmp_path / "models").mkdir()
    target = tmp_path / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    donor.save_weights(tmp_path / "donor.weights.h5")
    legacy = keras.applications.VGG19(include_top=False, weights=None, input_shape=(32, 32, 3))
    legacy.load_weights(tmp_path / "donor.weights.h5")
    from keras.src.legacy.saving import legacy_h5_format
    import h5py
    with h5py.File(target, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, legacy)
    assert imagenet_weights("vgg19") == str(target)
    model = build_model("vgg19", "classification", (32, 32, 1), weights="imagenet")
    np.testing.assert_array_equal(model.get_layer("block1_conv1").get_weights()[0],
                                  donor.get_layer("block1_conv1").get_weights()[0])
    # ResNet-18: a backbone weights file by path
    ref = build_model("resnet18", "classification", (32, 32, 1))
    backbone = keras.Model(ref.inputs, ref.get_layer("features").output)
    backbone.save_weights(tmp_path / "r18.weights.h5")
    loaded = build_model("resnet18", "classification", (32, 32, 1), weights=str(tmp_path / "r18.weights.h5"))
    np.testing.assert_array_equal(loaded.get_layer("conv5_block2_2_conv").get_weights()[0],
                                  ref.get_layer("conv5_block2_2_conv").get_weights()[0])
    with pytest.raises(CxrsalError, match="no such file"):
        build_model("resnet18", "classification", (32, 32, 1), weights=str(tmp_path / "missing.h5"))


def test_width_scales_every_resnet_layer_and_only_where_offered():
    """model.width: each convolution of ResNet-18 keeps its kernel and stride and has width x the
    published channels (64/128/256/512, rounded to a multiple of 8); the dilated map keeps its
    8 x 8 cells; backbones without the option and pretrained weights refuse it in one line."""
    full = build_model("resnet18", input_shape=(64, 64, 1), output_stride=8)
    quarter = build_model("resnet18", input_shape=(64, 64, 1), output_stride=8, width=0.25)
    convs = {l.name: l for l in full.layers if isinstance(l, keras.layers.Conv2D)}
    small = {l.name: l for l in quarter.layers if isinstance(l, keras.layers.Conv2D)}
    assert set(convs) == set(small) and len(convs) == 20     # 17 convolutions + 3 projections
    for name, layer in convs.items():
        assert small[name].filters == layer.filters // 4
        assert (small[name].kernel_size, small[name].strides, small[name].dilation_rate) == (
            layer.kernel_size, layer.strides, layer.dilation_rate)
    assert tuple(quarter.get_layer("features").output.shape) == (None, 8, 8, 128)
    assert build_model("resnet18", input_shape=(32, 32, 1), width=0.1).get_layer("conv1_conv").filters == 8
    with pytest.raises(CxrsalError, match="densenet121 has no width option"):
        build_model("densenet121", input_shape=(64, 64, 1), width=0.5)
    with pytest.raises(CxrsalError, match="pretrained weights fit width 1 only"):
        build_model("resnet18", input_shape=(64, 64, 1), weights="imagenet", width=0.5)


def test_a_wildcat_k_that_selects_no_cell_of_the_map_is_refused():
    # 64 px at stride 32: a 2 x 2 class map; round(0.1 x 4) = 0 regions, round(0.2 x 4) = 1
    with pytest.raises(CxrsalError, match=r"model.kmax 0.1: selects no region of the 2 x 2 class map .* above 0.125"):
        build_model("resnet18", "wildcat", (64, 64, 1), kmax=0.1)
    model = build_model("resnet18", "wildcat", (64, 64, 1), kmax=0.2)
    assert model.get_layer("logit").ks(4) == (1, 1)


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
