"""The `cxrsal` command: help without TensorFlow, synth + prepare, one-line errors."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from cxrsal.cli.main import cli
from helpers import loaded_by


def run(*args):
    result = CliRunner().invoke(cli, list(map(str, args)))
    return result


def test_help_imports_no_heavy_module():
    # `cxrsal --help` must answer fast: importing the CLI may not pull in TensorFlow or NumPy
    assert loaded_by("from cxrsal.cli.main import cli", ("tensorflow", "numpy", "pydicom", "cv2")) == []
    result = subprocess.run([sys.executable, "-m", "cxrsal.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "prepare" in result.stdout and "synth" in result.stdout


def test_synth_then_prepare(tmp_path):
    r = run("synth", "--dataset", "siim", "--n", 12, "--out", tmp_path / "d", "--image-size", 64, "--seed", 3)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "d" / "train-rle.csv").read_text().startswith("ImageId, EncodedPixels\n")
    r = run("prepare", "--dataset", "siim", "--root", tmp_path / "d", "--size", 16, "--out", tmp_path / "run",
            "--quiet", "--set", "data.workers=1")
    assert r.exit_code == 0, r.output
    assert "split   negative  positive" in r.output and "prepared" in r.output
    assert "dataset: siim" in (tmp_path / "run" / "config.yaml").read_text()


def one_line_error(result):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [l for l in result.output.splitlines() if l.strip()]
    return lines[-1]


@pytest.mark.parametrize("args, fragment", [
    (["prepare", "--dataset", "chexpert", "--root", ".", "--out", "x"],
     "Invalid value for '--dataset': data.dataset must be one of rsna, siim, folder, coco, got 'chexpert'"),
    (["prepare", "--root", "/no/such/dir", "--out", "x"], "--root /no/such/dir: no such folder"),
    (["prepare", "--root", ".", "--out", "x", "--set", "data.sise=3"], "unknown key 'data.sise'; valid keys"),
    (["prepare", "--root", ".", "--out", "x", "--set", "data.dataset=chexpert"],
     "--set data.dataset=chexpert: data.dataset must be one of rsna, siim, folder, coco, got 'chexpert'"),
    (["synth", "--dataset", "rsna", "--n", "0", "--out", "x"], "Invalid value for '--n': 0 is not in the range x>=1"),
])
def test_bad_input_is_one_line(args, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(run(*args))
    assert fragment in line


def test_prepare_labels_without_images_names_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stage_2_train_labels.csv").write_text("patientId,x,y,width,height,Target\nabc,,,,,0\n")
    line = one_line_error(run("prepare", "--root", tmp_path, "--out", tmp_path / "run", "--quiet"))
    assert "no usable labelled images" in line and "abc" in line and "image file missing" in line
