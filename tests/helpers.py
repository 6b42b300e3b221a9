"""Helpers shared by the tests: quiet logs, the `cxrsal` command as a subprocess, small models
and images, reading map files, a job for the worker-process tests, and the kill harness.

The kill harness (fault injection): real SIGKILLs of a real `cxrsal` process, then the rerun to
the end. A process is killed at chosen write points through the test-only environment hook of
`cxrsal.files` (KILL_AT_ENV: "N:PHASE" kills at the first write point of PHASE from the N-th on, so
a kill lands while a temporary file is empty ("open"), complete but not renamed ("written"), or
just after a final name appeared ("renamed")), or from outside once the run has logged a given
number of write points, wherever the process is then. Each killed run resumes the previous one's
folder; the last run goes to the end and must succeed. The tests then compare every output with
an uninterrupted run.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cxrsal.files import KILL_AT_ENV, WRITE_LOG_ENV


# ---------------------------------------------------------------- small things many tests use

def quiet(*_):
    """A `log` that says nothing."""


def cxrsal(*args, cwd=None):
    """The real `cxrsal` command in a subprocess: (exit code, stdout, stderr)."""
    out = subprocess.run(command(args), capture_output=True, text=True, cwd=cwd)
    return out.returncode, out.stdout, out.stderr


def loaded_by(code, modules):
    """Which of `modules` a fresh interpreter has imported after running `code` (which must succeed)."""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {tuple(modules)!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return [m for m in out.stdout.strip().split(",") if m]


def small_cnn(size=16, seed=0, activation="tanh"):
    """grey image -> two convolutions -> `features` -> GAP -> `logit` -> sigmoid `score`."""
    import keras

    keras.utils.set_random_seed(seed)
    x = keras.Input((size, size, 1), name="image")
    h = keras.layers.Conv2D(4, 3, padding="same", activation=activation, name="conv1")(x)
    h = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="conv2")(h)
    f = keras.layers.Identity(name="features")(h)
    z = keras.layers.Dense(1, name="logit")(keras.layers.GlobalAveragePooling2D(name="gap")(f))
    return keras.Model(x, keras.layers.Activation("sigmoid", name="score")(z))


def images(n=3, size=16, seed=1):
    """`n` grey images in [0, 1], [n, size, size, 1] float32."""
    return np.random.default_rng(seed).random((n, size, size, 1)).astype(np.float32)


def channel_model(seed=0, size=8):
    """grey -> torch preprocessing (3 channels, per-channel scale) -> 3x3 conv whose weights
    differ per input channel -> ReLU -> GAP -> logit."""
    import keras

    from cxrsal.models.layers import GrayToBackbone

    keras.utils.set_random_seed(seed)
    x = keras.Input((size, size, 1), name="image")
    p = GrayToBackbone("torch", name="preprocess")(x)
    h = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(p)
    f = keras.layers.Identity(name="features")(h)
    z = keras.layers.Dense(1, name="logit")(keras.layers.GlobalAveragePooling2D(name="gap")(f))
    model = keras.Model(x, keras.layers.Activation("sigmoid", name="score")(z))
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 1, (3, 3, 3, 3)).astype(np.float32)          # [dy, dx, c_in, k]
    model.get_layer("conv").set_weights([kernel, rng.normal(0, 0.5, 3).astype(np.float32)])
    return model


def sk_ssim(a, b, data_range=1.0):
    """scikit-image's SSIM with its defaults spelled out: 7x7 uniform window, K1 0.01, K2 0.03,
    sample covariance."""
    from skimage.metrics import structural_similarity

    return structural_similarity(a, b, win_size=7, data_range=data_range, gaussian_weights=False,
                                 use_sample_covariance=True, K1=0.01, K2=0.03)


def stored_map(path):
    """A map file as docs/files.md describes it: (processed, stored as uint16 / 65535, raw float32),
    both as float64."""
    with np.load(path) as z:
        return z["processed"].astype(np.float64) / 65535, z["raw"].astype(np.float64)


def hold(folder, name):
    """A job for cxrsal.workers' tests: writes `name`.pid (its process id) in `folder`, then waits
    until `name`.release appears there, then writes `name`."""
    folder = Path(folder)
    (folder / f"{name}.pid.tmp").write_text(str(os.getpid()))
    os.replace(folder / f"{name}.pid.tmp", folder / f"{name}.pid")          # whole when it appears
    wait_for(folder / f"{name}.release")
    (folder / name).write_text("done")
    return name


def wait_for(path, limit_s=600):
    """Wait until `path` exists (see `wait_until`)."""
    path = Path(path)
    wait_until(path.exists, f"{path.name} never appeared", limit_s)


def wait_until(condition, failure, limit_s=600):
    """Wait until `condition()` holds; an AssertionError saying `failure` when it has not within
    `limit_s` seconds (a bound on a hang, not a measurement: nothing is asserted of the time)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.02)


# ---------------------------------------------------------------- an annotated folder of images
# (`prepare --dataset folder` and `--dataset coco`; the `image_folder` fixture of conftest.py)

H, W = 60, 80
BOX = (30, 12, 24, 18)       # x, y, width, height in original pixels
KINDS = ("png8", "png16", "rgb", "jpg", "dcm")


def radiograph(i):
    """A grey test image (values 0-200 of 255) with a bright lesion in BOX on odd i."""
    img = (np.random.default_rng(i).random((H, W)) * 200).astype(np.uint8)
    if i % 2:
        x, y, w, h = BOX
        img[y:y + h, x:x + w] = 255
    return img


def write_image(path, img, kind):
    """One of five encodings (KINDS) of the same 8-bit picture."""
    import cv2

    from cxrsal.data.dicom import write_dicom

    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "png8":
        cv2.imwrite(str(path.with_suffix(".png")), img)
    elif kind == "png16":
        cv2.imwrite(str(path.with_suffix(".png")), img.astype(np.uint16) * 257)     # the same values / 65535
    elif kind == "rgb":
        cv2.imwrite(str(path.with_suffix(".png")), np.dstack([img] * 3))
    elif kind == "jpg":
        cv2.imwrite(str(path.with_suffix(".jpg")), img, [cv2.IMWRITE_JPEG_QUALITY, 100])
    elif kind == "dcm":
        write_dicom(path.with_suffix(".dcm"), img)


def image_folder(root):
    """20 images (`radiograph`) in the five encodings under nested folders of `root`, labels.csv
    and boxes.csv (BOX on the odd, positive images)."""
    labels, boxes = ["image_id,label"], ["image_id,x,y,width,height"]
    for i in range(20):
        write_image(root / "images" / KINDS[i % 5] / f"img{i:02d}", radiograph(i), KINDS[i % 5])
        labels.append(f"img{i:02d},{i % 2}")
        if i % 2:
            boxes.append(f"img{i:02d},{','.join(map(str, BOX))}")
    (root / "labels.csv").write_text("\n".join(labels) + "\n")
    (root / "boxes.csv").write_text("\n".join(boxes) + "\n")
    return root


def coco_rle(mask):
    """COCO's uncompressed RLE of a binary mask, written here: run lengths of the column-major
    (Fortran-order) pixels, starting with a run of zeros."""
    flat = mask.ravel(order="F").astype(np.uint8)
    counts, value, run = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def coco_folder(root, image_folder):
    """The image folder's PNG images with a COCO file (`root/ann.json`): odd images have an 'opacity'
    annotation whose segmentation is an RLE of an irregular mask (img01: a polygon instead), img02 a
    'device', and one annotation names an image the file lacks. Returns (root, the lesion mask)."""
    lesion = np.zeros((H, W), bool)
    lesion[15:35, 20:50] = True
    lesion[30:45, 20:28] = True
    images, annotations = [], []
    for i in range(20):
        kind = KINDS[i % 5]
        if kind in ("jpg", "dcm"):
            continue
        images.append({"id": i, "file_name": f"images/{kind}/img{i:02d}.png", "width": W, "height": H})
        if i % 2:
            seg = [[20, 15, 50, 15, 50, 35, 20, 35]] if i == 1 else coco_rle(lesion)
            annotations.append({"id": 100 + i, "image_id": i, "category_id": 1, "bbox": [20, 15, 30, 30],
                                "segmentation": seg, "iscrowd": 0})
    annotations.append({"id": 200, "image_id": 2, "category_id": 2, "bbox": [1, 1, 5, 5], "segmentation": []})
    annotations.append({"id": 300, "image_id": 777, "category_id": 1, "bbox": [1, 1, 5, 5]})
    doc = {"images": images, "annotations": annotations,
           "categories": [{"id": 1, "name": "opacity"}, {"id": 2, "name": "device"}]}
    (root / "ann.json").write_text(json.dumps(doc))
    (root / "images").symlink_to(image_folder / "images")
    return root, lesion


# ---------------------------------------------------------------- the kill harness

PHASES = ("written", "open", "renamed")
TIMEOUT_S = 900


def command(args):
    return [sys.executable, "-m", "cxrsal.cli", *map(str, args)]


def environment(kill_at=None, write_log=None):
    env = {k: v for k, v in os.environ.items() if k not in (KILL_AT_ENV, WRITE_LOG_ENV)}
    if kill_at:
        env[KILL_AT_ENV] = kill_at
    if write_log:
        env[WRITE_LOG_ENV] = str(write_log)
    return env


def run(args, *, kill_at=None, write_log=None, kill_after_points=None):
    """Run `args` in a session of its own; with `kill_after_points`, SIGKILLed from here as soon as
    it has logged that many write points (wherever it is when this process sees the count). When
    it ends, whatever it left running (a killed job's pool workers) is killed with its group.
    Output goes through files: an orphaned worker holding a pipe open cannot make the wait hang."""
    with tempfile.TemporaryDirectory() as scratch, tempfile.TemporaryFile("w+") as out, \
            tempfile.TemporaryFile("w+") as err:
        if kill_after_points is not None and write_log is None:
            write_log = Path(scratch) / "writes.log"
        proc = subprocess.Popen(command(args), env=environment(kill_at, write_log), stdout=out, stderr=err, text=True,
                                start_new_session=True)
        try:
            if kill_after_points is not None:
                while proc.poll() is None:
                    if written(write_log) >= kill_after_points:
                        proc.send_signal(signal.SIGKILL)
                        break
                    time.sleep(0.01)
            proc.wait(timeout=TIMEOUT_S)
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())


def written(write_log):
    """How many write points a run has logged so far."""
    try:
        with open(write_log) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


@dataclass
class WritePoint:
    n: int
    phase: str
    path: str


NATIVE = re.compile(r"^[IWEF]\d{4} ")        # a TensorFlow C++ log line (I0000 ..., E0000 ...)


def reference(args, log_file):
    """Run `args` to the end, uninterrupted, logging its write points; returns them. Its stderr
    must hold none of TensorFlow's native log lines and no TensorFlow warning."""
    log_file = Path(log_file)
    log_file.unlink(missing_ok=True)
    done = run(args, write_log=log_file)
    assert done.returncode == 0, f"{args[0]}: {done.stderr}"
    noise = [line for line in done.stderr.splitlines() if NATIVE.match(line) or "WARNING:tensorflow" in line]
    assert not noise, f"{args[0]} printed TensorFlow's log lines: {noise[:3]}"
    points = []
    for line in log_file.read_text().splitlines():
        n, phase, path = line.split("\t")
        points.append(WritePoint(int(n), phase, path))
    assert points, f"{args[0]} wrote nothing through the atomic writer"
    return points


@dataclass
class Kills:
    """What a chain of killed runs did: the kill specifications, the kills from outside (write
    points logged before each), and the stderr of the final run."""
    specs: list = field(default_factory=list)
    outside: list = field(default_factory=list)
    final_stderr: str = ""

    def __len__(self):
        return len(self.specs) + len(self.outside)


def spread(total, kills):
    """`kills` write points spread evenly over a run of `total` points."""
    return [max(1, round(total * (i + 1) / (kills + 1))) for i in range(kills)]


def kill_chain(args, targets, *, outside=()):
    """Kill `args` from outside at each write point of `outside` (once it has logged that many:
    wherever it is then, not at a point it chose), then at each later write point of `targets`
    (both numbers in an uninterrupted run's count), each kill in a rerun of the previous run's
    folder; then run it to the end. Every kill must happen."""
    kills = Kills()
    done = 0
    for points in sorted(outside):
        # as below: a rerun counts its write points from 1
        after = max(1, points - done)
        r = run(args, kill_after_points=after)
        assert r.returncode == -signal.SIGKILL, (f"{args[0]} ended with exit code {r.returncode} before it was "
                                                 f"killed after {after} write points: {r.stderr[-2000:]}")
        kills.outside.append(after)
        done = points
    specs = []
    for i, target in enumerate(sorted(t for t in targets if t > done)):
        # a rerun counts its write points from 1 and first redoes a little (its config, the last
        # unfinished item): the next kill comes `target - done` points into it
        specs.append(f"{max(1, target - done)}:{PHASES[i % len(PHASES)]}")
        done = target
    return kill_specs(args, specs, kills)


def kill_specs(args, specs, kills=None):
    """Kill `args` at each write point spec ("N[:PHASE[:TEXT]]", see cxrsal.files) in turn, each in
    a rerun of the previous run's folder; then run it to the end. Every kill must happen."""
    kills = Kills() if kills is None else kills
    for spec in specs:
        r = run(args, kill_at=spec)
        assert r.returncode == -signal.SIGKILL, (f"{args[0]}: expected a kill at write point {spec}, "
                                                 f"got exit code {r.returncode}: {r.stderr[-2000:]}")
        kills.specs.append(spec)
    final = run(args)
    assert final.returncode == 0, f"{args[0]} after {kills.specs}: {final.stderr[-3000:]}"
    kills.final_stderr = final.stderr
    return kills


def no_temporary_files(folder):
    left = sorted(str(p) for p in Path(folder).rglob(".tmp-*"))
    assert not left, f"temporary files left behind: {left[:5]}"


def assert_same_tables(a, b, names, *, drop=()):
    """The CSV tables `names` under folders `a` and `b` are equal (columns `drop` ignored)."""
    for name in names:
        x, y = (pd.read_csv(Path(d) / name, keep_default_na=False).drop(columns=list(drop), errors="ignore")
                for d in (a, b))
        pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)


def assert_same_map_files(a, b):
    """Every map file (`.npz`) under `a` has its twin under `b` with bit-equal arrays, and no other."""
    a, b = Path(a), Path(b)
    files = sorted(p.relative_to(a) for p in a.rglob("*.npz"))
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*.npz")), "different map files"
    for rel in files:
        with np.load(a / rel) as x, np.load(b / rel) as y:
            assert sorted(x.files) == sorted(y.files), rel
            for key in x.files:
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"{rel}:{key}")


def assert_same_weights(a, b, which=("last", "best")):
    import cxrsal.baselines  # noqa: F401  (registers the U-Net and RetinaNet tasks)
    from cxrsal.runs import Run

    for w in which:
        for x, y in zip(Run(a).model(w).get_weights(), Run(b).model(w).get_weights(), strict=True):
            np.testing.assert_array_equal(x, y, err_msg=f"{w} checkpoint")
