"""Localization utility of the high baselines vs the average mask, side by side (one run).

    python benchmarks/baseline_utility.py [--dataset siim|rsna|both] [--n 300] [--size 64] [--epochs 20]

For each data set it makes synthetic data in the Kaggle layout, prepares it, trains two seeds of
the localization network (SIIM: U-Net; RSNA: RetinaNet on resnet10) and two seeds of a resnet18
classifier, computes GradCAM maps of the test positives, and runs `score` with the average-mask and
network baselines and `compare` with the two networks' maps as the high baseline. It prints mean
AUPRC of the network, of the average mask and their ratio (the goal: the network is clearly
better), and the SSIM between the two networks' maps (the repeatability high baseline).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# run as a script, this folder comes first on sys.path and benchmarks/saliency.py would shadow PAIR's
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]


def run(dataset, args, work, log):
    from cxrsal.baselines.predict import train_baseline, train_defaults
    from cxrsal.config import load_config
    from cxrsal.data.prepare import prepare
    from cxrsal.data.synth import synth
    from cxrsal.experiments.repeatability import run_compare
    from cxrsal.experiments.scoring import score_store
    from cxrsal.saliency.runner import run_saliency
    from cxrsal.training.fit import train

    quiet = lambda *_: None
    base = work / dataset
    synth(dataset, base / "data", args.n, seed=0, image_size=256)
    common = [f"data.dataset={dataset}", f"data.root={base / 'data'}", f"data.size={args.size}",
              "data.split=[0.6, 0.2, 0.2]", "pipeline.batch_size=16", "pipeline.flip=true", "train.lr=1e-3"]
    prepare(load_config(overrides=common), base / "run", progress=False, log=quiet)
    if dataset == "siim":
        net = ["baseline.kind=unet", "baseline.filters=16", "baseline.depth=3"]
    else:
        # the demo's detector: input 1.5x the prepared side, anchors sized to the synthetic boxes
        net = ["baseline.kind=retinanet", "baseline.backbone=resnet10", "baseline.max_level=5",
               "baseline.head_convs=2", f"baseline.anchor_size={2.25 * args.size / 64}",
               f"model.input_size={args.size * 3 // 2}"]
    preds, t0 = [], time.time()
    for seed in (0, 1):
        cfg = load_config(overrides=common + net + [f"train.seed={seed}", f"train.epochs={args.epochs}"],
                          base=train_defaults("unet" if dataset == "siim" else "retinanet"))
        card = train_baseline(cfg, base / "run", base / f"net-{seed}", log=quiet, verbose=0)
        preds.append(base / f"net-{seed}" / "predictions" / "test")
        log(f"{dataset} {cfg.baseline.kind} seed {seed}: {card['metrics']['epochs_run']} epochs, "
            f"test AUC {card['metrics']['test_auc']:.3f}")
    net_s = time.time() - t0
    for seed in (0, 1):
        train(load_config(overrides=common + ["model.arch=resnet18", f"train.seed={seed}", "train.epochs=6"]),
              base / "run", base / f"clf-{seed}", log=quiet, verbose=0)
    scfg = load_config(overrides=common + ["saliency.positives_only=true", "saliency.batch_size=32"])
    run_saliency(base / "clf-0", base / "maps", scfg, "gcam", progress=False, log=quiet)
    spec = f"seg:{preds[0] / 'maps'}" if dataset == "siim" else f"boxes:{preds[0] / 'detections.csv'}"
    table = score_store(base / "maps", base / "score", baselines=f"avg,{spec}", log=quiet)
    auprc = table[table.metric == "auprc"].groupby("method").value.agg(["mean", "std", "count"])
    name = "baseline:segmentation" if dataset == "siim" else "baseline:detector"
    compare, _ = run_compare([base / "clf-0", base / "clf-1"], base / "compare", scfg, "gcam",
                             baseline_maps=[p / "maps" for p in preds], progress=False, log=quiet)
    ssim = compare.groupby("method").value.mean()
    return dict(dataset=dataset, network=name, net=auprc.loc[name], avg=auprc.loc["baseline:avg"],
                gcam=auprc.loc["gcam"], ssim_net=ssim["baseline:localization"], ssim_gcam=ssim["gcam"],
                train_s=net_s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=("siim", "rsna", "both"), default="both")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cxrsal-bench-baselines-"))
    results = [run(d, args, work, print) for d in (("siim", "rsna") if args.dataset == "both" else (args.dataset,))]
    print(f"\nsynthetic data, {args.n} images at {args.size} px; test positives, mean AUPRC +/- sd (n)")
    for r in results:
        fmt = lambda s: f"{s['mean']:.3f} +/- {s['std']:.3f} ({int(s['count'])})"
        print(f"{r['dataset']}: {r['network']:<22} {fmt(r['net'])}")
        print(f"{r['dataset']}: {'baseline:avg':<22} {fmt(r['avg'])}")
        print(f"{r['dataset']}: {'gcam (resnet18)':<22} {fmt(r['gcam'])}")
        print(f"{r['dataset']}: network / average mask = {r['net']['mean'] / r['avg']['mean']:.2f}x "
              f"(two seeds trained in {r['train_s']:.0f} s)")
        print(f"{r['dataset']}: SSIM between the two seeds' maps: network {r['ssim_net']:.3f}, "
              f"gcam of two resnet18 seeds {r['ssim_gcam']:.3f}")
    print(f"work directory: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
