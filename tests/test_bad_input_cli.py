"""Bad input through the real command, stderr apart from stdout: exit code 2, exactly one line
on stderr, no traceback (issue 14 point 2, the cases that need no trained model)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from cxrsal.config import Config, write_config
from cxrsal.errors import CxrsalError
from cxrsal.experiments.scoring import read_probability_map


def cxrsal(*args, cwd=None):
    out = subprocess.run([sys.executable, "-m", "cxrsal.cli", *map(str, args)], capture_output=True, text=True,
                         cwd=cwd)
    return out.returncode, out.stdout, out.stderr


def one_line(args, cwd=None):
    rc, _, err = cxrsal(*args, cwd=cwd)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, (rc, err)
    assert lines[0].startswith("error: ")
    return lines[0]


def fake_run(path, best=None):
    path.mkdir(parents=True)
    write_config(Config(), path)
    (path / "data.json").write_text(json.dumps({"dir": str(path), "manifest_sha256": "0" * 64}))
    (path / "state.json").write_text(json.dumps({"task": "classification", "epoch": 1, "last": "epoch-001.keras"}))
    if best is not None:
        (path / "checkpoints").mkdir()
        (path / "checkpoints" / "best.keras").write_bytes(best)
    return path


@pytest.fixture
def bad(tmp_path):
    (tmp_path / "bad.yaml").write_text("data: [1, 2\n")
    (tmp_path / "cfgdir").mkdir()
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_options_and_configs(bad):
    line = one_line(["prepare", "--root", bad / "empty", "--out", bad / "p", "--config", bad / "bad.yaml"])
    assert "bad.yaml: not valid YAML at line 2, column 1" in line
    assert "is a directory" in one_line(["prepare", "--root", bad, "--out", bad / "p", "--config", bad / "cfgdir"])
    assert "No such option '--bogus'" in one_line(["prepare", "--bogus"])
    assert "'chexpert' is not one of 'rsna', 'siim'" in one_line(["synth", "--dataset", "chexpert", "--n", 1,
                                                                  "--out", bad / "s"])


def test_results_folders(bad):
    assert "no such folder" in one_line(["stats", "--results", bad / "missing", "--out", bad / "o"])
    assert "no results" in one_line(["stats", "--results", bad / "empty", "--out", bad / "o"])
    assert "no results" in one_line(["report", "--results", bad / "empty", "--out", bad / "o"])


def test_checkpoints(tmp_path):
    line = one_line(["evaluate", "--model", fake_run(tmp_path / "none")])
    assert "no best checkpoint yet" in line
    # a checkpoint cut short by a full disk or a copy: its zip header and nothing more
    line = one_line(["evaluate", "--model", fake_run(tmp_path / "cut", best=b"PK\x03\x04" + b"\0" * 20)])
    assert "checkpoint best.keras cannot be read" in line


def test_probability_maps(tmp_path):
    (tmp_path / "a.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(CxrsalError, match=r"a.npy: not a readable NumPy array"):
        read_probability_map(tmp_path, "a", 8)
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(CxrsalError, match=r"b.png: not a readable image"):
        read_probability_map(tmp_path, "b", 8)
    np.save(tmp_path / "c.npy", np.zeros((2, 3, 4)))
    with pytest.raises(CxrsalError, match="expected a 2-D probability map"):
        read_probability_map(tmp_path, "c", 8)


def test_label_files(tmp_path):
    bom, binary = tmp_path / "bom", tmp_path / "binary"
    bom.mkdir()
    binary.mkdir()
    # a BOM is read through (the header is found); the missing image is then named with its line
    (bom / "stage_2_train_labels.csv").write_bytes(b"\xef\xbb\xbfpatientId,x,y,width,height,Target\nabc,,,,,0\n")
    line = one_line(["prepare", "--dataset", "rsna", "--root", bom, "--out", tmp_path / "p1", "--quiet"])
    assert "stage_2_train_labels.csv line 2: abc: image file missing" in line
    (binary / "stage_2_train_labels.csv").write_bytes(bytes(range(256)) * 2)
    line = one_line(["prepare", "--dataset", "rsna", "--root", binary, "--out", tmp_path / "p2", "--quiet"])
    assert "stage_2_train_labels.csv: not a CSV file" in line


def test_detections_csv_with_a_wrong_header(tmp_path):
    from cxrsal.experiments.scoring import read_detections

    (tmp_path / "det.csv").write_text("a,b\n1,2\n")
    with pytest.raises(CxrsalError, match=r"det.csv: header must hold height, patientId, score"):
        read_detections(tmp_path / "det.csv")
