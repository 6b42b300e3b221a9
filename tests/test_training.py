"""Training: learnable synthetic data (both heads), evaluate, CLI. Resume after a real SIGKILL:
tests/test_kill_resume.py."""


import numpy as np
import pytest
from click.testing import CliRunner

from cxrsal.cli.main import cli
from cxrsal.config import load_config
from cxrsal.data.prepare import prepare
from cxrsal.data.synth import synth
from cxrsal.errors import CxrsalError
from cxrsal.training.classifier import auc_score, evaluate
from cxrsal.training.fit import train
from cxrsal.training.strategy import choose_strategy
from helpers import quiet


@pytest.fixture(scope="module")
def learn_run(tmp_path_factory):
    """400 synthetic RSNA images prepared at 96 px, split 60:20:20 for a steadier validation AUC."""
    base = tmp_path_factory.mktemp("learn")
    synth("rsna", base / "data", 400, seed=5, image_size=256)
    cfg = load_config(options={"data.root": str(base / "data"), "data.size": 96, "data.split": [0.6, 0.2, 0.2]})
    prepare(cfg, base / "run", progress=False, log=quiet)
    return base / "run"


def test_auc_score_matches_sklearn_and_single_class():
    from sklearn.metrics import roc_auc_score

    y, s = np.array([0, 1, 1, 0, 1]), np.array([0.1, 0.8, 0.3, 0.35, 0.9])
    assert auc_score(y, s) == roc_auc_score(y, s)
    assert np.isnan(auc_score([1, 1], [0.2, 0.3]))


def test_default_strategy_on_cpu(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    strategy, text = choose_strategy()
    assert strategy.num_replicas_in_sync == 1 and text.startswith("default strategy")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(CxrsalError, match="TF_CONFIG is set but is not valid JSON"):
        choose_strategy()


@pytest.mark.parametrize("head", ["classification", "wildcat"])
def test_resnet18_learns_synthetic_data(learn_run, tmp_path, head):
    cfg = load_config(overrides=["model.arch=resnet18", f"model.head={head}", "train.epochs=12", "train.lr=1e-3",
                                 "train.patience=12", "pipeline.batch_size=32", "pipeline.flip=true"])
    card = train(cfg, learn_run, tmp_path / head, log=quiet, verbose=0)
    assert card["metrics"]["best_val_auc"] >= 0.9, card["metrics"]
    assert card["metrics"]["test_auc"] >= 0.85, card["metrics"]
    history = (tmp_path / head / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,auc,val_auc,lr,seconds" and len(history) == 13
    assert list((tmp_path / head / "logs").rglob("events.out.tfevents.*"))
    # evaluate re-computes the same test AUC from the best checkpoint
    assert evaluate(tmp_path / head, "test", log=quiet)["auc"] == pytest.approx(card["metrics"]["test_auc"], abs=1e-9)


def test_cli_train_and_evaluate(tiny_run, tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["train", "--arch", "resnet18", "--data", str(tiny_run), "--out", str(tmp_path / "m"),
                            "--epochs", "1", "--batch-size", "8", "--quiet", "--set", "train.lr=1e-3"])
    assert r.exit_code == 0, r.output
    assert "strategy: default strategy (CPU)" in r.output and "run card:" in r.output
    r = runner.invoke(cli, ["evaluate", "--model", str(tmp_path / "m"), "--split", "val"])
    assert r.exit_code == 0 and "val AUC" in r.output, r.output
    r = runner.invoke(cli, ["train", "--arch", "resnet19", "--data", str(tiny_run), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "model.arch must be one of inceptionv3" in r.output
    r = runner.invoke(cli, ["evaluate", "--model", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "not a `cxrsal train` run" in r.output


def test_run_config_names_the_data_it_learnt_from(trained_classifier, tiny_run):
    """The run's config.yaml carries the prepared run's `data:` section (size 32, the fixture's
    root), not the defaults `cxrsal train` never used (size 320, empty root); the card carries
    the test AUC's 95 % bootstrap interval around the AUC."""
    import json

    import yaml

    data = yaml.safe_load((trained_classifier / "config.yaml").read_text())["data"]
    prepared = yaml.safe_load((tiny_run / "config.yaml").read_text())["data"]
    assert data == prepared and data["size"] == 32 and data["root"]
    m = json.loads((trained_classifier / "run.json").read_text())["metrics"]
    low, high = m["test_auc_ci"]
    assert low <= m["test_auc"] <= high


def test_validation_forward_is_one_traced_function_equal_to_the_model():
    import gc
    import weakref

    import keras

    from cxrsal.training.classifier import _FORWARD, forward_fn

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3), keras.layers.BatchNormalization(),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1, activation="sigmoid")])
    x = np.random.default_rng(0).random((7, 8, 8, 1), np.float32)
    fn = forward_fn(model)
    # every batch size (a split's last, smaller batch too) through one trace, inference mode
    for n in (7, 3, 1):
        np.testing.assert_allclose(fn(x[:n]).numpy(), model(x[:n], training=False).numpy(), rtol=1e-6, atol=1e-7)
    assert forward_fn(model) is fn and fn.experimental_get_tracing_count() == 1
    # a model taking another float type gets the pipeline's float32 images cast, as a call does
    half = keras.Sequential([keras.Input((8, 8, 1), dtype="float16"), keras.layers.Flatten(dtype="float16"),
                             keras.layers.Dense(1, dtype="float16")])
    np.testing.assert_array_equal(forward_fn(half)(x).numpy(), half(x.astype(np.float16), training=False).numpy())
    ref = weakref.ref(model)
    del model, fn, half
    gc.collect()
    assert ref() is None and len(_FORWARD) == 0        # the cache keeps no model alive


def test_training_step_is_traced_once(monkeypatch):
    # Keras traces a step that creates variables twice; its optimizer slots are made before
    import keras
    import tensorflow as tf

    from cxrsal.training.strategy import epoch_runner

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    traces = []
    original = model.train_step
    monkeypatch.setattr(model, "train_step", lambda data: traces.append(1) or original(data))
    rng = np.random.default_rng(0)
    ds = tf.data.Dataset.from_tensor_slices((rng.random((32, 4), np.float32), rng.random((32, 1)) > 0.5)).batch(8)
    run = epoch_runner(model, tf.distribute.get_strategy(), batch_size=8)
    run(ds, 0, None, 0)
    run(ds, 1, None, 0)
    assert len(traces) == 1
