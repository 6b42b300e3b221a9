"""RetinaNet detection baseline ([A]): keras-hub's `RetinaNetObjectDetector` on a ResNet backbone,
trained on the RSNA boxes with the focal loss, through `cxrsal.training.fit.train`.

Images go in grey [H, W, 1] in [0, 1]; `detector_inputs` repeats them to three channels with
ImageNet's normalisation (what a pretrained preset expects; harmless from scratch). Boxes are
(x, y, width, height) in pixels of the model's input ("xywh").
"""

import numpy as np

from ..errors import CxrsalError
from ..resizing import scale_boxes
from ..runs import register_task
from .predict import BaselineTask

# keras-hub ResNetBackbone settings (ResNet v1, torchvision's layouts); resnet10 is the small one
# the tests and the demo train
RESNETS = {
    "resnet10": ("basic_block", [1, 1, 1, 1]),
    "resnet18": ("basic_block", [2, 2, 2, 2]),
    "resnet34": ("basic_block", [3, 4, 6, 3]),
    "resnet50": ("bottleneck_block", [3, 4, 6, 3]),
    "resnet101": ("bottleneck_block", [3, 4, 23, 3]),
    "resnet152": ("bottleneck_block", [3, 8, 36, 3]),
}
PRESETS = {"resnet18": "resnet_18_imagenet", "resnet50": "resnet_50_imagenet", "resnet101": "resnet_101_imagenet",
           "resnet152": "resnet_152_imagenet"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BOX_FORMAT = "xywh"


def detector_inputs(images):
    """Grey [B, H, W, 1] in [0, 1] -> [B, H, W, 3], ImageNet-normalised (TensorFlow or NumPy in)."""
    import tensorflow as tf

    x = tf.repeat(tf.convert_to_tensor(images, tf.float32), 3, axis=-1)
    return (x - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)


def _backbone(name, weights, size):
    import keras_hub

    if name not in RESNETS:
        raise CxrsalError(f"baseline.backbone={name!r}: valid choices: {', '.join(RESNETS)}")
    if weights in ("", "none", "None", None):
        block, blocks = RESNETS[name]
        return keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
            stackwise_num_blocks=blocks, stackwise_num_strides=[1, 2, 2, 2], block_type=block,
            use_pre_activation=False, image_shape=(size, size, 3))
    preset = PRESETS.get(name) if weights == "imagenet" else weights
    if preset is None:
        raise CxrsalError(f"baseline.weights=imagenet: keras-hub has no ImageNet preset for {name}; "
                          f"choose one of {', '.join(PRESETS)} or baseline.weights=none")
    try:
        return keras_hub.models.ResNetBackbone.from_preset(preset, image_shape=(size, size, 3))
    except Exception as e:   # offline: requests' ConnectionError; a bad folder: FileNotFoundError/ValueError
        raise CxrsalError(f"baseline.weights={weights}: cannot load keras-hub preset {preset!r} "
                          f"({type(e).__name__}: {str(e).splitlines()[0][:160]}); download it where Kaggle "
                          "is reachable and pass its folder (--set baseline.weights=DIR), or use none") from None


_CLASSES = []


def detector_class():
    """keras-hub's RetinaNetObjectDetector, registered under cxrsal with a `compile_from_config`
    (defined on first use: importing keras-hub costs about a second).

    keras-hub's detector has its own `compile()`, so Keras skips the saved compile settings when
    loading a checkpoint and keras-hub compiles its defaults instead (Adam 5e-5, an unbalanced
    focal loss): a resumed run would train with other losses and a fresh Adam. This class
    compiles with the saved ones, so the optimizer's state loads too.
    """
    if not _CLASSES:
        import keras
        import keras_hub

        @keras.saving.register_keras_serializable(package="cxrsal", name="RetinaNet")
        class RetinaNet(keras_hub.models.RetinaNetObjectDetector):
            def compile_from_config(self, config):
                config = keras.saving.deserialize_keras_object(config)
                loss = config.get("loss") or {}
                self.compile(optimizer=config["optimizer"], box_loss=loss["bbox_regression"],
                             classification_loss=loss["cls_logits"])
                if self.built:
                    self.optimizer.build(self.trainable_variables)

        _CLASSES.append(RetinaNet)
    return _CLASSES[0]


def check_settings(b, size):
    """One clear line for RetinaNet settings that keras-hub would reject with a traceback."""
    if b.backbone not in RESNETS:
        raise CxrsalError(f"baseline.backbone={b.backbone!r}: valid choices: {', '.join(RESNETS)}")
    if not 2 <= b.min_level <= b.max_level:
        raise CxrsalError(f"baseline.min_level={b.min_level}, max_level={b.max_level}: need 2 <= min_level <= "
                          "max_level")
    if size % (2 ** b.max_level):
        raise CxrsalError(f"RetinaNet input {size} px must be divisible by 2^max_level = {2 ** b.max_level} "
                          f"(set model.input_size, or baseline.max_level lower)")
    if b.score_threshold < 0.01:
        raise CxrsalError(f"baseline.score_threshold={b.score_threshold}: `cxrsal score` draws the boxes above "
                          "0.01 (the detector heatmap of docs/methods.md), so keep the threshold at 0.01 or above")


def build_retinanet(size, b, lr=1e-4):
    """A compiled RetinaNet for `size` x `size` inputs with the settings `b` (a BaselineConfig)."""
    import keras
    import keras_hub
    from keras_hub.layers import AnchorGenerator, NonMaxSuppression
    from keras_hub.src.models.retinanet.retinanet_label_encoder import RetinaNetLabelEncoder

    check_settings(b, size)
    encoder = _backbone(b.backbone, b.weights, size)
    backbone = keras_hub.models.RetinaNetBackbone(image_encoder=encoder, min_level=b.min_level,
                                                  max_level=b.max_level, use_p5=False,
                                                  image_shape=(size, size, 3))
    anchors = AnchorGenerator(BOX_FORMAT, min_level=b.min_level, max_level=b.max_level, num_scales=3,
                              aspect_ratios=[0.5, 1.0, 2.0], anchor_size=b.anchor_size)
    # anchors with IoU >= positive_iou with a box learn it, < negative_iou are background, the rest
    # are ignored (keras-hub's force-match switch fails on padded batches, so a box that no anchor
    # overlaps enough teaches nothing: size the anchors to the boxes, see anchor_size)
    encoder_ = RetinaNetLabelEncoder(anchors, bounding_box_format=BOX_FORMAT, encoding_format="center_xywh",
                                     positive_threshold=b.positive_iou, negative_threshold=b.negative_iou)
    decoder = NonMaxSuppression(bounding_box_format=BOX_FORMAT, from_logits=True, iou_threshold=b.iou_threshold,
                                confidence_threshold=b.score_threshold, max_detections=b.max_detections)
    model = detector_class()(
        backbone=backbone, num_classes=1, bounding_box_format=BOX_FORMAT, anchor_generator=anchors,
        label_encoder=encoder_, pre_logits_num_conv_layers=b.head_convs, prediction_decoder=decoder, name="retinanet")
    # the focal loss of Lin et al. (alpha-balanced), summed and normalised by the positive anchors
    # in keras-hub's compute_loss; smooth-L1 (Huber) on the box offsets
    model.compile(optimizer=keras.optimizers.Adam(lr), box_loss=keras.losses.Huber(reduction="sum"),
                  classification_loss=keras.losses.BinaryFocalCrossentropy(
                      apply_class_balancing=True, alpha=b.focal_alpha, gamma=b.focal_gamma, from_logits=True,
                      reduction="sum"))
    return model


def split_boxes(rows, size):
    """Ground-truth boxes of a split's manifest rows (index order) at the model's input size:
    (boxes float32 [N, K, 4] xywh, classes float32 [N, K]: 0 for a box, -1 for padding)."""
    from ..data.manifest import parse_boxes

    parsed = [parse_boxes(r["boxes"]) for r in rows]
    k = max([len(p) for p in parsed] + [1])
    boxes = np.full((len(rows), k, 4), -1.0, np.float32)
    classes = np.full((len(rows), k), -1.0, np.float32)
    for i, (r, bs) in enumerate(zip(rows, parsed)):
        for j, box in enumerate(scale_boxes(bs, (r["height"], r["width"]), size)):
            boxes[i, j] = box
            classes[i, j] = 0.0
    return boxes, classes


def box_dataset(data_dir, split, size, pipeline, *, epoch=0, steps=0):
    """(detector inputs, {"boxes", "labels"}) batches; flipped images get flipped boxes."""
    import tensorflow as tf

    from ..data.manifest import read_manifest, split_rows
    from ..data.pipeline import dataset_from_config

    boxes, classes = split_boxes(split_rows(read_manifest(data_dir), split), size)
    all_boxes, all_classes = tf.constant(boxes), tf.constant(classes)

    def targets(images, labels, idx, flips):
        b, c = tf.gather(all_boxes, idx), tf.gather(all_classes, idx)
        flipped = float(size) - b[..., 0] - b[..., 2]
        x = tf.where(flips[:, None] & (c >= 0), flipped, b[..., 0])
        return detector_inputs(images), {"boxes": tf.concat([x[..., None], b[..., 1:]], -1), "labels": c}

    ds = dataset_from_config(data_dir, split, pipeline, image_size=size, start_epoch=epoch, advance=False,
                             with_masks=False, with_index=True, repeat=bool(steps))
    return ds.map(targets)


def detect(model, images, score_threshold=0.01, batch_size=None):
    """Per image of `images` (grey [B, S, S, 1] in [0, 1]): (boxes [n, 4] xywh at S, scores [n]),
    the detections with score > `score_threshold`, clipped to the image, best first.

    A batch smaller than `batch_size` is padded to it: Keras retraces its predict function with an
    unknown batch dimension for a second batch size, and keras-hub's NMS then fails.
    """
    n, size = len(images), np.shape(images)[1]
    images = np.asarray(images, np.float32)
    if batch_size and n < batch_size:
        images = np.concatenate([images, np.zeros((batch_size - n, *images.shape[1:]), np.float32)])
    pred = model.predict(detector_inputs(images), batch_size=len(images), verbose=0)
    out = []
    for b, s in zip(np.asarray(pred["boxes"], np.float64)[:n], np.asarray(pred["confidence"], np.float64)[:n]):
        x0, y0 = np.clip(b[:, 0], 0, size), np.clip(b[:, 1], 0, size)
        x1, y1 = np.clip(b[:, 0] + b[:, 2], 0, size), np.clip(b[:, 1] + b[:, 3], 0, size)
        b = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
        keep = (s > score_threshold) & (b[:, 2] > 0) & (b[:, 3] > 0)
        order = np.argsort(-s[keep], kind="stable")
        out.append((b[keep][order], s[keep][order]))
    return out


@register_task
class RetinaNetTask(BaselineTask):
    """`cxrsal train-baseline retinanet`: RSNA boxes, early stopping on the validation loss."""

    name = "retinanet"

    def __init__(self, cfg, data_dir):
        from ..data.prepare import annotation_of, check_prepared

        super().__init__(cfg, data_dir)
        summary = check_prepared(data_dir)
        if annotation_of(summary) != "boxes":
            raise CxrsalError(f"--data {data_dir}: RetinaNet trains on boxes; this {summary['dataset']} run has "
                              f"{annotation_of(summary)} (use the unet baseline for masks)")
        check_settings(cfg.baseline, cfg.model.input_size or summary["size"])

    def describe(self):
        from ..config import to_dict

        return {"arch": self.cfg.baseline.backbone, "head": "retinanet", "options": to_dict(self.cfg)["baseline"]}

    def build(self, size):
        return build_retinanet(size, self.cfg.baseline, self.cfg.train.lr)

    def dataset(self, split, size, epoch=0, steps=0):
        return box_dataset(self.data_dir, split, size, self.cfg.pipeline, epoch=epoch, steps=steps)

    @classmethod
    def prepare_loading(cls):
        detector_class()   # keras-hub's detector registered, with its saved compile settings

    def predict(self, model, images, rows, masks):
        """Box heatmaps (each pixel: the best score > threshold of the boxes covering it, docs/methods.md);
        image score: the best box score; boxes kept for detections.csv in original pixels."""
        from ..metrics import box_heatmap

        b = self.cfg.baseline
        size = np.shape(images)[1]
        found = detect(model, images, b.score_threshold, batch_size=self.cfg.pipeline.batch_size)
        self._detections = getattr(self, "_detections", [])
        for r, (boxes, scores) in zip(rows, found):
            original = scale_boxes(boxes, size, (r["height"], r["width"]))
            self._detections += [dict(patientId=r["image_id"], x=x, y=y, width=w, height=h, score=v)
                                 for (x, y, w, h), v in zip(original, scores)]
        maps = [box_heatmap(boxes, scores, (size, size), min_score=b.score_threshold) for boxes, scores in found]
        return maps, [float(scores.max()) if len(scores) else 0.0 for _, scores in found]

    def finish(self, out, split, metrics):
        import pandas as pd

        from ..files import write_frame

        detections = getattr(self, "_detections", [])
        write_frame(out / "detections.csv",
                    pd.DataFrame(detections, columns=["patientId", "x", "y", "width", "height", "score"]))
        metrics[f"{split}_boxes"] = len(detections)

    def summary(self, metrics, split):
        return f"{metrics[f'{split}_boxes']} boxes with score > {self.cfg.baseline.score_threshold}"

    @classmethod
    def usage(cls, folder):
        return f"boxes:{folder / 'detections.csv'}"
