"""The config's sections: every key with its default and its declared domain
(`cxrsal.domains`), the saliency methods' own parameters as they register, and the limits
between keys. `cxrsal.config` reads YAML files, options and `--set` against it."""

import dataclasses
import typing
from dataclasses import dataclass, field

from .domains import AnyOf, Flag, Number, OneOf, Optional, Seq, Text


def setting(default, domain):
    """A config field with its declared domain (`cxrsal.domains`): a value outside it is one line
    naming the key, the value and what is allowed, whether it comes from a YAML file, an option
    or `--set`."""
    return field(default=default, metadata={"domain": domain})


def _count(lo=1):
    return Number(lo=lo, integer=True)


SEED = _count(0)          # numpy seeds are non-negative integers
# stats.min_images: the least images a question is decided on (cxrsal.metrics.defined), at least two
MIN_IMAGES, MIN_IMAGES_DOMAIN = 5, _count(2)
MIXED_TESTS = OneOf("satterthwaite", "wald")
POSTHOCS = ("multcomp", "holm", "tukey-hsd-unpaired")     # cxrsal.stats.POSTHOC's names
ALPHA_DOMAIN = Number(lo=0, hi=1, lo_open=True, hi_open=True)
POSITIVE = Number(lo=0, lo_open=True)
# the names the registries hold (tests/test_domains.py checks each list against its registry)
DATASETS = ("rsna", "siim", "folder", "coco")
ARCHS = ("inceptionv3", "densenet121", "densenet169", "resnet18", "resnet34", "resnet50", "resnet101",
         "resnet152", "vgg19")
EXTERNAL = "external-"     # an adopted saved model's arch: external-<file stem>
# the backbones with strides below 32 (`Backbone.output_strides`) and with `model.width` (`Backbone.widths`)
DILATED_ARCHS = ("resnet18", "resnet34")
WIDTH_ARCHS = ("resnet18", "resnet34")
HEADS = ("classification", "wildcat")
BASELINE_KINDS = ("unet", "retinanet")
RETINANET_BACKBONES = ("resnet10", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
SPLIT_NAMES = ("train", "val", "test")
# randomization.order: which blocks each step of cascading randomization randomizes
ORDER_MEANINGS = {"top-down": "cumulatively from the logits down ([A], Adebayo et al. 2018)",
                  "bottom-up": "cumulatively from the lowest block up (Binder et al. 2023)",
                  "independent": "one block at a time"}
ORDERS = tuple(ORDER_MEANINGS)
# randomization.check: the sanity check, and the settings it implies where they are left null
CHECK_MEANINGS = {"mprt": "model parameter randomization test, the maps as they are ([A], Adebayo et al. 2018)",
                  "smprt": "smooth MPRT: every map averaged over noisy copies of the input, compared by Spearman "
                           "of the absolute maps (Hedstroem et al. 2023)"}
CHECKS = tuple(CHECK_MEANINGS)
CHECK_DEFAULTS = {"mprt": {"order": "top-down", "smooth_samples": 0},
                  "smprt": {"order": "bottom-up", "smooth_samples": 50}}
# emprt.complexity and the bin rules of emprt.bins (cxrsal.metrics.complexity; tests/test_domains.py)
COMPLEXITIES = ("histogram", "spatial")
BIN_RULES = ("freedman-diaconis", "scott", "sqrt", "sturges", "rice")
INITS = ("truncated-normal", "layer")
SCORE_PARTS = ("utility", "pointwise")
# score.baselines: each registered baseline's prefix (cxrsal.experiments.score_baselines), the
# metavar of the argument it takes ("" none) and what that argument holds
SCORE_BASELINE_ARGUMENTS = {"avg": ("", ""), "boxes": ("FILE", "detections CSV"), "seg": ("DIR", "probability maps")}
BASELINE_KINDS_OF_SCORE = tuple(SCORE_BASELINE_ARGUMENTS)


class _Arch(Text):
    """A registered backbone, or an adopted model's `external-<name>`."""

    def accepts(self, value):
        return isinstance(value, str) and (value in ARCHS or (value.startswith(EXTERNAL) and len(value) > len(EXTERNAL)))

    def describe(self):
        return f"one of {', '.join(ARCHS)} (or {EXTERNAL}NAME, an adopted model)"


def baseline_parts(text):
    """`score.baselines` "avg,boxes:FILE,seg:DIR" -> [("avg", None), ("boxes", FILE), ("seg", DIR)];
    None when it is not such a list (`SCORE_BASELINE_ARGUMENTS`; the files are checked when scoring)."""
    out = []
    for part in [p.strip() for p in (text or "").split(",") if p.strip()]:
        kind, colon, arg = part.partition(":")
        takes = bool(SCORE_BASELINE_ARGUMENTS.get(kind, ("",))[0])
        if kind not in SCORE_BASELINE_ARGUMENTS or takes != bool(colon) or (takes and not arg.strip()):
            return None
        out.append((kind, arg.strip() or None))
    return out


class _Baselines(Text):
    """`score.baselines`: a comma list of the baselines' prefixes, with their arguments."""

    def accepts(self, value):
        return isinstance(value, str) and baseline_parts(value) is not None

    def describe(self):
        items = [kind + (f":{metavar} ({what})" if metavar else "")
                 for kind, (metavar, what) in SCORE_BASELINE_ARGUMENTS.items()]
        return f"a comma list of {', '.join(items[:-1])} and {items[-1]}"


@dataclass(frozen=True)
class DataConfig:
    # rsna | siim | folder | coco
    dataset: str = setting("rsna", OneOf(*DATASETS))
    # the Kaggle download (or `cxrsal synth` output); folder/COCO: the images
    root: str = setting("", Text())
    # cached image side, pixels ([A]: 320 for InceptionV3)
    size: int = setting(320, Number(8, 8192, integer=True))
    seed: int = setting(0, SEED)                     # split seed
    # None: 80:10:10 RSNA, 81:9:10 SIIM
    split: typing.Optional[tuple[float, float, float]] = setting(
        None, Optional(Seq(Number(lo=0), length=3, positive_total=True)))
    cache: str = setting("", Text())                 # decoded-image cache; "" = RUN/cache
    workers: int = setting(0, _count(0))             # decoding processes; 0 = one per core
    strict: bool = setting(False, Flag())            # stop at the first bad item instead of skipping it
    annotations: str = setting("", Text())           # coco: the annotation file (JSON)
    # coco: the categories that make an image positive; () = any
    positive: tuple[str, ...] = setting((), Seq(Text(nonempty=True)))


@dataclass(frozen=True)
class PipelineConfig:
    batch_size: int = setting(32, _count())
    image_size: int = setting(0, _count(0))          # model input side; 0 = the prepared size
    balanced: bool = setting(False, Flag())          # class-balanced sampling (with replacement)
    flip: bool = setting(False, Flag())              # random horizontal flip (training only)
    shuffle: bool = setting(True, Flag())
    seed: int = setting(0, SEED)


@dataclass(frozen=True)
class ModelConfig:
    arch: str = setting("resnet18", _Arch())         # see `cxrsal.models.BACKBONES`
    head: str = setting("classification", OneOf(*HEADS))
    # imagenet | none | a backbone weights file (checked when the model is built)
    weights: str = setting("none", Text(nonempty=True))
    input_size: int = setting(0, _count(0))          # model input side; 0 = the prepared size
    # stride of the last feature map; 16 / 8: dilated ResNet-18/34 (finer maps)
    output_stride: int = setting(32, OneOf(8, 16, 32))
    # ResNet-18/34 channels x width (0.5: half; at least 8 channels a layer); pretrained weights: 1 only
    width: float = setting(1.0, Number(1 / 32, 1, lo_open=True))
    # classification head: sigmoid, or softmax (two-way, as [A])
    output: str = setting("sigmoid", OneOf("sigmoid", "softmax"))
    num_maps: int = setting(4, _count())             # WILDCAT M ([B]: 4)
    # WILDCAT k: < 1 a fraction of the cells, else a count ([B]: 1); 0 would pool nothing
    kmax: float = setting(1, POSITIVE)
    kmin: typing.Optional[float] = setting(None, Optional(Number(lo=0)))   # None: = kmax
    alpha: float = setting(0.0, Number())            # WILDCAT min-region weight ([B]: 0)
    # a user's model (arch external-*): randomization blocks, top down
    blocks: tuple[str, ...] = setting((), Seq(Text(nonempty=True), unique=True))

    def head_options(self):
        if self.head == "wildcat":
            return dict(num_maps=self.num_maps, kmax=self.kmax, kmin=self.kmin, alpha=self.alpha)
        return dict(output=self.output)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = setting(20, _count())              # at most
    lr: float = setting(1e-4, POSITIVE)              # Adam learning rate
    # epochs without a better validation score (AUC; baselines: loss) before stopping
    patience: int = setting(4, _count())
    # epochs without a better validation score before the lr is cut; 0 = never
    plateau_patience: int = setting(0, _count(0))
    plateau_factor: float = setting(0.1, Number(0, 1, lo_open=True, hi_open=True))  # lr multiplied by this
    min_lr: float = setting(0.0, Number(lo=0))       # reduce-on-plateau floor (at most train.lr)
    seed: int = setting(0, SEED)                     # weights initialisation (data order: pipeline.seed)
    # TensorFlow op determinism: a resumed run equals an uninterrupted one
    deterministic: bool = setting(True, Flag())
    mixed_precision: bool = setting(False, Flag())   # float16 compute on GPUs (ignored on the CPU)
    steps_per_epoch: int = setting(0, _count(0))     # 0: one pass over the training split
    # data randomization test (Adebayo et al. 2018): >= 0 trains on the training labels permuted
    # with this seed, keeping the epoch with the best training AUC on those labels, and stops
    # once it reaches `fit_auc` (the model has memorised them); -1: the true labels
    permute_labels: int = setting(-1, _count(-1))
    fit_auc: float = setting(0.95, Number(0.5, 1, lo_open=True))


@dataclass(frozen=True)
class BaselineConfig:
    """[A]'s localization networks (`cxrsal train-baseline`); `train` and `pipeline` apply too."""
    kind: str = setting("unet", OneOf(*BASELINE_KINDS))   # unet (segmentation, SIIM) | retinanet (detection, RSNA)
    # U-Net: filters of the first stage (doubling per stage)
    filters: int = setting(16, _count())
    # U-Net: pooling stages (the input side must be divisible by 2^depth)
    depth: int = setting(4, Number(1, 8, integer=True))
    # focal loss (U-Net's focal + Dice; RetinaNet's classification)
    focal_gamma: float = setting(2.0, Number(lo=0))
    focal_alpha: float = setting(0.25, Number(0, 1))
    dice_weight: float = setting(1.0, Number(lo=0))  # U-Net loss = focal + dice_weight * Dice
    dice: str = setting("batch", OneOf("batch", "image"))   # soft Dice over the whole batch, or per image
    backbone: str = setting("resnet50", OneOf(*RETINANET_BACKBONES))   # RetinaNet's ResNet
    # RetinaNet backbone: none | imagenet (keras-hub preset) | a preset folder
    weights: str = setting("none", Text(nonempty=True))
    # RetinaNet feature pyramid levels (stride 2^level), min_level <= max_level
    min_level: int = setting(3, Number(2, 7, integer=True))
    max_level: int = setting(7, Number(2, 7, integer=True))
    head_convs: int = setting(4, _count(0))          # RetinaNet: 3x3 convolutions before each head's output
    anchor_size: float = setting(4.0, POSITIVE)      # RetinaNet: anchor side at each level, in strides
    # RetinaNet: anchors matching a box by IoU >= this learn it; below negative_iou: background
    positive_iou: float = setting(0.5, Number(0, 1, lo_open=True))
    negative_iou: float = setting(0.4, Number(0, 1, hi_open=True))
    # boxes kept as detections and in heatmaps (> 0.01 in [A]'s RetinaNet heatmap)
    score_threshold: float = setting(0.01, Number(0, 1, hi_open=True))
    iou_threshold: float = setting(0.5, Number(0, 1, lo_open=True))     # RetinaNet non-maximum suppression
    max_detections: int = setting(100, _count())    # RetinaNet: per image
    # split written after training (probability maps / boxes)
    predict_split: str = setting("test", OneOf(*SPLIT_NAMES))


# Saliency-method parameters are declared by the methods themselves (`Method.config`: parameter
# -> "saliency.KEY", with `Method.domains`), one file per method: the `saliency:` section accepts
# exactly the declared keys. The method package registers them here when imported; a config
# meeting a `saliency:` section imports it by name (a plugin, as an entry point would be), so the
# layers stay config < saliency and `cxrsal --help` imports no method.
METHOD_PACKAGE = "cxrsal.saliency"
DECLARED = {}          # saliency key -> default (shared by the methods declaring it)
DECLARED_DOMAINS = {}  # saliency key -> its domain
METHOD_KEYS = {}       # method name -> {parameter: "section.key"}


def declare(method, config, defaults, domains=None):
    """Record `method`'s config fields ({parameter: "section.key"}) and their domains; keys
    shared by several methods (`saliency.samples` of sg and sig) must agree on the default, and
    every `saliency.*` key needs a domain."""
    domains = domains or {}
    for param, key in config.items():
        section, name = key.split(".", 1)
        if section == "saliency":
            if name in DECLARED and DECLARED[name] != defaults[param]:
                raise ValueError(f"method {method}: saliency.{name} default {defaults[param]!r} differs from "
                                 f"{DECLARED[name]!r} declared by another method")
            if param not in domains:
                raise ValueError(f"method {method}: parameter {param} (saliency.{name}) declares no domain")
            if not domains[param].accepts(defaults[param]):
                raise ValueError(f"method {method}: default {defaults[param]!r} of saliency.{name} is outside "
                                 f"its domain ({domains[param].describe()})")
            DECLARED[name] = defaults[param]
            DECLARED_DOMAINS[name] = domains[param]
    METHOD_KEYS[method] = dict(config)


def declared():
    if not METHOD_KEYS:
        import importlib

        importlib.import_module(METHOD_PACKAGE)
    return DECLARED


@dataclass(frozen=True)
class SaliencyConfig:
    split: str = setting("test", OneOf(*SPLIT_NAMES))
    positives_only: bool = setting(False, Flag())
    limit: int = setting(0, _count(0))               # 0: every selected image
    checkpoint: str = setting("best", OneOf("best", "last"))
    # positive | predicted ([A] explained the predicted class)
    target: str = setting("positive", OneOf("positive", "predicted"))
    seed: int = setting(0, SEED)                     # SmoothGrad noise (per image: seed and its index in the split)
    # model evaluations per forward + gradient call; auto: the largest that fits the GPU's memory
    # (probed, halving on out-of-memory; 32 on a CPU). An out-of-memory error during a run halves
    # it and retries the same images either way
    batch_size: typing.Union[int, str] = setting(32, AnyOf(_count(), OneOf("auto")))
    # XLA-compile the gradient functions; precision mixed: forward/backward in bfloat16 (float16
    # where the GPU lacks bfloat16) with float32 variables, the methods' sums in float32 or wider
    jit_compile: bool = setting(False, Flag())
    precision: str = setting("float32", OneOf("float32", "mixed"))
    # images computed together; the unit of sharding and resumption
    group_size: int = setting(8, _count())
    # [A] fed the grey image replicated to 3 channels and summed |gradient| over them: 3
    # differentiates with respect to that [0, 1] 3-channel image (noise drawn per channel);
    # 1 with respect to the grey input (|sum of the channel gradients|)
    input_channels: int = setting(3, OneOf(3, 1))
    # the methods' declared parameters set in the config (samples, noise, magnitude, ig_steps,
    # ig_baseline, xrai_steps, ...: see each method's `config`); the rest take their defaults
    params: dict = field(default_factory=dict)

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

    @classmethod
    def extra_domains(cls):
        declared()
        return DECLARED_DOMAINS


@dataclass(frozen=True)
class GgcamConfig:
    # processed ([A]): GBP and GradCAM each clipped and scaled first, then multiplied;
    # raw: product of the 2-D reductions
    order: str = setting("processed", OneOf("processed", "raw"))


@dataclass(frozen=True)
class SimilarityConfig:
    """What SSIM compares (randomization, thresholds, repeatability, reproducibility)."""
    # processed ([A]'s code): the post-processed [0, 1] maps; raw ([A]'s text, "raw maps, no
    # abs"): channels summed with their signs, min-max scaled to [0, 1]
    maps: str = setting("processed", OneOf("processed", "raw"))
    data_range: float = setting(1.0, POSITIVE)       # [A]'s code: 2 (old scikit-image inferred it for floats)


@dataclass(frozen=True)
class RandomizationConfig:
    """`cxrsal randomize`: cascading randomization and its degradation threshold."""
    n_images: int = setting(0, _count(0))            # positive test images; 0 = all ([A])
    # degradation threshold: partners per image ([A]'s code)
    pairs_per_image: int = setting(50, _count())
    pairs: int = setting(0, _count(0))               # > 0: that many random pairs in all instead ([A]'s text: 50)
    # truncated-normal ([A]) | layer (each layer's own initializers)
    init: str = setting("truncated-normal", OneOf(*INITS))
    sigma: float = setting(0.01, POSITIVE)           # truncated normal sigma
    # mprt ([A], Adebayo et al. 2018): the maps as they are; smprt (Hedstroem et al. 2023): every map
    # of every step averaged over noisy copies of the input, decided by Spearman of |maps|
    check: str = setting("mprt", OneOf(*CHECKS))
    # null: the check's own (CHECK_DEFAULTS: top-down for mprt, bottom-up for smprt); see ORDER_MEANINGS
    order: typing.Optional[str] = setting(None, Optional(OneOf(*ORDERS)))
    all_blocks: bool = setting(False, Flag())        # also the stem (and InceptionV3's mixed0)
    # smprt: noisy copies of the input per map (null: 50, the authors'; mprt: 0), one of them the
    # input itself as in the authors' code; noise sigma as a fraction of the image's max - min
    smooth_samples: typing.Optional[int] = setting(None, Optional(_count(0)))
    smooth_noise: float = setting(0.1, Number(lo=0))
    seed: int = setting(0, SEED)

    def __post_init__(self):
        # the settings left null take the check's own values (a written config holds them resolved)
        own = CHECK_DEFAULTS.get(self.check, CHECK_DEFAULTS["mprt"])
        for key in ("order", "smooth_samples"):
            if getattr(self, key) is None:
                object.__setattr__(self, key, own[key])


@dataclass(frozen=True)
class EmprtConfig:
    """eMPRT (Hedstroem et al. 2023): the complexity whose rise from the trained to the fully
    randomized model's maps `cxrsal randomize` tests."""
    # histogram (the authors' default): entropy of the histogram of the raw map's values; spatial:
    # entropy of the normalized |map| over its pixels
    complexity: str = setting("histogram", OneOf(*COMPLEXITIES))
    # histogram: equal-width bins per map, a count or a rule (n = the pixels of a map, clipped to
    # 10..200, chosen once per method over the trained model's maps)
    bins: typing.Union[int, str] = setting(100, AnyOf(_count(2), OneOf(*BIN_RULES)))


@dataclass(frozen=True)
class CompareConfig:
    """`cxrsal compare`: repeatability / reproducibility."""
    n_images: int = setting(0, _count(0))            # positive test images; 0 = all ([A])


@dataclass(frozen=True)
class ScoreConfig:
    """`cxrsal score`: what is scored against the ground truth."""
    # comma list: avg, boxes:FILE (detector CSV), seg:DIR (probability maps)
    baselines: str = setting("", _Baselines())
    # utility (AUPRC/AUROC of the positives) and pointwise detection (every image of the store)
    parts: tuple[str, ...] = setting(SCORE_PARTS, Seq(OneOf(*SCORE_PARTS), nonempty=True, unique=True))
    # CheXlocalize's mIoU: a map store of the same model on the validation split, where each
    # method's threshold is tuned (never on test); "" = no IoU
    validation: str = setting("", Text())
    # image-level replicates of every summary interval (95%); 0 = none
    bootstrap: int = setting(1000, _count(0))
    seed: int = setting(0, SEED)                     # the bootstrap's seed (every method resampled on the same images)


@dataclass(frozen=True)
class PointwiseConfig:
    """Pointwise detection ([B]): the arg-max cell of a map as a detection."""
    # receptive-field: each backbone's true cell centres (strides and paddings); grid: [B]'s
    # text, (i + 1/2) * d
    centres: str = setting("receptive-field", OneOf("receptive-field", "grid"))
    tolerance: float = setting(0.0, Number(lo=0))    # pixels around a ground-truth box still counted a hit


@dataclass(frozen=True)
class FaithfulnessConfig:
    """`cxrsal faithfulness`: ROAD (Rong et al., ICML 2022) and deletion / insertion (Petsiuk et
    al., BMVC 2018) of a map store's positive images: does the map point at what the model uses?"""
    # ROAD: fractions of the pixels removed, most (MoRF) or least (LeRF) relevant first
    fractions: tuple[float, ...] = setting((0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                                           Seq(Number(lo=0, hi=1, lo_open=True, hi_open=True), nonempty=True,
                                               unique=True))
    noise: float = setting(0.01, Number(lo=0))       # sd of the noise added to ROAD's imputed pixels ([0, 1] images)
    steps: int = setting(16, _count(1))              # deletion / insertion: 1/steps of the pixels per step
    blur: float = setting(1 / 16, Number(lo=0, hi=1, lo_open=True))   # insertion's start: Gaussian sd / image side
    batch_size: int = setting(32, _count(1))         # images per forward call (every step of every image batched)
    seed: int = setting(0, SEED)                     # the imputation noise of image i: (seed, i)
    bootstrap: int = setting(1000, _count(0))        # image-level replicates of the mean curves' intervals


@dataclass(frozen=True)
class StatsConfig:
    """What a question needs to be decided (`cxrsal stats`, and the verdicts `cxrsal randomize` and
    `cxrsal compare` print): below `min_images` images with a defined value the verdict is
    "undefined", never PASS or FAIL (cxrsal.metrics.defined)."""
    min_images: int = setting(MIN_IMAGES, MIN_IMAGES_DOMAIN)
    # how a mixed model's coefficients and contrasts are tested: satterthwaite ([A]'s lmerTest: t with
    # Satterthwaite degrees of freedom) | wald (statsmodels' z)
    test: str = setting("satterthwaite", MIXED_TESTS)
    # pairwise comparisons between methods: multcomp ([A]'s: single-step over the mixed model's
    # contrasts) | holm (the same contrasts, t-tests, Holm) | tukey-hsd-unpaired (ignores the images)
    posthoc: str = setting("multcomp", OneOf(*POSTHOCS))
    alpha: float = setting(0.05, ALPHA_DOMAIN)


# the `saliency:` fields that shape every method's maps; the others choose the images (`limit`:
# saliency's, randomize and compare take `n_images`) or how many go together (`batch_size`,
# `group_size`: a map does not depend on them)
MAP_SETTINGS = ("saliency.split", "saliency.positives_only", "saliency.checkpoint", "saliency.target",
                "saliency.seed", "saliency.jit_compile", "saliency.precision", "saliency.input_channels")
NOT_MAP_SETTINGS = ("saliency.limit", "saliency.batch_size", "saliency.group_size")


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
    emprt: EmprtConfig = field(default_factory=EmprtConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    pointwise: PointwiseConfig = field(default_factory=PointwiseConfig)
    faithfulness: FaithfulnessConfig = field(default_factory=FaithfulnessConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)

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
        """The settings where [A]'s text and code disagree, and the methods' costs (noise samples,
        IG and XRAI steps, which a demo or a budget cuts): recorded beside every result."""
        declared()
        return {"similarity.maps": self.similarity.maps, "similarity.data_range": self.similarity.data_range,
                **{k: self.lookup(k) for k in ("saliency.samples", "saliency.ig_steps", "saliency.xrai_steps")},
                "saliency.input_channels": self.saliency.input_channels, "saliency.target": self.saliency.target,
                "ggcam.order": self.ggcam.order, "pointwise.centres": self.pointwise.centres,
                "randomization.pairs_per_image": self.randomization.pairs_per_image,
                "randomization.pairs": self.randomization.pairs}

    def map_settings(self):
        """The settings that shape every method's saliency maps of a model's images (`MAP_SETTINGS`);
        each method's own parameters are recorded beside its maps (the store's params.json)."""
        return self.settings(*MAP_SETTINGS)

    def settings(self, *prefixes):
        """{"section.key": value} of every key under `prefixes` ("saliency", "randomization.sigma"),
        method parameters included: what a command records as the settings that shape its output."""
        flat = {f"{section}.{k}": v for section, values in to_dict(self).items() for k, v in values.items()}
        return {k: v for k, v in flat.items() if any(k == p or k.startswith(p + ".") for p in prefixes)}


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

