"""Where the cells of a feature map sit on the input: receptive-field centres from the strides,
kernel sizes, dilations and paddings of the layers between the input and the map.

A cell's receptive field is centred at `start + i * jump + 0.5` input pixels (pixel p spans
[p, p + 1]). [B] placed cell i of an s x s map at (i + 1/2) d with d = S / s; stride-2
layers with symmetric padding put a ResNet cell about half a cell off that point (ResNet-18
at 224 px: 15.5 px), DenseNet 1.5 px, VGG 0.
"""

from ..errors import CxrsalError


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _layer_step(layer, in_size):
    """(offset of the first output cell's centre in input cells, stride) per axis, or None for
    a layer that keeps the geometry."""
    import keras

    name = type(layer).__name__
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, _), (left, _) = layer.padding
        return [(-top, 1), (-left, 1)]
    conv = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")
    pool = ("MaxPooling2D", "AveragePooling2D")
    if name not in conv + pool:
        if name.endswith(("Conv1D", "Conv3D", "Pooling1D", "Pooling3D", "Conv2DTranspose")):
            raise CxrsalError(f"layer {layer.name}: {name} is not supported by the receptive-field geometry")
        return None
    kernel = _pair(layer.kernel_size if name in conv else layer.pool_size)
    strides = _pair(layer.strides)
    dilation = _pair(getattr(layer, "dilation_rate", 1))
    steps = []
    for k, s, d, n in zip(kernel, strides, dilation, in_size):
        k_eff = d * (k - 1) + 1
        before = 0
        if layer.padding == "same":   # TensorFlow puts the odd pixel of padding after
            out = -(-n // s)
            before = max((out - 1) * s + k_eff - n, 0) // 2
        steps.append(((k_eff - 1) / 2 - before, s))
    return steps


def _geometry(tensor, memo):
    """(start, jump) per axis of a KerasTensor's cells, in input pixels."""
    key = id(tensor)
    if key in memo:
        return memo[key]
    layer, node_index, _ = tensor._keras_history
    inputs = layer._inbound_nodes[node_index].input_tensors
    if not inputs:
        geo = ((0.0, 0.0), (1, 1))
    else:
        parts = [_geometry(t, memo) for t in inputs if len(t.shape) == 4]
        geo = parts[0]
        for other in parts[1:]:
            if other != geo:
                raise CxrsalError(f"layer {layer.name}: its inputs' cells sit at different places "
                                  f"({geo} vs {other}); the geometry is not defined")
        step = _layer_step(layer, tuple(inputs[0].shape[1:3]))
        if step is not None:
            (start, jump) = geo
            geo = (tuple(st + off * j for st, (off, _), j in zip(start, step, jump)),
                   tuple(j * s for j, (_, s) in zip(jump, step)))
    memo[key] = geo
    return geo


def feature_geometry(model, layer="features"):
    """{"start": (y, x), "jump": (y, x), "size": (h, w), "input": (H, W)} of `layer`'s output:
    cell (i, j) is centred at (start_y + i jump_y + 1/2, start_x + j jump_x + 1/2) input pixels."""
    out = model.get_layer(layer).output
    (start, jump) = _geometry(out, {})
    return {"start": [float(v) for v in start], "jump": [int(v) for v in jump],
            "size": [int(v) for v in out.shape[1:3]], "input": [int(v) for v in model.input_shape[1:3]]}
