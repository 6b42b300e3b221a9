"""`cxrsal study STUDY.yaml`: the study file's checks, `--plan`'s counts against a slow count
written here, a two-data-set study (a folder set and a COCO set, a trained model and a user's
.keras model) end to end, killed and resumed to the same tables, an edited study file, and the
graph through submitit's local executor and through stand-ins for the SLURM commands."""

import json
import os
import re
import stat
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import cxrsal, kill_specs, no_temporary_files

REPO = Path(__file__).resolve().parents[1]
TABLES = ("table2.csv", "table1.csv", "tests.csv", "posthoc.csv", "localization.csv", "findings.csv")


def two_sets(root, image_folder, coco_file, user_model):
    """The tiny study: a folder set (U-Net localization network) and a COCO set (none), each with
    a cxrsal-trained ResNet-18 and the user's .keras model (adopted), reproducibility between them."""
    def model():        # each data set its own mapping (no YAML anchors between them)
        return {"small": {"arch": "resnet18", "settings": {"model": {"width": 0.25}}},
                "mine": {"path": str(user_model), "maps": True}}
    study = {
        "name": "two-sets", "seed": 0,
        "settings": {"model": {"weights": "none", "output_stride": 8}, "pipeline": {"batch_size": 4},
                     "train": {"epochs": 1},
                     "saliency": {"samples": 2, "ig_steps": 2, "xrai_steps": 2, "batch_size": 4}},
        "experiments": {"mapped": "small", "methods": "grad,gcam,xrai", "images": 2, "orders": ["top-down"],
                        "data_randomization": False, "repeatability": False, "reproducibility": "mine"},
        "datasets": {
            "folder": {"kind": "folder", "root": str(image_folder),
                       "settings": {"data": {"size": 32, "split": [0.5, 0.25, 0.25], "workers": 1}},
                       "models": model(), "localization": {"kind": "unet", "replicates": 1, "epochs": 1}},
            "coco": {"kind": "coco", "root": str(coco_file.parent),
                     # 12 images, 6 with an opacity: 4 per split, so validation has both classes
                     "settings": {"data": {"size": 32, "split": [0.34, 0.33, 0.33], "workers": 1,
                                           "annotations": str(coco_file), "positive": ["opacity"]}},
                     "models": model(), "localization": None},
        },
    }
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def user_keras(path):
    import keras

    keras.utils.set_random_seed(5)
    x = keras.Input((32, 32, 3))
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="block1_conv")(x)
    h = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="block2_conv")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    keras.Model(x, keras.layers.Dense(1, activation="sigmoid", name="out")(h)).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_study(image_folder, coco, tmp_path_factory):
    """The two-set study, run once per session: (its study file, its folder, the run's output)."""
    base = tmp_path_factory.mktemp("study")
    path = two_sets(base, image_folder, coco[0] / "ann.json", user_keras(base / "mine.keras"))
    rc, out, err = cxrsal("study", path, "--out", base / "run", "--jobs", "2")
    assert rc == 0, err[-3000:]
    return path, base / "run", out


def test_two_data_sets_end_to_end(tiny_study):
    path, run, out = tiny_study
    assert out.strip().splitlines()[-1] == f"report: {run / 'report' / 'report.html'}"
    stats = run / "report" / "stats"
    t1 = pd.read_csv(stats / "table1.csv")
    # per data set: the trained ResNet-18 and the adopted user model (Table 1 lists classifiers and
    # RetinaNets; the folder set's localization network is a U-Net)
    assert t1.dataset.nunique() == 2
    assert sorted(t1.run) == ["mine", "mine", "small", "small"]
    assert (run / "folder" / "baselines" / "unet-seed0" / "predictions" / "test" / "maps").is_dir()
    t2 = pd.read_csv(stats / "table2.csv", keep_default_na=False)
    assert t2.dataset.nunique() == 2 and set(t2.method) == {"grad", "gcam", "xrai"}
    # reproducibility between the trained model and the user's, on both data sets
    for d in ("folder", "coco"):
        cmp = pd.read_csv(run / d / "results" / "reproducibility" / "compare.csv")
        assert set(zip(cmp.model_a, cmp.model_b)) == {("small", "mine")}
        assert (run / d / "results" / "randomization" / "randomization.csv").exists()
        assert (run / d / "maps" / "small").is_dir() and (run / d / "results" / "score-mine").is_dir()
    # the folder set has a localization network: its utility baseline; the COCO set none
    scores = pd.read_csv(run / "folder" / "results" / "score-small" / "scores.csv")
    assert {"baseline:avg", "baseline:segmentation"} <= set(scores.method)
    scores = pd.read_csv(run / "coco" / "results" / "score-small" / "scores.csv")
    assert "baseline:segmentation" not in set(scores.method)
    # a rerun finds every job done
    rc, again, err = cxrsal("study", path, "--out", run)
    assert rc == 0 and "every job had finished: nothing to run" in again, err


def test_a_killed_study_resumes_to_the_same_tables(tiny_study, tmp_path):
    path, run, _ = tiny_study
    again = tmp_path / "again"
    # inside the trained model's training, then inside the U-Net's predictions
    kills = kill_specs(["study", path, "--out", again, "--jobs", "1"],
                       ["1:written:/folder/models/small/", "1:open:/baselines/unet-seed0/predictions/"])
    assert "Traceback" not in kills.final_stderr
    no_temporary_files(again)
    for name in TABLES:
        a, b = (pd.read_csv(d / "report" / "stats" / name).drop(columns=["source"], errors="ignore")
                for d in (run, again))
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, obj=name)


@pytest.mark.parametrize("edit, message", [
    ({"datasets": {"folder": {"modls": {}}}}, "unknown key 'datasets.folder.modls'"),
    ({"experimnts": {}}, "unknown key 'experimnts'"),
    ({"experiments": {"images": -1}}, "experiments.images must be"),
    ({"experiments": {"mapped": "nobody"}}, "experiments.mapped: 'nobody' is not one of its models"),
    ({"experiments": {"orders": ["sideways"]}}, "experiments.orders must be"),
    ({"datasets": {"folder": {"prepared": "x"}}}, "give either root"),
    ({"experiments": {"methods": "grad,gradd"}}, "experiments.methods: 'gradd' is no method"),
    ({"datasets": {"report": {"kind": "rsna", "root": "x", "models": {"m": {"arch": "resnet18"}}}}},
     "may not be named 'report'"),
    ({"datasets": {"coco": {"models": {"small-permuted": {"arch": "resnet18"}},
                            "experiments": {"data_randomization": True}}}}, "would both write models/small-permuted"),
    ({"datasets": {"folder": {"settings": {"saliency": {"samplse": 2}}}}}, "unknown key 'saliency.samplse'"),
    ({"datasets": {"coco": {"models": {"small": {"arch": "resnet18", "settings": {"model": {"width": -1}}}}}}},
     "model.width must be"),
    ({"executor": {"resources": {"train": {"gpus": "two"}}}}, "executor.resources.train.gpus must be"),
])
def test_a_wrong_study_file_is_one_line(tmp_path, edit, message):
    study = yaml.safe_load(two_sets(tmp_path, tmp_path, tmp_path / "ann.json", tmp_path / "m.keras").read_text())

    def merge(a, b):
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict) and v:
                merge(a[k], v)
            else:
                a[k] = v
    merge(study, edit)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(study))
    rc, _, err = cxrsal("study", tmp_path / "bad.yaml", "--out", tmp_path / "o", "--plan")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert "bad.yaml" in err


def _slow_count(study_file, out, methods_per_image):
    """--plan's total, counted here job by job from the study file and the papers' image counts."""
    s = yaml.safe_load(Path(study_file).read_text())
    exp = s["experiments"]
    total = 0
    for ds in s["datasets"].values():
        n = ds["images"]
        pos = min(n["test_positives"], exp["images"]) if exp["images"] else n["test_positives"]
        rand = min(n["test_positives"], exp["randomization_images"])
        val = min(n["val_positives"], exp["images"]) if exp["images"] else n["val_positives"]
        maps = (pos + val) * methods_per_image + n["test"] * 1          # + GradCAM of every test image
        randomization = rand * 11 * methods_per_image                 # InceptionV3's cascade: 11 steps
        compares = 3 * pos * methods_per_image          # the replicate's, the permuted twin's, the DenseNet121's maps
        # faithfulness: 8 methods and 3 controls, each 2 x 9 ROAD fractions and 2 x 17 deletion / insertion
        # steps per image, forward passes counted a third of an evaluation each (rounded up per image)
        faithfulness = pos * -(-(11 * (2 * 9 + 2 * 17)) // 3) if exp.get("faithfulness", True) else 0
        total += maps + randomization + compares + faithfulness
    return total


def test_plan_of_a_counts_what_the_study_runs(tmp_path):
    rc, out, err = cxrsal("study", REPO / "configs" / "study_a.yaml", "--out", tmp_path / "a", "--plan",
                          "--throughput", "1000")
    assert rc == 0, err
    # [A]'s settings (configs/a_*_inceptionv3.yaml): grad 1, sg 25, ig 10, sig 25 x 10, gcam 1,
    # xrai 2 x 100, gbp 1, ggcam 2; the three control maps 1 each (the image's logit)
    per = 1 + 25 + 10 + 250 + 1 + 200 + 1 + 2 + 3
    total = int(re.search(r"^  total\s+([\d,]+)$", out, re.M).group(1).replace(",", ""))
    assert total == _slow_count(REPO / "configs" / "study_a.yaml", tmp_path, per)
    hours = float(re.search(r"projected: ([\d.]+) h", out).group(1))
    assert hours == pytest.approx(total / 1000 / 3600, abs=0.006)
    # every job of [A]'s protocol, training on its own lines
    for name in ("rsna: train inceptionv3-a", "rsna: train inceptionv3-b", "siim: train densenet121",
                 "siim: train unet-seed1 (localization network)", "rsna: train retinanet-seed0 (localization network)",
                 "rsna: cascading randomization top-down", "siim: repeatability", "siim: reproducibility",
                 "rsna: data-randomization", "statistics and report"):
        assert f"  {name}  [" in out, name
    assert re.search(r"rsna: train inceptionv3-a: [\d,]+ x 20 = ", out)


def test_an_smprt_run_is_the_authors_bottom_up_at_its_copies(tmp_path):
    """`smprt: 4` adds one sMPRT job per data set: bottom-up (the authors' order), its own folder,
    the check in its config, and 4 copies of every state's maps, the trained one included."""
    import shutil

    shutil.copytree(REPO / "configs", tmp_path / "configs")      # the study's config files beside it
    study = yaml.safe_load((REPO / "configs" / "study_a.yaml").read_text())
    study["experiments"]["smprt"] = 4
    path = tmp_path / "configs" / "study_a.yaml"
    path.write_text(yaml.safe_dump(study))
    rc, out, err = cxrsal("study", path, "--out", tmp_path / "a", "--plan", "--throughput", "1000")
    assert rc == 0, err
    per = 1 + 25 + 10 + 250 + 1 + 200 + 1 + 2 + 3       # the methods' evaluations and the controls' logits
    total = int(re.search(r"^  total\s+([\d,]+)$", out, re.M).group(1).replace(",", ""))
    rand = sum(min(d["images"]["test_positives"], study["experiments"]["randomization_images"])
               for d in study["datasets"].values())
    # 11 randomized states and the trained one, each mapped over 4 copies
    assert total == _slow_count(REPO / "configs" / "study_a.yaml", tmp_path, per) + rand * 12 * per * 4
    assert "  rsna: cascading randomization bottom-up (sMPRT, 4 noisy copies)  [" in out
    jobs = {j.name: j for j in _graph(path, tmp_path / "a")}
    job = jobs["siim: cascading randomization bottom-up (sMPRT, 4 noisy copies)"]
    assert job.outputs == ("siim/results/randomization-smprt-bottom-up",)
    assert job.settings["randomization.check"] == "smprt" and job.settings["randomization.smooth_samples"] == 4
    assert job.settings["randomization.order"] == "bottom-up"


def test_workload_counts_what_the_plan_counts():
    import importlib.util

    spec = importlib.util.spec_from_file_location("workload", REPO / "benchmarks" / "workload.py")
    workload = importlib.util.module_from_spec(spec)
    saved = list(sys.path)
    try:
        spec.loader.exec_module(workload)
    finally:
        sys.path[:] = saved          # the benchmark takes its own folder off sys.path
    plan = workload.study_a_workload("inceptionv3")
    assert plan["steps"] == 11 and plan["replicates"] == 2
    per = 1 + 25 + 10 + 250 + 1 + 200 + 1 + 2 + 3       # the methods' evaluations and the controls' logits
    assert plan["per_image"] == per
    # what runs on InceptionV3: the whole slow count but the DenseNet121's maps of reproducibility
    study = yaml.safe_load((REPO / "configs" / "study_a.yaml").read_text())
    densenet = sum(ds["images"]["test_positives"] * per for ds in study["datasets"].values())
    assert plan["total"] == _slow_count(REPO / "configs" / "study_a.yaml", None, per) - densenet


# ------------------------------------------------------------------ an edited study file

def _graph(path, out):
    from cxrsal.study import load_study
    from cxrsal.study.run import open_study

    return open_study(load_study(path), out, log=lambda *_: None)


def _pretend_done(out, jobs):
    from cxrsal.study.run import done_marker, mark_of

    for j in jobs:
        for rel in j.outputs:
            (Path(out) / rel).mkdir(parents=True, exist_ok=True)
            (Path(out) / rel / "x.txt").write_text(j.name)
        done_marker(out, j).write_text(json.dumps(mark_of(j)))


def test_an_edited_study_refuses_then_recomputes_what_changed(tmp_path):
    from cxrsal.errors import CxrsalError
    from cxrsal.study import load_study
    from cxrsal.study.run import finished, open_study

    path = two_sets(tmp_path, tmp_path, tmp_path / "ann.json", tmp_path / "m.keras")
    out = tmp_path / "run"
    jobs = _graph(path, out)
    _pretend_done(out, jobs)
    study = yaml.safe_load(path.read_text())
    study["datasets"]["coco"]["models"]["small"]["settings"]["model"]["width"] = 0.5
    path.write_text(yaml.safe_dump(study))
    with pytest.raises(CxrsalError) as e:
        _graph(path, out)
    # the coco set's trained model changed (its width shapes no map setting of the jobs after it)
    assert "changed the settings of 1 job already run" in str(e.value) and "'coco: train small'" in str(e.value)
    assert "folder:" not in str(e.value) and "--recompute-changed" in str(e.value)
    jobs = open_study(load_study(path), out, recompute_changed=True, log=lambda *_: None)
    again = {j.name for j in jobs if not finished(out, j)}
    # it and every job after it run again; the user model's maps and score do not wait for it
    assert again == {"coco: train small", "coco: maps of small", "coco: score small", "coco: faithfulness small",
                     "coco: cascading randomization top-down", "coco: reproducibility", "statistics and report"}
    moved = list((out / ".replaced").glob("*/coco/models/small/x.txt"))
    assert len(moved) == 1 and not (out / "coco" / "models" / "small").exists()
    assert (out / "coco" / "models" / "mine" / "x.txt").exists() and (out / "folder" / "models" / "small").exists()


def test_settings_that_shape_nothing_and_new_jobs(tmp_path):
    """A batch size changes no job; a study edited before anything ran refuses nothing; a job
    added to a finished study runs, and the report after it, the rest stays finished."""
    from cxrsal.study import load_study
    from cxrsal.study.run import finished, open_study

    path = two_sets(tmp_path, tmp_path, tmp_path / "ann.json", tmp_path / "m.keras")
    out = tmp_path / "run"
    _graph(path, out)                                    # opened, nothing ran
    study = yaml.safe_load(path.read_text())
    study["experiments"]["images"] = 5
    path.write_text(yaml.safe_dump(study))
    jobs = _graph(path, out)                             # no refusal: no job had run
    _pretend_done(out, jobs)
    study["settings"]["saliency"]["batch_size"] = 16
    path.write_text(yaml.safe_dump(study))
    assert all(finished(out, j) for j in _graph(path, out))
    study["experiments"]["orders"] = ["top-down", "bottom-up"]
    path.write_text(yaml.safe_dump(study))
    jobs = open_study(load_study(path), out, log=lambda *_: None)
    assert {j.name for j in jobs if not finished(out, j)} == {
        "folder: cascading randomization bottom-up", "coco: cascading randomization bottom-up",
        "statistics and report"}


# ------------------------------------------------------------------ through submitit

SBATCH = r'''#!{python}
"""sbatch stand-in, with its scheduler: records the submission (its #SBATCH lines) as PENDING and
says its id as sbatch does; a background process starts the job once its afterok dependencies
COMPLETED, or cancels it when one failed (as --kill-on-invalid-dep), and records how it ended."""
import fcntl, json, os, re, subprocess, sys, time
state = os.environ["FAKE_SLURM"]


def locked(change):
    with open(state + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        jobs = json.load(open(state)) if os.path.exists(state) else []
        out = change(jobs)
        with open(state + ".tmp", "w") as f:      # readers (sacct, the test) see whole files
            json.dump(jobs, f)
        os.replace(state + ".tmp", state)
        return out


def set_state(jid, value):
    locked(lambda jobs: [j.update(state=value) for j in jobs if j["id"] == jid])


if sys.argv[1] == "--run":
    jid, script = sys.argv[2], sys.argv[3]
    deps = [d for d in sys.argv[4].split(":") if d]
    while True:
        states = locked(lambda jobs: {{j["id"]: j["state"] for j in jobs}})
        if any(states.get(d) in ("FAILED", "CANCELLED") for d in deps):
            set_state(jid, "CANCELLED")
            sys.exit(0)
        if all(states.get(d) == "COMPLETED" for d in deps):
            break
        time.sleep(0.2)
    set_state(jid, "RUNNING")
    env = dict(os.environ, SLURM_JOB_ID=jid, SLURM_JOBID=jid, SLURM_PROCID="0", SLURM_LOCALID="0",
               SLURM_NODEID="0", SLURM_NTASKS="1", SLURM_JOB_NUM_NODES="1", SLURM_JOB_NODELIST="standin")
    set_state(jid, "COMPLETED" if subprocess.run(["bash", script], env=env).returncode == 0 else "FAILED")
    sys.exit(0)
script = sys.argv[-1]
params = dict(re.findall(r"^#SBATCH --([\w-]+)=(.*)$", open(script).read(), re.M))


def add(jobs):
    jobs.append({{"id": str(1000 + len(jobs)), "params": params, "state": "PENDING"}})
    return jobs[-1]["id"]


jid = locked(add)
deps = params.get("dependency", "afterok:").split(":", 1)[1]
subprocess.Popen([sys.executable, __file__, "--run", jid, script, deps], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"Submitted batch job {{jid}}")
'''
SRUN = r'''#!/bin/bash
# srun stand-in: drops srun's options, runs the command with its output where submitit expects it
out=""; err=""
while [ "${1#--}" != "$1" ]; do
  case "$1" in --output) out="$2"; shift 2;; --error) err="$2"; shift 2;; *) shift;; esac
done
out="${out//%j/$SLURM_JOB_ID}"; out="${out//%t/0}"; err="${err//%j/$SLURM_JOB_ID}"; err="${err//%t/0}"
exec "$@" >>"$out" 2>>"$err"
'''
SACCT = r'''#!{python}
"""sacct stand-in: the recorded states, in submitit's --parsable2 format."""
import json, os, sys
jobs = json.load(open(os.environ["FAKE_SLURM"]))
want = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "-j"]
print("JobID|State|NodeList")
for j in jobs:
    if j["id"] in want:
        print(f"{{j['id']}}|{{j['state']}}|standin")
'''


@pytest.fixture
def standin_env(tmp_path, monkeypatch):
    """SLURM's commands as stand-ins on PATH, the job log, and the stand-in job module importable."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", SBATCH), ("srun", SRUN), ("sacct", SACCT), ("scancel", "#!/bin/bash\nexit 0\n")):
        (bin_dir / name).write_text(text.format(python=sys.executable) if name in ("sbatch", "sacct") else text)
        (bin_dir / name).chmod((bin_dir / name).stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("FAKE_SLURM", str(tmp_path / "slurm.json"))
    monkeypatch.setenv("CXRSAL_TEST_JOB_LOG", str(tmp_path / "ran.txt"))
    return tmp_path


def _until_idle(records, timeout=300):
    """The stand-in scheduler's records once no job is pending or running."""
    import time

    end = time.time() + timeout
    while time.time() < end:
        jobs = json.loads(records.read_text())
        if all(j["state"] not in ("PENDING", "RUNNING") for j in jobs):
            return jobs
        time.sleep(0.5)
    raise AssertionError(f"stand-in jobs still running after {timeout} s: {jobs}")


def _standin(jobs, out):
    import standin_jobs

    for j in jobs:
        j.fn, j.args = standin_jobs.work, (str(out), j.outputs, j.name)
    return jobs


def test_the_graph_through_submitits_local_executor(standin_env):
    from cxrsal.study import load_study
    from cxrsal.study.cluster import submit
    from cxrsal.study.run import finished, open_study

    path = two_sets(standin_env, standin_env, standin_env / "ann.json", standin_env / "m.keras")
    out = standin_env / "run"
    study = load_study(path)
    jobs = _standin(open_study(study, out, log=lambda *_: None), out)
    submit(jobs, out, study, executor="submitit-local", log=lambda *_: None)
    ran = (standin_env / "ran.txt").read_text().split("\n")[:-1]
    assert sorted(ran) == sorted(j.name for j in jobs)           # every job once
    for j in jobs:                                               # each after what it waits for
        assert all(ran.index(d) < ran.index(j.name) for d in j.deps), j.name
        assert finished(out, j)


def test_the_graph_through_slurm_standins(standin_env, monkeypatch):
    from cxrsal.study import load_study
    from cxrsal.study.cluster import job_states, submit
    from cxrsal.study.run import finished, open_study

    path = two_sets(standin_env, standin_env, standin_env / "ann.json", standin_env / "m.keras")
    study = yaml.safe_load(path.read_text())
    study["executor"] = {"slurm": {"partition": "gpu", "setup": ["echo set up"]},
                         "resources": {"train": {"gpus": 1, "cpus": 6, "time_min": 90}, "score": {"cpus": 2}}}
    path.write_text(yaml.safe_dump(study))
    out = standin_env / "run"
    spec = load_study(path)
    jobs = _standin(open_study(spec, out, log=lambda *_: None), out)
    # the first submission: the coco set's trained model fails (as a killed job would)
    monkeypatch.setenv("CXRSAL_TEST_FAIL_JOB", "coco: train small")
    first = submit(jobs, out, spec, executor="slurm", log=lambda *_: None)
    records = _until_idle(standin_env / "slurm.json")
    by_id = {r["id"]: r for r in records}
    assert len(records) == len(jobs) and set(first) == {j.name for j in jobs}     # every job submitted once
    for j in jobs:
        r = by_id[str(first[j.name])]
        deps = r["params"].get("dependency", "afterok:").split(":", 1)[1]
        # afterok on exactly the jobs it waits for, each submitted before it
        assert sorted(filter(None, deps.split(":"))) == sorted(str(first[d]) for d in j.deps), j.name
        assert all(int(d) < int(r["id"]) for d in filter(None, deps.split(":")))
        want = spec.executor.resources[j.kind]
        assert r["params"]["cpus-per-task"] == str(want.cpus) and r["params"]["time"] == str(want.time_min)
        assert r["params"].get("gpus-per-node") == (str(want.gpus) if want.gpus else None)
        assert r["params"]["partition"] == "gpu"
    assert spec.executor.resources["train"].gpus == 1 and spec.executor.resources["score"].cpus == 2
    failed = {j.name for j in jobs if not finished(out, j)}
    assert "coco: train small" in failed and "statistics and report" in failed
    assert not any(n.startswith("folder:") for n in failed)
    states = job_states(out, jobs)
    assert states["coco: train small"] == "FAILED" and states["folder: prepare"] == "done"
    assert states["coco: maps of small"] == "CANCELLED"
    # the rerun submits only the unfinished jobs
    monkeypatch.delenv("CXRSAL_TEST_FAIL_JOB")
    second = submit(jobs, out, spec, executor="slurm", log=lambda *_: None)
    assert set(second) == failed
    _until_idle(standin_env / "slurm.json")
    assert all(finished(out, j) for j in jobs)
    rc, status, err = cxrsal("study", path, "--out", out, "--status")
    assert rc == 0 and status.strip().splitlines()[-1] == f"{len(jobs)} done", err
