"""YAML configuration into frozen dataclasses; unknown keys are errors; `--set a.b=v` overrides."""

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .io import atomic_write_text


def _one_of(section, key, value, choices):
    if value not in choices:
        raise ConfigError(f"{section}.{key} {value!r}: valid choices: {', '.join(map(str, choices))}")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "rsna"              # rsna | siim | folder | coco
    root: str = ""                     # the Kaggle download (or `cxrsal synth` output); folder/COCO: the images
    size: int = 320                    # cached image side, pixels ([A]: 320 for InceptionV3)
    seed: int = 0                      # split seed
    split: typing.Optional[tuple[float, float, float]] = None   # None: 80:10:10 RSNA, 81:9:10 SIIM
    cache: str = ""                    # decoded-image cache; "" = RUN/cache
    workers: int = 0                   # decoding processes; 0 = one per core
    strict: bool = False               # stop at the first bad item instead of skipping it
    annotations: str = ""              # coco: the annotation file (JSON)
    positive: tuple[str, ...] = ()     # coco: the categories that make an image positive; () = any


@dataclass(frozen=True)
class PipelineConfig:
    batch_size: int = 32
    image_size: int = 0                # model input side; 0 = the prepared size
    balanced: bool = False             # class-balanced sampling (with replacement)
    flip: bool = False                 # random horizontal flip (training only)
    shuffle: bool = True
    seed: int = 0


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "resnet18"             # see `cxrsal.models.BACKBONES`
    head: str = "classification"       # classification | wildcat
    weights: str = "none"              # imagenet | none | a backbone weights file
    input_size: int = 0                # model input side; 0 = the prepared size
    output_stride: int = 32            # stride of the last feature map; 16 / 8: dilated ResNet-18/34 (finer maps)
    width: float = 1.0                 # ResNet-18/34 channels x width (0.5: half); pretrained weights: 1 only
    output: str = "sigmoid"            # classification head: sigmoid, or softmax (two-way, as [A])
    num_maps: int = 4                  # WILDCAT M ([B]: 4)
    kmax: float = 1                    # WILDCAT k: <1 a fraction of the cells, else a count ([B]: 1)
    kmin: typing.Optional[float] = None   # None: = kmax
    alpha: float = 0.0                 # WILDCAT min-region weight ([B]: 0)
    blocks: tuple[str, ...] = ()       # a user's model (arch external-*): randomization blocks, top down

    def head_options(self):
        if self.head == "wildcat":
            return dict(num_maps=self.num_maps, kmax=self.kmax, kmin=self.kmin, alpha=self.alpha)
        return dict(output=self.output)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20                   # at most
    lr: float = 1e-4                   # Adam learning rate
    patience: int = 4                  # epochs without a better validation score (AUC; baselines: loss) before stopping
    plateau_patience: int = 0          # epochs without a better validation score before the lr is cut; 0 = never
    plateau_factor: float = 0.1        # reduce-on-plateau: lr multiplied by this
    min_lr: float = 0.0                # reduce-on-plateau floor
    seed: int = 0                      # weights initialisation (data order: pipeline.seed)
    deterministic: bool = True         # TensorFlow op determinism: a resumed run equals an uninterrupted one
    mixed_precision: bool = False      # float16 compute on GPUs (ignored on the CPU)
    steps_per_epoch: int = 0           # 0: one pass over the training split
    # data randomization test (Adebayo et al. 2018): >= 0 trains on the training labels permuted
    # with this seed, keeping the epoch with the best training AUC on those labels, and stops
    # once it reaches `fit_auc` (the model has memorised them); -1: the true labels
    permute_labels: int = -1
    fit_auc: float = 0.95


@dataclass(frozen=True)
class BaselineConfig:
    """[A]'s localization networks (`cxrsal train-baseline`); `train` and `pipeline` apply too."""
    kind: str = "unet"                 # unet (segmentation, SIIM) | retinanet (detection, RSNA)
    filters: int = 16                  # U-Net: filters of the first stage (doubling per stage)
    depth: int = 4                     # U-Net: pooling stages (input side divisible by 2^depth)
    focal_gamma: float = 2.0           # focal loss (U-Net's focal + Dice; RetinaNet's classification)
    focal_alpha: float = 0.25
    dice_weight: float = 1.0           # U-Net loss = focal + dice_weight * Dice
    dice: str = "batch"                # soft Dice over the whole batch, or per image ("image")
    backbone: str = "resnet50"         # RetinaNet: resnet10/18/34/50/101/152
    weights: str = "none"              # RetinaNet backbone: none | imagenet (keras-hub preset) | a preset folder
    min_level: int = 3                 # RetinaNet feature pyramid levels (stride 2^level)
    max_level: int = 7
    head_convs: int = 4                # RetinaNet: 3x3 convolutions before each head's output
    anchor_size: float = 4.0           # RetinaNet: anchor side at each level, in strides
    positive_iou: float = 0.5          # RetinaNet: anchors matching a box by IoU >= this learn it
    negative_iou: float = 0.4          # RetinaNet: anchors below this are background (between: ignored)
    score_threshold: float = 0.01      # boxes kept as detections and in heatmaps (SPEC §5: > 0.01)
    iou_threshold: float = 0.5         # RetinaNet non-maximum suppression
    max_detections: int = 100          # RetinaNet: per image
    predict_split: str = "test"        # split written after training (probability maps / boxes)


# Saliency-method parameters are declared by the methods themselves (`Method.config`: parameter
# -> "saliency.KEY"), one file per method: the `saliency:` section accepts exactly the declared
# keys. The method package registers them here when imported; a config meeting a `saliency:`
# section imports it by name (a plugin, as an entry point would be), so the layers stay
# config < saliency and `cxrsal --help` imports no method.
METHOD_PACKAGE = "cxrsal.saliency"
DECLARED = {}          # saliency key -> default (shared by the methods declaring it)
METHOD_KEYS = {}       # method name -> {parameter: "section.key"}


def declare(method, config, defaults):
    """Record `method`'s config fields ({parameter: "section.key"}); keys shared by several
    methods (`saliency.samples` of sg and sig) must agree on the default."""
    for param, key in config.items():
        section, name = key.split(".", 1)
        if section == "saliency":
            if name in DECLARED and DECLARED[name] != defaults[param]:
                raise ValueError(f"method {method}: saliency.{name} default {defaults[param]!r} differs from "
                                 f"{DECLARED[name]!r} declared by another method")
            DECLARED[name] = defaults[param]
    METHOD_KEYS[method] = dict(config)


def declared():
    if not METHOD_KEYS:
        import importlib

        importlib.import_module(METHOD_PACKAGE)
    return DECLARED


@dataclass(frozen=True)
class SaliencyConfig:
    split: str = "test"
    positives_only: bool = False
    limit: int = 0                     # 0: every selected image
    checkpoint: str = "best"           # best | last
    target: str = "positive"           # positive | predicted ([A] explained the predicted class)
    seed: int = 0                      # SmoothGrad noise (per image: seed and its index in the split)
    # model evaluations per forward + gradient call; auto: the largest that fits the GPU's memory
    # (probed, halving on out-of-memory; 32 on a CPU). An out-of-memory error during a run halves
    # it and retries the same images either way
    batch_size: typing.Union[int, str] = 32
    # XLA-compile the gradient functions; precision mixed: forward/backward in bfloat16 (float16
    # where the GPU lacks bfloat16) with float32 variables, the methods' sums in float32 or wider
    jit_compile: bool = False
    precision: str = "float32"
    group_size: int = 8                # images computed together; the unit of sharding and resumption
    # [A] fed the grey image replicated to 3 channels and summed |gradient| over them: 3
    # differentiates with respect to that [0, 1] 3-channel image (noise drawn per channel);
    # 1 with respect to the grey input (|sum of the channel gradients|)
    input_channels: int = 3
    # the methods' declared parameters set in the config (samples, noise, magnitude, ig_steps,
    # ig_baseline, xrai_steps, ...: see each method's `config`); the rest take their defaults
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        _one_of("saliency", "input_channels", self.input_channels, (3, 1))
        _one_of("saliency", "target", self.target, ("positive", "predicted"))
        _one_of("saliency", "precision", self.precision, ("float32", "mixed"))
        if self.batch_size != "auto" and not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ConfigError(f"saliency.batch_size {self.batch_size!r}: a positive integer or auto")

    def __getattr__(self, name):
        # a declared method parameter reads like a field: cfg.saliency.ig_steps
        if name.startswith("_") or name == "params":
            raise AttributeError(name)
        keys = declared()
        if name in keys:
            return self.params.get(name, keys[name])
        raise AttributeError(f"SaliencyConfig has no field {name!r}")

    @classmethod
    def extra_keys(cls):
        return declared()


@dataclass(frozen=True)
class GgcamConfig:
    # processed ([A]): GBP and GradCAM each clipped and scaled first, then multiplied;
    # raw: product of the 2-D reductions
    order: str = "processed"

    def __post_init__(self):
        _one_of("ggcam", "order", self.order, ("processed", "raw"))


@dataclass(frozen=True)
class SimilarityConfig:
    """What SSIM compares (randomization, thresholds, repeatability, reproducibility)."""
    # processed ([A]'s code): the post-processed [0, 1] maps; raw ([A]'s text, "raw maps, no
    # abs"): channels summed with their signs, min-max scaled to [0, 1]
    maps: str = "processed"
    data_range: float = 1.0            # [A]'s code: 2 (old scikit-image inferred it for floats)

    def __post_init__(self):
        _one_of("similarity", "maps", self.maps, ("processed", "raw"))
        if not self.data_range > 0:
            raise ConfigError(f"similarity.data_range {self.data_range}: must be positive")


@dataclass(frozen=True)
class RandomizationConfig:
    """`cxrsal randomize`: cascading randomization and its degradation threshold."""
    n_images: int = 0                  # positive test images; 0 = all ([A])
    pairs_per_image: int = 50          # degradation threshold: partners per image ([A]'s code)
    pairs: int = 0                     # > 0: that many random pairs in all instead ([A]'s text: 50)
    init: str = "truncated-normal"     # truncated-normal ([A]) | layer (each layer's own initializers)
    sigma: float = 0.01                # truncated normal sigma
    # top-down ([A], Adebayo et al. 2018): cumulatively from the logits down; bottom-up:
    # cumulatively from the first block up (Binder et al. 2023); independent: one block at a time
    order: str = "top-down"
    all_blocks: bool = False           # also the stem (and InceptionV3's mixed0)
    # sMPRT (Hedstroem et al. 2023): every map of every step averaged over this many noisy copies
    # of the input (0 = plain MPRT, [A]); noise sigma as a fraction of the image's max - min
    smooth_samples: int = 0
    smooth_noise: float = 0.1
    seed: int = 0

    def __post_init__(self):
        _one_of("randomization", "init", self.init, ("truncated-normal", "layer"))
        _one_of("randomization", "order", self.order, ("top-down", "bottom-up", "independent"))
        if self.smooth_samples < 0 or self.smooth_noise < 0:
            raise ConfigError("randomization.smooth_samples and smooth_noise: must be 0 or more")
        for key in ("n_images", "pairs", "pairs_per_image"):
            if getattr(self, key) < 0:
                raise ConfigError(f"randomization.{key} {getattr(self, key)}: must be 0 or more")


@dataclass(frozen=True)
class CompareConfig:
    """`cxrsal compare`: repeatability / reproducibility."""
    n_images: int = 0                  # positive test images; 0 = all ([A])


SCORE_PARTS = ("utility", "pointwise")


@dataclass(frozen=True)
class ScoreConfig:
    """`cxrsal score`: what is scored against the ground truth."""
    baselines: str = ""                # comma list: avg, boxes:FILE (detector CSV), seg:DIR (probability maps)
    # utility (AUPRC/AUROC of the positives) and pointwise detection (every image of the store)
    parts: tuple[str, ...] = SCORE_PARTS
    # CheXlocalize's mIoU: a map store of the same model on the validation split, where each
    # method's threshold is tuned (never on test); "" = no IoU
    validation: str = ""
    bootstrap: int = 1000              # image-level replicates of every summary interval (95%); 0 = none
    seed: int = 0                      # the bootstrap's seed (every method resampled on the same images)

    def __post_init__(self):
        unknown = [p for p in self.parts if p not in SCORE_PARTS]
        if unknown or not self.parts:
            raise ConfigError(f"score.parts {', '.join(unknown) or '(none)'}: valid choices: {', '.join(SCORE_PARTS)}")
        if self.bootstrap < 0:
            raise ConfigError(f"score.bootstrap {self.bootstrap}: must be 0 (no intervals) or more")


@dataclass(frozen=True)
class PointwiseConfig:
    """Pointwise detection ([B]): the arg-max cell of a map as a detection."""
    # receptive-field: each backbone's true cell centres (strides and paddings); grid: [B]'s
    # text, (i + 1/2) * d
    centres: str = "receptive-field"
    tolerance: float = 0.0             # pixels around a ground-truth box still counted a hit

    def __post_init__(self):
        _one_of("pointwise", "centres", self.centres, ("receptive-field", "grid"))


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    saliency: SaliencyConfig = field(default_factory=SaliencyConfig)
    ggcam: GgcamConfig = field(default_factory=GgcamConfig)
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    pointwise: PointwiseConfig = field(default_factory=PointwiseConfig)

    def lookup(self, key):
        """The value of "section.key", a field or a declared method parameter."""
        section, name = key.split(".", 1)
        return getattr(getattr(self, section), name)

    def method_params(self, method):
        """The parameters of one saliency method set by the config (what a map store records),
        from the method's declared config fields."""
        declared()
        return {param: self.lookup(key) for param, key in METHOD_KEYS.get(method, {}).items()}

    def choices(self):
        """The settings where [A]'s text and code disagree: recorded beside every result."""
        return {"similarity.maps": self.similarity.maps, "similarity.data_range": self.similarity.data_range,
                "saliency.input_channels": self.saliency.input_channels, "saliency.target": self.saliency.target,
                "ggcam.order": self.ggcam.order, "pointwise.centres": self.pointwise.centres,
                "randomization.pairs_per_image": self.randomization.pairs_per_image,
                "randomization.pairs": self.randomization.pairs}


def _type_name(tp):
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(value, tp, key, source):
    """Check/convert one YAML value to the annotated type `tp`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        for a in args[:-1]:      # the first type the value fits
            try:
                return _coerce(value, a, key, source)
            except ConfigError:
                pass
        return _coerce(value, args[-1], key, source)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or (Ellipsis not in args and len(value) != len(args)):
            raise ConfigError(f"{source}: {key} must be a list of {len(args)} values, got {value!r}")
        item_types = [args[0]] * len(value) if Ellipsis in args else args
        return tuple(_coerce(v, t, key, source) for v, t in zip(value, item_types))
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, source, prefix=key + ".")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # PyYAML (YAML 1.1) reads 1e-4 without a dot as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    else:
        return value
    raise ConfigError(f"{source}: {key} must be {_type_name(tp)}, got {value!r}")


def from_mapping(cls, mapping, source="config", prefix=""):
    """Build dataclass `cls` from a nested mapping, refusing keys it does not have."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'the top level'} must be a mapping, got {mapping!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "params" or not hasattr(cls, "extra_keys")]
    extra = cls.extra_keys() if hasattr(cls, "extra_keys") else {}
    unknown = [k for k in mapping if k not in names and k not in extra]
    if unknown:
        where = f"section '{prefix.rstrip('.')}'" if prefix else "the top level"
        raise ConfigError(f"{source}: unknown key '{prefix}{unknown[0]}'; valid keys in {where}: "
                          f"{', '.join(names + sorted(extra))}")
    kwargs = {k: _coerce(v, hints[k], prefix + k, source) for k, v in mapping.items() if k in names}
    params = {k: _coerce(v, type(extra[k]), prefix + k, source) for k, v in mapping.items() if k in extra}
    # a parameter at its default is no setting: a written config loads back equal to the original
    params = {k: v for k, v in params.items() if v != extra[k]}
    return cls(**kwargs, **({"params": params} if extra else {}))


def to_dict(cfg):
    """Plain nested dict/list form of a config (what is written into run directories)."""
    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    out = plain(dataclasses.asdict(cfg))
    for section, value in out.items():
        if isinstance(value, dict) and "params" in value and hasattr(getattr(cfg, section), "extra_keys"):
            # method parameters are written flat, every declared one with its value
            params = value.pop("params")
            value.update({k: params.get(k, d) for k, d in getattr(cfg, section).extra_keys().items()})
    return out


def parse_override(text):
    """`section.key=value` -> (["section", "key"], value parsed as YAML)."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({e.problem})") from None
    return parts, value


def _merge(base, parts, value):
    node = base
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {'.'.join(parts)}: '{p}' is not a section")
        node = nxt
    node[parts[-1]] = value


def load_config(path=None, overrides=(), options=None, cls=Config, base=None):
    """Defaults < a command's own defaults `base` {"section.key": value} < YAML file `path` <
    command-line `options` {"section.key": value} < `--set` overrides."""
    import yaml

    data, source = {}, "defaults"
    if path:
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise ConfigError(f"--config {path}: cannot be read ({e.strerror})") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            what = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"--config {path}: not valid YAML{where} ({what})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"--config {path}: the top level must be a mapping of sections")
    for key, value in reversed(list((base or {}).items())):
        node = data
        for part in key.split(".")[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--config {path}: '{part}' must be a section")
        node.setdefault(key.split(".")[-1], value)
    for key, value in (options or {}).items():
        if value is not None:
            _merge(data, key.split("."), value)
    for text in overrides:
        parts, value = parse_override(text)
        _merge(data, parts, value)
    sources = source + (" with command-line options" if options or overrides else "")
    return from_mapping(cls, data, sources)


def write_config(cfg, run_dir, name="config.yaml"):
    """Write the resolved config into a run directory (atomically) and return its path."""
    import yaml

    path = Path(run_dir) / name
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return path
