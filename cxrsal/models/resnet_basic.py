"""Basic-block ResNet-18/34 in Keras (keras.applications has only the bottleneck ResNets).

Layer names follow the Keras applications' ResNet style (conv1_conv, conv2_block1_1_conv,
conv2_block1_0_conv for the projection shortcut, conv2_block1_out, ...), so block grouping,
GradCAM and weight files work the same way as for ResNet-50.
"""

from keras import layers

STAGES = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
FILTERS = (64, 128, 256, 512)
BN_EPS = 1.001e-5
# PyTorch's BatchNorm momentum (0.1 there = 0.9 here), whose ResNet-18/34 weights users bring;
# also lets the moving statistics settle within the few hundred steps of small experiments
BN_MOMENTUM = 0.9


def _basic_block(x, filters, stride, name, dilation=1, first_dilation=1):
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_0_conv")(x)
        shortcut = layers.BatchNormalization(epsilon=BN_EPS, momentum=BN_MOMENTUM, name=f"{name}_0_bn")(shortcut)
    x = layers.ZeroPadding2D(first_dilation, name=f"{name}_1_pad")(x)
    x = layers.Conv2D(filters, 3, strides=stride, dilation_rate=first_dilation, use_bias=False,
                      name=f"{name}_1_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPS, momentum=BN_MOMENTUM, name=f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.ZeroPadding2D(dilation, name=f"{name}_2_pad")(x)
    x = layers.Conv2D(filters, 3, dilation_rate=dilation, use_bias=False, name=f"{name}_2_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPS, momentum=BN_MOMENTUM, name=f"{name}_2_bn")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


OUTPUT_STRIDES = (32, 16, 8)


def channels(filters, width):
    """A layer's channels at `width`: a multiple of 8 (vectorized kernels), at least 8."""
    return max(8, int(round(filters * width / 8)) * 8)


def resnet_basic(x, depth_name, output_stride=32, width=1.0):
    """Apply the ResNet-18/34 feature extractor to tensor `x` (3 channels); returns the
    conv5 output as a tensor of the same functional graph.

    `output_stride` 32 is the standard network; 16 or 8 keep conv5 (and conv4) at a finer
    map by replacing their stride 2 with dilation, as DeepLab's dilated ResNets: the kernels
    keep their shapes (a standard weights file loads) and their receptive field, and the last
    map is 4x (16x) larger -- GradCAM and WILDCAT maps of small inputs need the cells.

    `width` multiplies every layer's channels (0.5: 32 ... 256; at least 8): a dilated map costs
    16x the compute of conv5 at stride 32 and a quarter of the channels costs about 1/16, so
    small data (the demo) gets fine maps at the price of coarse ones. The standard weights files
    fit width 1 only."""
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}")
    if not 0 < width <= 1 or round(16 * width) < 1:
        raise ValueError(f"width must be in (0, 1] with at least 8 channels in the stem, got {width}")
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = layers.Conv2D(channels(64, width), 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPS, momentum=BN_MOMENTUM, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    current, dilation = 4, 1
    for stage, (blocks, filters) in enumerate(zip(STAGES[depth_name], FILTERS), start=2):
        stride, previous = (2 if stage > 2 else 1), dilation
        if current * stride > output_stride:   # dilate instead of striding
            dilation, stride = dilation * stride, 1
        current *= stride
        for b in range(1, blocks + 1):
            x = _basic_block(x, channels(filters, width), stride if b == 1 else 1, f"conv{stage}_block{b}",
                             dilation=dilation, first_dilation=previous if b == 1 else dilation)
    return x
