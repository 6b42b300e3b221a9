"""A model run directory, through one API: every command that opens a trained run uses `Run`.

    RUN/config.yaml           the resolved config it was trained with
    RUN/data.json             the prepared run it was trained on (dir, manifest hash, data set, size)
    RUN/state.json            training state: task, epochs, best score, learning rate, last checkpoint
    RUN/run.json              the run card, written when training ends
    RUN/checkpoints/          best.keras and the last epoch's checkpoint
    RUN/map_stores.txt        map stores computed from it (cxrsal.saliency.store)

Tasks (the classifier, the U-Net, RetinaNet) are registered in `TASKS` by the modules that
define them (`cxrsal.training.classifier`, `cxrsal.baselines`); a run names its task in
state.json.
"""

from functools import cached_property
from pathlib import Path

from .errors import CxrsalError
from .registry import Registry

CONFIG_FILE = "config.yaml"
DATA_FILE = "data.json"
STATE_FILE = "state.json"
CARD_FILE = "run.json"
HISTORY_FILE = "history.csv"
CKPT_DIR = "checkpoints"
BEST = "best.keras"

TASKS = Registry("task")
# what `Run.facts` says of a run that says nothing
UNKNOWN_FACTS = {"arch": "unknown", "head": "unknown", "data_hash": "unknown", "data": ""}
CLASSIFICATION = "classification"


class Task:
    """What the training loop needs of one kind of model: how to build, feed, validate and test
    it (`build`, `train_data`, `validate`, `test`, `describe`), which validation score it keeps
    the best epoch by (`monitor`, `mode`), and what must be registered before one of its
    checkpoints loads (`prepare_loading`)."""

    name = ""
    monitor, mode = "val_loss", "min"
    # trains under a multi-worker TF_CONFIG: needs `validate` without Keras' `evaluate`/`predict`,
    # which Keras 3 cannot run under MultiWorkerMirroredStrategy (see `cxrsal.training.strategy`)
    multi_worker = False

    def __init__(self, cfg, data_dir):
        self.cfg, self.data_dir = cfg, data_dir

    def fitted(self, scores):
        """True when training may stop now (`scores`: this epoch's validation figures)."""
        return False

    @classmethod
    def prepare_loading(cls):
        """Register the custom objects its checkpoints need (Keras deserialisation)."""


def register_task(cls):
    TASKS.register(cls.name)(cls)
    return cls


class Run:
    """A run directory of `cxrsal train` or `cxrsal train-baseline`."""

    def __init__(self, path, option="--model"):
        self.path = Path(path)
        self.option = option
        if not (self.path / STATE_FILE).is_file() or not (self.path / DATA_FILE).is_file():
            raise CxrsalError(f"{option} {self.path}: not a `cxrsal train` run (no {STATE_FILE} / {DATA_FILE})")

    def __repr__(self):
        return f"Run({str(self.path)!r})"

    @property
    def name(self):
        return self.path.name

    @cached_property
    def state(self):
        return _read_json(self.path / STATE_FILE)

    @property
    def kind(self):
        """The task it was trained for (classification, unet, retinanet)."""
        return self.state.get("task", CLASSIFICATION)

    @cached_property
    def config(self):
        return read_config(self.path, self.option)

    @cached_property
    def data_info(self):
        """data.json: {"dir", "manifest_sha256", "dataset", "size"}."""
        info = _read_json(self.path / DATA_FILE)
        if not isinstance(info.get("dir"), str):
            raise CxrsalError(f"{self.path / DATA_FILE}: damaged (no dir); train the run again into a new folder")
        return info

    @property
    def data(self):
        """The prepared run it was trained on (a directory path, as recorded)."""
        return self.data_info["dir"]

    def checked_data(self, data_dir=None):
        """The prepared run to use (`data_dir`, default the one it was trained on), refused in one
        line when its manifest is not the one the run recorded (a row lost or added, a label
        changed since): the model would be audited on other images than it claims."""
        from .data.manifest import manifest_hash

        data_dir = data_dir or self.data
        recorded = self.data_info.get("manifest_sha256")
        if recorded in (None, "unknown"):
            return data_dir
        now = manifest_hash(data_dir)
        if now != recorded:
            raise CxrsalError(f"{self.option} {self.path} was trained on a manifest (sha256 {recorded[:12]}...) that "
                              f"{Path(data_dir) / 'manifest.csv'} no longer is (sha256 {now[:12]}...): the prepared "
                              "data changed since; prepare it again as it was, or train the model again")
        return data_dir

    @cached_property
    def card(self):
        """run.json, or None while training has not ended."""
        return read_card(self.path)

    @property
    def task(self):
        """The registered task class of this run."""
        if self.kind not in TASKS:
            raise CxrsalError(f"{self.option} {self.path}: a {self.kind} run, which this command does not open")
        return TASKS.get(self.kind)

    def expect(self, kind):
        """Refuse a run of another task (`kind` None accepts any)."""
        if kind is not None and self.kind != kind:
            what = {CLASSIFICATION: "a classifier (`cxrsal train`)"}.get(kind, f"a {kind} baseline")
            raise CxrsalError(f"{self.option} {self.path}: a {self.kind} run, not {what}")
        return self

    def checkpoint(self, which="best"):
        if which == "best":
            path = self.path / CKPT_DIR / BEST
            if not path.exists():
                raise CxrsalError(f"{self.option} {self.path}: no best checkpoint yet (no epoch finished with a "
                                  "validation score)")
            return path
        if which != "last":
            raise CxrsalError(f"checkpoint {which!r}: valid choices: best, last")
        return self.path / CKPT_DIR / self.state["last"]

    def model(self, which="best", compile=False):
        """The trained model (`best` or `last` checkpoint)."""
        import warnings

        import keras

        from .models import layers  # noqa: F401  (registers the custom layers)

        if self.kind != CLASSIFICATION:
            self.task.prepare_loading()
        path = self.checkpoint(which)
        with warnings.catch_warnings():
            # without compiling, Keras says it skips the saved optimizer's variables: that is the point
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            try:
                # an adopted SavedModel (the user's own, given on the command line) is one TFSMLayer
                # that Keras loads only outside safe mode
                card = read_card(self.path) or {}
                trusted = bool((card.get("source") or {}).get("saved_model"))
                return keras.models.load_model(path, compile=compile, safe_mode=not trusted)
            except Exception as e:   # a truncated or foreign file: zipfile, h5py and Keras errors alike
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise CxrsalError(f"{self.option} {self.path}: checkpoint {path.name} cannot be read "
                                  f"({type(e).__name__}: {first[:200]})") from None

    def facts(self):
        """{"arch", "head", "data_hash", "data"} ("unknown" where the run does not say)."""
        facts = dict(UNKNOWN_FACTS)
        try:
            model = self.config.model
            facts.update(arch=model.arch, head=model.head)
        except CxrsalError:
            pass
        facts.update(data_hash=self.data_info.get("manifest_sha256", "unknown"), data=self.data_info.get("dir", ""))
        return facts


def read_card(run_dir):
    """The run card (run.json) of a run directory, or None: for readers of results (stats,
    report) that meet run folders copied without their checkpoints or state."""
    path = Path(run_dir) / CARD_FILE
    return _read_json(path) if path.is_file() else None


def read_config(run_dir, option="--model"):
    """The config a run directory was trained with."""
    import yaml

    from .config import Config, from_mapping

    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise CxrsalError(f"{option} {run_dir}: not a `cxrsal train` run (no {CONFIG_FILE})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CxrsalError(f"{path}: damaged (not the YAML config cxrsal writes: {first[:120]}); train the run again "
                          "into a new folder (or restore the file from a copy)") from None
    return from_mapping(Config, data, str(path))


def _read_json(path):
    from .files import read_json

    return read_json(path, remedy="the run folder is damaged: train it again into a new folder (or restore the "
                                  "file from a copy)")
