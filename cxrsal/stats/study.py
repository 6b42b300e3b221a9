"""`cxrsal stats`: every question of [A] over whatever results exist, then Table 2 ([A]) and
Table 1 ([B]), saying which cells lack data."""

import json
from pathlib import Path

import numpy as np

from ..errors import CxrsalError
from ..io import atomic_path, write_frame
from . import ALPHA, better_than, mixed_model, not_worse_than, one_sample, tukey

LOW_BASELINE = 0.5
HIGH = ("baseline:detector", "baseline:segmentation")
SALIENCY = ("grad", "sg", "ig", "sig", "gcam", "xrai", "gbp", "ggcam", "wildcat")


def discover(dirs):
    """Result files under `dirs` (any depth): score, randomization, compare outputs and run cards."""
    found = {"score": [], "randomization": [], "compare": [], "runs": []}
    for d in dirs:
        d = Path(d)
        if not d.exists():
            raise CxrsalError(f"--results {d}: no such folder")
        found["score"] += sorted(p.parent for p in d.rglob("score.json"))
        found["randomization"] += sorted(p.parent for p in d.rglob("randomization.json"))
        found["compare"] += sorted(p.parent for p in d.rglob("compare.json"))
        found["runs"] += sorted(p.parent for p in d.rglob("run.json"))
    if not any(found.values()):
        raise CxrsalError(f"--results {', '.join(map(str, dirs))}: no results (score, randomize, compare or "
                          "train outputs) found")
    return found


def _load(paths, name):
    import pandas as pd

    frames = [pd.read_csv(p / name) for p in paths if (p / name).exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def utility_tests(scores, alpha=ALPHA):
    rows = []
    if scores.empty:
        return rows
    auprc = scores[scores.metric == "auprc"]
    for model, d in auprc.groupby("model"):
        for baseline, question in (("baseline:avg", "utility vs average mask"),) + tuple(
                (h, "utility vs localization network") for h in HIGH):
            if baseline not in set(d.method):
                continue
            for r in mixed_model(d, reference=baseline, alpha=alpha):
                decide = better_than if baseline == "baseline:avg" else not_worse_than
                rows.append(dict(question=question, model=model, method=r["level"], comparison=baseline,
                                 estimate=r["estimate"], ci_low=r["ci_low"], ci_high=r["ci_high"],
                                 p_value=r["p_value"], test="mixedlm", decision=decide(r["estimate"], r["p_value"])))
    return rows


def randomization_tests(rand, thresholds, alpha=ALPHA):
    rows = []
    if rand.empty:
        return rows
    ssim = rand[rand.metric == "ssim"]
    last = ssim[ssim.step == ssim.step.max()]
    for method, d in last.groupby("method"):
        thr = float(thresholds[thresholds.method == method].threshold.mean())
        mean = float(d.value.mean())
        p = one_sample(d.value, thr, "less")
        rows.append(dict(question="trained vs randomized", model="all", method=method, comparison="threshold",
                         estimate=mean - thr, ci_low=np.nan, ci_high=np.nan, p_value=p, test="t-test (less)",
                         decision="PASS" if mean < thr else "FAIL"))
    return rows


def compare_tests(compare, kind, alpha=ALPHA):
    rows = []
    if compare.empty:
        return rows
    saliency = compare[~compare.method.str.startswith("baseline:")]
    for method, d in saliency.groupby("method"):
        p = one_sample(d.value, LOW_BASELINE, "greater")
        rows.append(dict(question=f"{kind} vs 0.5", model="all", method=method, comparison="0.5",
                         estimate=float(d.value.mean()) - LOW_BASELINE, ci_low=np.nan, ci_high=np.nan, p_value=p,
                         test="t-test (greater)", decision=better_than(float(d.value.mean()) - LOW_BASELINE, p)))
    if "baseline:localization" in set(compare.method):
        for r in mixed_model(compare, reference="baseline:localization", alpha=alpha):
            rows.append(dict(question=f"{kind} vs localization network", model="all", method=r["level"],
                             comparison="baseline:localization", estimate=r["estimate"], ci_low=r["ci_low"],
                             ci_high=r["ci_high"], p_value=r["p_value"], test="mixedlm",
                             decision=not_worse_than(r["estimate"], r["p_value"])))
    return rows


def _compare_kind(path):
    """Repeatability when both models share an architecture, reproducibility otherwise."""
    meta = json.loads((path / "compare.json").read_text())
    archs = []
    for m in meta["models"]:
        card = Path(m) / "run.json"
        archs.append(json.loads(card.read_text())["arch"] if card.exists() else m)
    return "repeatability" if len(set(archs)) == 1 else "reproducibility"


TABLE2_COLUMNS = ("utility vs average mask", "utility vs localization network", "trained vs randomized",
                  "repeatability vs 0.5", "repeatability vs localization network", "reproducibility vs 0.5",
                  "reproducibility vs localization network")


def table2(tests):
    """PASS/FAIL per method and criterion; a cell without data says so."""
    import pandas as pd

    methods = [m for m in SALIENCY if m in set(tests.method)] if not tests.empty else []
    rows = []
    for m in methods:
        row = {"method": m}
        for q in TABLE2_COLUMNS:
            d = tests[(tests.method == m) & (tests.question == q)]
            if d.empty:
                row[q] = "no data"
            else:
                decisions = set(d.decision)
                row[q] = "PASS" if decisions == {"PASS"} else ("FAIL" if "FAIL" in decisions else "n/a")
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", *TABLE2_COLUMNS])


def table1(runs, scores, pointwise):
    """[B] Table 1 per backbone: classification AUC of both heads, pointwise AP and utility of
    WILDCAT maps, the best saliency method and the detector."""
    import pandas as pd

    cards = [json.loads((r / "run.json").read_text()) | {"dir": r.name} for r in runs]
    # classifiers only: the localization networks' run cards (train-baseline) are not Table 1 rows
    cards = [c for c in cards if c.get("task", "classification") == "classification"]
    archs = sorted({c["arch"] for c in cards})
    rows = []
    for arch in archs:
        row = {"backbone": arch}
        for head in ("classification", "wildcat"):
            aucs = [c["metrics"]["test_auc"] for c in cards if c["arch"] == arch and c["head"] == head]
            row[f"AUC {head}"] = float(np.mean(aucs)) if aucs else "no data"
        wc = [c["dir"] for c in cards if c["arch"] == arch and c["head"] == "wildcat"]
        pw = pointwise[(pointwise.method == "wildcat") & pointwise.model.isin(wc)] if not pointwise.empty else pointwise
        row["pointwise AP (WILDCAT)"] = float(pw.pointwise_ap.mean()) if len(pw) else "no data"
        auprc = scores[(scores.metric == "auprc")] if not scores.empty else scores
        wmaps = auprc[(auprc.method == "wildcat") & auprc.model.isin(wc)] if len(auprc) else auprc
        row["AUPRC WILDCAT maps"] = float(wmaps.value.mean()) if len(wmaps) else "no data"
        clf = [c["dir"] for c in cards if c["arch"] == arch and c["head"] == "classification"]
        sal = auprc[auprc.model.isin(clf) & auprc.method.isin(SALIENCY[:-1])] if len(auprc) else auprc
        if len(sal):
            best = sal.groupby("method").value.mean()
            row["AUPRC best saliency"] = f"{best.max():.3f} ({best.idxmax()})"
        else:
            row["AUPRC best saliency"] = "no data"
        det = auprc[auprc.method == "baseline:detector"] if len(auprc) else auprc
        row["AUPRC detector"] = float(det.value.mean()) if len(det) else "no data"
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(df):
    cols = list(df.columns)
    fmt = lambda v: f"{v:.3f}" if isinstance(v, (float, np.floating)) and np.isfinite(v) else str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(lines)


def run_stats(dirs, out, *, alpha=ALPHA, log=print):
    import pandas as pd

    found = discover(dirs)
    scores = _load(found["score"], "scores.csv")
    pointwise = _load(found["score"], "pointwise.csv")
    rand = _load(found["randomization"], "randomization.csv")
    thresholds = _load(found["randomization"], "thresholds.csv")
    rows = utility_tests(scores, alpha) + randomization_tests(rand, thresholds, alpha)
    for path in found["compare"]:
        rows += compare_tests(pd.read_csv(path / "compare.csv"), _compare_kind(path), alpha)
    tests = pd.DataFrame(rows, columns=["question", "model", "method", "comparison", "estimate", "ci_low",
                                        "ci_high", "p_value", "test", "decision"])
    # post-hoc: Tukey HSD across methods for every question
    groups = []
    if not scores.empty:
        groups += [("utility", model, d) for model, d in scores[scores.metric == "auprc"].groupby("model")]
    if not rand.empty:
        ssim = rand[rand.metric == "ssim"]
        groups.append(("trained vs randomized", "all", ssim[ssim.step == ssim.step.max()]))
    for path in found["compare"]:
        groups.append((_compare_kind(path), path.name, pd.read_csv(path / "compare.csv")))
    tukeys = []
    for question, model, d in groups:
        t = tukey(d, alpha=alpha)
        t.insert(0, "question", question)
        t.insert(1, "model", model)
        tukeys.append(t)
    tk = pd.concat(tukeys, ignore_index=True) if tukeys else pd.DataFrame()
    t2 = table2(tests)
    t1 = table1(found["runs"], scores, pointwise)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in (("tests.csv", tests), ("tukey.csv", tk), ("table2.csv", t2), ("table1.csv", t1)):
        write_frame(out / name, df)
    with atomic_path(out / "tables.md") as tmp:
        tmp.write_text("## Table 2 ([A]): PASS/FAIL per method and criterion\n\n" + markdown(t2)
                       + "\n\n## Table 1 ([B])\n\n" + markdown(t1) + "\n")
    missing = [f"{r.method}: {q}" for r in t2.itertuples(index=False) for q, v in zip(TABLE2_COLUMNS, r[1:])
               if v == "no data"]
    log(f"{len(tests)} tests; Table 2 {len(t2)} methods, Table 1 {len(t1)} backbones; "
        f"{len(missing)} Table 2 cells lack data")
    return {"tests": tests, "tukey": tk, "table2": t2, "table1": t1, "found": found}
