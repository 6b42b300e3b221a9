"""What the input checks cost, measured side by side with the reads they guard (one run).

    python benchmarks/input_checks.py [--rows 26684] [--maps 2000] [--side 64] [--repeats 3]

- manifest: `read_manifest` (columns, numbers, splits, indices, counts against summary.json) on
  a manifest of --rows images (26,684: RSNA stage 2 before the cohort rule) vs the bare
  csv.DictReader read it replaced;
- resume: `MapStore.drop_damaged` (each map file's archive directory read) over --maps stored
  maps vs the existence test a resumed run made before, and vs loading every map (what it avoids);
- config: `load_config` with every key's domain and the limits between keys.
Target: each check under 1 s at these sizes, a small share of what a run resumed on them costs.
"""

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from bootstrap import best_of      # this folder's timing helper (the script's folder is on sys.path)


def fake_prepared(folder, rows):
    """A manifest.csv of `rows` images and the summary.json counts that match it."""
    from cxrsal.data.manifest import MANIFEST_COLUMNS, SPLITS, write_manifest

    rng = np.random.default_rng(0)
    splits = rng.choice(SPLITS, size=rows, p=[0.8, 0.1, 0.1])
    labels = (rng.random(rows) < 0.3).astype(int)
    index = {s: 0 for s in SPLITS}
    table = []
    for k, (s, y) in enumerate(zip(splits, labels)):
        table.append(dict(zip(MANIFEST_COLUMNS, (f"img{k:06d}", s, index[s], int(y), 1024, 1024,
                                                  "10 20 30 40" if y else "", int(y), f"img{k}.dcm", "ab" * 12))))
        index[s] += 1
    write_manifest(folder / "manifest.csv", table)
    counts = {s: {"negative": int(sum(1 for r in table if r["split"] == s and not r["label"])),
                  "positive": int(sum(1 for r in table if r["split"] == s and r["label"]))} for s in SPLITS}
    (folder / "summary.json").write_text(json.dumps({"dataset": "rsna", "size": 320, "counts": counts}))


def bare_read(folder):
    with open(folder / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("index", "label", "height", "width", "n_annotations"):
            r[k] = int(r[k])
    return rows


def fake_store(folder, n, side):
    from cxrsal.saliency.store import MapStore

    store = MapStore(folder)
    rng = np.random.default_rng(1)
    for i in range(n):
        raw = rng.random((side, side, 3)).astype(np.float32)
        store.write("grad", f"img{i:06d}", raw=raw, processed=raw.mean(-1), constant=False, logit=0.0, label=1, index=i)
    return store, [f"img{i:06d}" for i in range(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=26684)
    ap.add_argument("--maps", type=int, default=2000)
    ap.add_argument("--side", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from cxrsal.config import load_config
    from cxrsal.data.manifest import read_manifest

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fake_prepared(tmp, args.rows)
        checked, t_checked = best_of(args.repeats, lambda: read_manifest(tmp))
        bare, t_bare = best_of(args.repeats, lambda: bare_read(tmp))
        assert len(checked) == len(bare) == args.rows
        print(f"manifest of {args.rows} rows: checked {t_checked:.3f} s, bare read {t_bare:.3f} s "
              f"(x{t_checked / t_bare:.2f})")

        store, ids = fake_store(tmp / "store", args.maps, args.side)
        dropped, t_dirs = best_of(args.repeats, lambda: store.drop_damaged("grad", ids, log=lambda *_: None))
        assert dropped == 0
        _, t_exists = best_of(args.repeats, lambda: all(store.has("grad", i) for i in ids))
        _, t_load = best_of(1, lambda: [store.load("grad", i) for i in ids])
        print(f"resume over {args.maps} maps of {args.side} px: archive directories {t_dirs:.3f} s "
              f"({1e3 * t_dirs / args.maps:.2f} ms a map), existence only {t_exists:.3f} s, loading every map "
              f"{t_load:.3f} s (the check costs x{t_dirs / t_load:.2f} of a load)")

    overrides = ["saliency.ig_steps=10", "randomization.sigma=0.5", "model.arch=resnet34", "data.split=[0.8,0.1,0.1]"]
    load_config()      # the methods' declarations imported once
    _, t_cfg = best_of(args.repeats, lambda: load_config(overrides=overrides))
    print(f"load_config with every domain and cross check: {1e3 * t_cfg:.1f} ms")
    worst = max(t_checked, t_dirs, t_cfg)
    print(f"slowest check {worst:.3f} s: {'within' if worst < 1 else 'ABOVE'} the 1 s target")
    return 0 if worst < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
