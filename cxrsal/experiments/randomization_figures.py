"""The figures of model parameter randomization: [A]'s degradation curves (Fig 3a) and eMPRT's
complexity curves, drawn by `cxrsal randomize` and by the report."""

from ..files import atomic_path

SIMILARITY_NAMES = {"ssim": "SSIM", "spearman": "Spearman"}


COMPLEXITY_LABELS = {"histogram": "explanation complexity (entropy of the value histogram, nats)",
                     "spatial": "explanation complexity (spatial entropy of |map|, nats)"}


def plot_complexity(curves, path, title="", complexity="histogram"):
    """eMPRT: mean explanation complexity (entropy, nats) per step per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = curves[curves.metric == "complexity"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for k, (method, m) in enumerate(c.groupby("method", sort=False)):
        m = m.sort_values("step")
        ax.plot(m.step, m["mean"], marker="o", color=f"C{k}", label=method)
    names = c.drop_duplicates("step").sort_values("step")
    ax.set_xticks(names.step, names.step_name, rotation=45, ha="right")
    ax.set_ylabel(COMPLEXITY_LABELS.get(complexity, "explanation complexity (nats)"))
    ax.set_xlabel("randomized down to" if "bottom-up" not in title else "randomized up to")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def plot_curves(curves, thresholds, path, title="", metric="ssim"):
    """[A] Fig 3a: mean similarity (`metric`: SSIM, sMPRT's Spearman) per step per method, sd band
    across replicates, dotted thresholds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ssim = curves[curves.metric == metric]
    if "metric" in thresholds.columns:
        thresholds = thresholds[thresholds.metric == metric]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for k, (method, c) in enumerate(ssim.groupby("method", sort=False)):
        c = c.sort_values("step")
        color = f"C{k}"
        ax.plot(c.step, c["mean"], marker="o", color=color, label=method)
        if "ci_low" in c.columns and c.ci_low.notna().any():      # 95 % bootstrap interval over images
            ax.errorbar(c.step, c["mean"], yerr=[(c["mean"] - c.ci_low).clip(lower=0),
                                                 (c.ci_high - c["mean"]).clip(lower=0)],
                        fmt="none", ecolor=color, capsize=2, linewidth=0.8)
        if (c.replicates > 1).any():
            sd = c.sd.fillna(0)
            ax.fill_between(c.step, c["mean"] - sd, c["mean"] + sd, color=color, alpha=0.2)
        t = thresholds[thresholds.method == method].threshold.mean()
        ax.axhline(t, color=color, linestyle=":", linewidth=1)
    names = ssim.drop_duplicates("step").sort_values("step")
    ax.set_xticks(names.step, names.step_name, rotation=45, ha="right")
    ax.set_ylabel(f"{SIMILARITY_NAMES.get(metric, metric)} with the trained model's map")
    ax.set_xlabel("randomized down to" if "bottom-up" not in title else "randomized up to")
    ax.set_title(title)
    ax.set_ylim(min(-0.05, float(ssim["mean"].min()) - 0.05) if len(ssim) else -0.05, 1.05)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
