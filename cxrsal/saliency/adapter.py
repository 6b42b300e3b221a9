"""The one bridge from a cxrsal Keras model to PAIR's `call_model_function`.

Every gradient the saliency methods need is computed here, in chunks of `batch_size` through
`tf.function`s traced once (batch dimension left open), optionally split across the replicas
of a tf.distribute strategy. PAIR's methods see a single `call_model_function`; inputs may
carry extra leading "stack" dimensions ([steps, images, H, W, C]), so PAIR's per-image loops
run once over a whole stack of images and their steps.
"""

import numpy as np

from ..errors import CxrsalError

TARGETS = ("positive", "predicted")


def guided_relu_fn():
    """ReLU whose gradient passes only where the input and the incoming gradient are positive."""
    import tensorflow as tf

    @tf.custom_gradient
    def guided_relu(x):
        def grad(dy):
            return dy * tf.cast(x > 0, dy.dtype) * tf.cast(dy > 0, dy.dtype)
        return tf.nn.relu(x), grad

    return guided_relu


def guided_clone(model):
    """A copy of `model` (same weights) whose every ReLU is a guided ReLU; `model` is untouched."""
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    guided = guided_relu_fn()
    relu = keras.activations.relu
    replaced = 0
    for layer in clone.layers:
        if isinstance(layer, keras.layers.ReLU):
            raise CxrsalError(f"layer {layer.name}: ReLU layers are not supported by gbp; use Activation('relu')")
        act = getattr(layer, "activation", None)
        if act is relu or getattr(act, "__name__", None) == "relu":
            layer.activation = guided
            replaced += 1
    return clone, replaced


AUTO_START = 1024      # the first batch `batch_size: auto` tries on a GPU (halved until it fits)
AUTO_CPU = 32          # auto on a CPU: memory is not what limits it


def is_out_of_memory(error):
    """True for TensorFlow's out-of-memory errors (ResourceExhaustedError, and the XLA/GPU
    allocators' InternalError saying so)."""
    import tensorflow as tf

    if isinstance(error, tf.errors.ResourceExhaustedError):
        return True
    return isinstance(error, tf.errors.InternalError) and "out of memory" in str(error).lower()


def mixed_copy(model, strategy=None):
    """A copy of `model` (same float32 variables) computing in bfloat16, or float16 on a GPU
    without bfloat16 (compute capability < 8.0)."""
    import contextlib

    import keras
    import tensorflow as tf

    policy = "mixed_bfloat16"
    for gpu in tf.config.list_physical_devices("GPU"):
        cc = tf.config.experimental.get_device_details(gpu).get("compute_capability", (8, 0))
        if tuple(cc) < (8, 0):
            policy = "mixed_float16"
    before = keras.config.dtype_policy()
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    try:
        keras.config.set_dtype_policy(policy)
        with scope:
            clone = keras.models.clone_model(model)
    finally:
        keras.config.set_dtype_policy(before)
    clone.set_weights(model.get_weights())
    return clone


def pad_batch(x, cls, size):
    """(x, cls) padded to `size` rows (zero images explained as class 1) and their own row count:
    a CPU kernel's float results depend on the batch size, not on an image's position in the
    batch, so an image's map is the same bit for bit whatever else it is computed with."""
    n = len(x)
    if n < size:
        x = np.concatenate([x, np.zeros((size - n, *x.shape[1:]), np.float32)])
        cls = np.concatenate([cls, np.ones(size - n, np.int32)])
    return x, cls, n


class ModelAdapter:
    """Gradients of the explained logit of a cxrsal model, batched.

    The explained output is the positive-class logit (`cls` = 1); with `target: predicted` a
    negative prediction is explained through the negative-class logit (column 0 of a two-way
    head, minus the logit of a sigmoid head).

    `input_channels=3` ([A]): every gradient is taken with respect to the grey image replicated
    to 3 channels, in [0, 1], as the model's `preprocess` layer receives it, so the channels'
    gradients are kept apart; `1`: with respect to the grey input. `input_shape` and every
    input of the public methods are in that space; `lift` takes grey images there. A model
    without a grey -> 3-channel `preprocess` layer is differentiated with respect to its own
    input (`input_channels` then says what was used).
    """

    def __init__(self, model, *, batch_size=32, strategy=None, input_channels=3, jit_compile=False,
                 precision="float32", log=None):
        import keras
        import tensorflow as tf

        from ..models.factory import logit_tensor

        if precision not in ("float32", "mixed"):
            raise CxrsalError(f"saliency.precision {precision!r}: valid choices: float32, mixed")
        self.precision, self.jit_compile = precision, bool(jit_compile)
        if precision == "mixed":
            model = mixed_copy(model, strategy)
        self.model = model
        # what the forward and backward passes compute in (mixed: bfloat16, or float16 on older
        # GPUs): the maps' arithmetic, recorded with them
        self.compute_dtype = "float32" if precision == "float32" else str(getattr(model, "compute_dtype", precision))
        self.batch_size = AUTO_CPU if batch_size == "auto" else int(batch_size)
        self.strategy = strategy
        self._log = log or (lambda *_: None)
        names = {l.name for l in model.layers}
        if input_channels not in (1, 3):
            raise CxrsalError(f"saliency.input_channels {input_channels}: valid choices: 3, 1")
        entry, self._scale = model.input, (lambda x: x)
        if (input_channels == 3 and model.input_shape[-1] == 1 and "preprocess" in names
                and model.get_layer("preprocess").output.shape[-1] == 3):
            # the graph from the replicated 3-channel image on; the model's own layer scales it.
            # (A model without a grey -> 3-channel `preprocess` layer, such as a user's model of
            # one channel, has only its own input.)
            pre = model.get_layer("preprocess")
            entry, self._scale = pre.output, pre
        two_way = "logit" not in names and "logits" in names
        logits = model.get_layer("logits").output if two_way else logit_tensor(model)
        # a model without reachable inner layers (a SavedModel): gradients of the input only
        self.has_layers = "features" in names
        features = (model.get_layer("features").output if self.has_layers
                    else keras.layers.Identity(name="no_features")(logits))   # a second output, never used
        self._net = keras.Model(entry, [features, logits])
        self.input_shape = tuple(model.input_shape[1:-1]) + (3 if entry is not model.input else model.input_shape[-1],)
        self.input_channels = self.input_shape[-1]     # what the gradients are taken with respect to
        self.has_class_maps = "class_maps" in names
        if self.has_class_maps:
            self._maps = keras.Model(entry, model.get_layer("class_maps").output)
        self._two_way = two_way
        self._logits = logits
        self._guided = None
        spec = (tf.TensorSpec((None, *self.input_shape), tf.float32), tf.TensorSpec((None,), tf.int32))
        fn = lambda f: tf.function(f, input_signature=spec, jit_compile=self.jit_compile)   # noqa: E731
        self._input_grads = fn(self._input_grads_impl)
        self._conv_grads = fn(self._conv_grads_impl)
        self._guided_grads = fn(self._guided_grads_impl)
        self._margins = fn(self._margins_impl)
        self._class_maps = fn(self._class_maps_impl)
        self._probabilities = fn(self._probabilities_impl)
        self._replicated = {}
        if batch_size == "auto" and tf.config.list_physical_devices("GPU"):
            self.batch_size = self.probe_batch_size(AUTO_START)

    def probe_batch_size(self, start):
        """The largest batch of `start`, start/2, ... whose input gradients fit in memory (one
        call of each size on zero images); 1 if none larger does."""
        import tensorflow as tf

        size = int(start)
        while size > 1:
            try:
                zeros = tf.zeros((size, *self.input_shape), tf.float32)
                self._input_grads(zeros, tf.ones((size,), tf.int32))
                self._conv_grads(zeros, tf.ones((size,), tf.int32)) if self.has_layers else None
                break
            except Exception as e:
                if not is_out_of_memory(e):
                    raise
                size //= 2
        self._log(f"saliency.batch_size auto: {size}")
        return size

    def lift(self, images):
        """Grey images [N, H, W, 1] -> the space gradients are taken in (replicated to 3
        channels when `input_channels` is 3)."""
        images = np.asarray(images, np.float32)
        if images.shape[-1] == 1 and self.input_shape[-1] == 3:
            return np.repeat(images, 3, axis=-1)
        return images

    # ------------------------------------------------------------ graph functions
    def _explained(self, logits, cls):
        import tensorflow as tf

        if self._two_way:
            return tf.gather(logits, cls, axis=1, batch_dims=1)
        z = logits[:, 0]
        return tf.where(cls == 1, z, -z)

    def _margins_impl(self, x, cls):
        import tensorflow as tf

        _, logits = self._net(self._scale(x), training=False)
        logits = tf.cast(logits, tf.float32)
        # two-way: z1 - z0 > 0 exactly when softmax gives the positive class more than 0.5
        return (logits[:, 1] - logits[:, 0] if self._two_way else logits[:, 0]),

    def _probabilities_impl(self, x, cls):
        import tensorflow as tf

        _, logits = self._net(self._scale(x), training=False)
        logits = tf.cast(logits, tf.float32)
        if self._two_way:       # two or more outputs: the softmax of the explained class
            return tf.gather(tf.nn.softmax(logits, axis=-1), cls, axis=1, batch_dims=1),
        z = logits[:, 0]        # one output unit: the sigmoid of the explained class's logit
        return tf.sigmoid(tf.where(cls == 1, z, -z)),

    def _class_maps_impl(self, x, cls):
        import tensorflow as tf

        return tf.cast(self._maps(self._scale(x), training=False), tf.float32),

    def _gradient_wrt_input(self, net, x, cls):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            _, logits = net(self._scale(x), training=False)
            y = tf.cast(self._explained(logits, cls), tf.float32)
        return y, tape.gradient(y, x)

    def _input_grads_impl(self, x, cls):
        return self._gradient_wrt_input(self._net, x, cls)

    def _conv_grads_impl(self, x, cls):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            feats, logits = self._net(self._scale(x), training=False)
            y = tf.cast(self._explained(logits, cls), tf.float32)
        return y, tf.cast(feats, tf.float32), tf.cast(tape.gradient(y, feats), tf.float32)

    def _guided_grads_impl(self, x, cls):
        return self._gradient_wrt_input(self._guided_net, x, cls)

    # ------------------------------------------------------------ batching
    def _run(self, fn, x, cls):
        """Apply `fn` chunk by chunk (and replica by replica); outputs concatenated on axis 0.

        Every chunk is padded to the full batch (`pad_batch`; measured on ResNet-18 and
        DenseNet121). Out of memory, the batch is halved and the same images computed again."""
        import tensorflow as tf

        x = np.ascontiguousarray(x, dtype=np.float32)
        cls = np.ascontiguousarray(cls, dtype=np.int32)
        replicas = self.strategy.num_replicas_in_sync if self.strategy is not None else 1
        parts = []
        start = 0
        while start < len(x):
            step = self.batch_size * replicas
            xb, cb, n = pad_batch(x[start:start + step], cls[start:start + step], step)
            try:
                out = self._call(fn, xb, cb, replicas)
            except Exception as e:
                if self.jit_compile and isinstance(e, tf.errors.UnimplementedError):
                    raise CxrsalError("saliency.jit_compile: XLA cannot compile this model's gradient here ("
                                      + str(e).strip().splitlines()[0][:160] + "); op determinism, which training "
                                      "turns on in its process, has no XLA kernel for some gradients: run "
                                      "`cxrsal saliency` in its own process, or without --jit") from None
                if not is_out_of_memory(e):
                    raise
                self._halve(e)
                continue        # the same images again, in smaller batches: nothing is lost
            parts.append([o[:n] for o in out])
            start += step
        return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]

    def _call(self, fn, xb, cb, replicas):
        """`fn` on one padded batch, split across the replicas when there are several."""
        import tensorflow as tf

        if replicas == 1:
            return [np.asarray(o) for o in fn(tf.constant(xb), tf.constant(cb))]
        xs, cs = np.array_split(xb, replicas), np.array_split(cb, replicas)
        xv = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(xs[ctx.replica_id_in_sync_group]))
        cv = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(cs[ctx.replica_id_in_sync_group]))
        per_replica = self.strategy.experimental_local_results(self._replica_fn(fn)(xv, cv))
        return [np.concatenate([np.asarray(r[i]) for r in per_replica]) for i in range(len(per_replica[0]))]

    def _halve(self, error):
        """Out of memory: halve the batch (a run loses nothing: its images are computed again)."""
        if self.batch_size == 1:
            raise CxrsalError("out of memory with one image per batch: the model does not fit this device "
                              f"({type(error).__name__})") from None
        self.batch_size //= 2
        self._log(f"out of memory: saliency batch size now {self.batch_size}")

    def _replica_fn(self, fn):
        """One tf.function running the plain Python body of `fn` on every replica."""
        import tensorflow as tf

        if fn not in self._replicated:
            body, strategy = fn.python_function, self.strategy
            self._replicated[fn] = tf.function(lambda x, c: strategy.run(body, args=(x, c)))
        return self._replicated[fn]

    def _flat(self, x, cls):
        x = np.asarray(x, np.float32)
        lead = x.shape[: x.ndim - len(self.input_shape)]
        cls = np.broadcast_to(np.asarray(cls, np.int32), lead).reshape(-1)
        return x.reshape(-1, *self.input_shape), cls, lead

    # ------------------------------------------------------------ public
    def input_gradients(self, x, cls):
        """(explained logits [...], d logit / d input [..., H, W, C]) for any leading dims."""
        flat, c, lead = self._flat(x, cls)
        y, g = self._run(self._input_grads, flat, c)
        return y.reshape(lead), g.reshape(*lead, *self.input_shape)

    def conv_gradients(self, x, cls):
        """(logits [N], last conv map [N, h, w, K], its gradient [N, h, w, K])."""
        flat, c, _ = self._flat(x, cls)
        return self._run(self._conv_grads, flat, c)

    def guided_gradients(self, x, cls):
        """Guided Backprop gradients through a guided-ReLU copy of the model."""
        import keras

        if self._guided is None:
            import contextlib

            scope = self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()
            with scope:   # the copy's variables live where the model's replicas run
                clone, replaced = guided_clone(self._net)
                if replaced == 0:
                    raise CxrsalError(f"model {self.model.name} has no ReLU: Guided Backprop is the plain gradient")
                self._guided = clone
                self._guided_net = keras.Model(clone.input, clone.outputs)
        # the copy follows the model's current weights (randomization changes them between calls)
        for guided, own in zip(self._guided.weights, self._net.weights):
            guided.assign(own)
        flat, c, lead = self._flat(x, cls)
        _, g = self._run(self._guided_grads, flat, c)
        return g.reshape(*lead, *self.input_shape)

    def class_maps(self, x):
        """WILDCAT class maps [N, h, w, C]."""
        if not self.has_class_maps:
            raise CxrsalError(f"model {self.model.name} has no WILDCAT head: the `wildcat` method needs one")
        flat, c, _ = self._flat(x, 1)
        return self._run(self._class_maps, flat, c)[0]

    def positive_logits(self, x):
        """Logit of the positive class (and the predicted class 1/0) for a batch."""
        flat, c, _ = self._flat(x, 1)
        margin = self._run(self._margins, flat, c)[0]
        return margin, (margin > 0).astype(np.int32)

    def probabilities(self, x, cls):
        """The explained class's probability per image (sigmoid of the logit of one output unit,
        softmax for two or more), forward only: what faithfulness curves record."""
        flat, c, lead = self._flat(x, cls)
        return self._run(self._probabilities, flat, c)[0].reshape(lead)

    def classes(self, x, target, predicted=None):
        """Class index explained for each image: 1 (positive) or the predicted class
        (`predicted`, when the caller already has it from `positive_logits`)."""
        if target not in TARGETS:
            raise CxrsalError(f"saliency.target {target!r}: valid choices: {', '.join(TARGETS)}")
        if target == "positive":
            return np.ones(len(x), np.int32)
        return self.positive_logits(x)[1] if predicted is None else predicted

    def explained(self, logits, cls):
        """The explained logit per image from the model's logits (a tensor) and classes `cls`."""
        import tensorflow as tf

        return self._explained(logits, tf.constant(np.asarray(cls, np.int32)))

    def own_input(self, x):
        """Images in the adapter's space -> the model's own input (the grey channel of the
        replicated image), for libraries that take the model whole (tf-keras-vis)."""
        x = np.asarray(x, np.float32)
        return x[..., :self.model.input_shape[-1]]

    def logits_model(self, two_class=False):
        """One flat functional graph from the model's own input to its logits (tf-keras-vis
        finds layers by name in it); `two_class`: a sigmoid head's logit z as [0, z], whose
        softmax is [1 - sigmoid(z), sigmoid(z)]."""
        import keras

        out = self._logits
        if two_class and not self._two_way:
            out = keras.layers.Lambda(lambda z: keras.ops.concatenate([keras.ops.zeros_like(z), z], axis=-1),
                                      name="two_class")(out)
        return keras.Model(self.model.input, out)

    def call_model_function(self, x_value_batch, call_model_args=None, expected_keys=None):
        """PAIR's callback. `call_model_args["cls"]`: class per image of the stack (last leading dim)."""
        from saliency.core import base

        cls = (call_model_args or {}).get("cls", 1)
        out = {}
        if base.INPUT_OUTPUT_GRADIENTS in expected_keys:
            _, out[base.INPUT_OUTPUT_GRADIENTS] = self.input_gradients(x_value_batch, cls)
        if base.CONVOLUTION_LAYER_VALUES in expected_keys or base.CONVOLUTION_OUTPUT_GRADIENTS in expected_keys:
            flat, c, lead = self._flat(x_value_batch, cls)
            _, feats, grads = self.conv_gradients(flat, c)
            out[base.CONVOLUTION_LAYER_VALUES] = feats.reshape(*lead, *feats.shape[1:])
            out[base.CONVOLUTION_OUTPUT_GRADIENTS] = grads.reshape(*lead, *grads.shape[1:])
        return out
