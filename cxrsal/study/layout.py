"""The study's names, folders and settings, shared by the graph and the job functions: what a
replicate, a twin and a localization network are called, and the cxrsal config of every job."""

from dataclasses import dataclass
from pathlib import Path

from .spec import DEFAULT_LOCALIZATION


@dataclass(frozen=True)
class Context:
    """What every job function receives: the study and its output folder."""
    study: object
    out: str

    def folder(self, *parts):
        return Path(self.out).joinpath(*parts)


def localization_kind(ds):
    return ds.localization.kind or DEFAULT_LOCALIZATION[ds.kind]


def localization_setting(study, ds, index):
    """(backbone or None, seed) of the data set's `index`-th localization network: each backbone
    (or the config's one) in turn, with seeds seed, seed + 1, ... for its replicates."""
    loc = ds.localization
    backbone = loc.backbones[index // loc.replicates] if loc.backbones else None
    return backbone, study.seed_of(loc) + index % loc.replicates


def localization_names(study, ds):
    """KIND-seedS, or KIND-BACKBONE-seedS where the study names backbones."""
    if ds.localization is None:
        return []
    loc = ds.localization
    settings = [localization_setting(study, ds, i) for i in range(loc.replicates * max(1, len(loc.backbones)))]
    return [f"{localization_kind(ds)}{f'-{b}' if b else ''}-seed{seed}" for b, seed in settings]


def _read_yaml(path, where):
    from ..config import read_yaml_mapping

    return read_yaml_mapping(path, f"{where}: {path}", "the top level must be a mapping of sections")


def _merge(data, mapping, origins, origin):
    """Every setting of the nested `mapping` into `data` (config.merge_setting, as --set does),
    `origin` recorded as where it was set."""
    from ..config import merge_setting
    from ..identity import flatten

    for key, value in flatten(mapping).items():
        if value != {}:         # an empty section sets nothing
            merge_setting(data, key.split("."), value, origins, origin)


# settings that name a file or folder: relative to the study file, as its other paths, when
# that file is there
PATH_KEYS = ("data.annotations", "data.cache", "model.weights", "baseline.weights")


def job_config(study, ds_name, owner=None, extra=None):
    """The cxrsal config of a job: defaults < the study's `config` file < its `settings` < the
    data set's kind, root and `settings` < the model's or localization network's (`owner`)
    `config` file < its `settings` < the data set's `data` settings again (a data set has one
    size) < the job's own `extra` {"section.key": value}. Relative paths of `PATH_KEYS` are
    resolved beside the study file. A wrong key or value is one line naming the study file and
    where in it."""
    from ..config import Config, from_mapping, merge_setting

    src = study.path
    ds = study.datasets[ds_name]
    data, origins = {}, {}
    layers = []
    if study.config:
        layers.append((_read_yaml(study.resolve(study.config), f"{src}: config"), f"{study.resolve(study.config)}"))
    layers.append((study.settings or {}, f"{src} (settings)"))
    here = {"dataset": ds.kind}
    if ds.root:
        here["root"] = str(study.resolve(ds.root))
    layers.append(({"data": here}, f"{src} (datasets.{ds_name})"))
    layers.append((ds.settings or {}, f"{src} (datasets.{ds_name}.settings)"))
    if owner is not None:
        what, spec = owner
        if spec.config:
            layers.append((_read_yaml(study.resolve(spec.config), f"{src}: {what}.config"),
                           f"{study.resolve(spec.config)} ({what}.config)"))
        layers.append((spec.settings or {}, f"{src} ({what}.settings)"))
        # the data set's own `data` section wins over a model's config file (a_*.yaml name a size)
        layers.append(({"data": here}, f"{src} (datasets.{ds_name})"))
        layers.append(({"data": (ds.settings or {}).get("data") or {}}, f"{src} (datasets.{ds_name}.settings)"))
    # the study's own stats section decides the verdicts every job prints, as the report's
    layers.append(({"stats": {"min_images": study.stats.min_images, "test": study.stats.test,
                              "alpha": study.stats.alpha, "posthoc": study.stats.posthoc}}, f"{src} (stats)"))
    for mapping, origin in layers:
        _merge(data, mapping, origins, origin)
    mine = f"{src} ({what if owner else f'datasets.{ds_name}'}: the study's own values)"
    for key, value in (extra or {}).items():
        merge_setting(data, key.split("."), value, origins, mine)
    for key in PATH_KEYS:       # paths in the study's settings are relative to the study file
        section, name = key.split(".")
        value = (data.get(section) or {}).get(name)
        # (a file or folder that is there beside it: not a name such as imagenet or a keras-hub preset)
        if isinstance(value, str) and value and not Path(value).is_absolute() and study.resolve(value).exists():
            data[section][name] = str(study.resolve(value))
    return from_mapping(Config, data, src, origins=origins)


def _train_extra(spec, seed):
    extra = {"model.arch": spec.arch, "model.head": spec.head, "train.seed": seed}
    if spec.epochs:
        extra["train.epochs"] = spec.epochs
    return extra
