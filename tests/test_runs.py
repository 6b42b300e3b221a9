"""The run-directory API: what a run says of itself, one-line errors for what is not a run."""

import json

import pytest

from cxrsal.config import Config, write_config
from cxrsal.errors import CxrsalError
import cxrsal.training  # noqa: F401  (registers the classifier task)
from cxrsal.runs import CARD_FILE, DATA_FILE, STATE_FILE, TASKS, Run


def fake_run(path, task="classification", card=None):
    path.mkdir(parents=True)
    write_config(Config(), path)
    (path / DATA_FILE).write_text(json.dumps({"dir": "/data/rsna", "manifest_sha256": "abc", "dataset": "rsna",
                                              "size": 64}))
    (path / STATE_FILE).write_text(json.dumps({"task": task, "epoch": 1, "last": "epoch-001.keras"}))
    if card:
        (path / CARD_FILE).write_text(json.dumps(card))
    return path


def test_a_run_reads_its_files(tmp_path):
    run = Run(fake_run(tmp_path / "m", card={"metrics": {"test_auc": 0.5}}))
    assert run.kind == "classification" and run.data == "/data/rsna" and run.name == "m"
    assert run.config.model.arch == "resnet18" and run.card["metrics"]["test_auc"] == 0.5
    assert run.facts() == {"arch": "resnet18", "head": "classification", "data_hash": "abc", "data": "/data/rsna"}
    assert run.expect("classification") is run
    with pytest.raises(CxrsalError, match="no best checkpoint yet"):
        run.model("best")
    assert Run(fake_run(tmp_path / "n")).card is None


def test_not_a_run_or_the_wrong_task_is_one_line(tmp_path):
    with pytest.raises(CxrsalError, match=r"--models .*nothing: not a `cxrsal train` run"):
        Run(tmp_path / "nothing", option="--models")
    unet = Run(fake_run(tmp_path / "u", task="unet"))
    with pytest.raises(CxrsalError, match="a unet run, not a classifier"):
        unet.expect("classification")
    assert "classification" in TASKS
