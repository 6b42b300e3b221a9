"""`cxrsal study`, `cxrsal stats`, `cxrsal report` and `cxrsal demo`."""

import click

from .options import RegistryChoice, RegistryHelpOption, bars, config_options, key_type, progress_options


def posthoc_names():
    """The registered post-hoc procedures (`cxrsal.stats.POSTHOC`: NumPy, statsmodels only when one runs)."""
    from cxrsal.stats import POSTHOC

    return POSTHOC.names()


def posthoc_help():
    """--posthoc: each registered procedure and what it is."""
    from cxrsal.stats import POSTHOC

    return "Pairwise comparisons between methods: " + "; ".join(
        f"{name}: {POSTHOC.get(name).meaning}" for name in POSTHOC.names()) + " [default: multcomp]. Config: stats.posthoc."


posthoc_option = click.option(
    "--posthoc", type=RegistryChoice(posthoc_names), default=None, cls=RegistryHelpOption, help_from=posthoc_help)


def stats_options(f):
    """--min-images, --config and --set of `cxrsal stats` and `cxrsal report` (the `stats:` section)."""
    f = config_options(f)
    return click.option("--min-images", type=key_type("stats.min_images"), default=None,
                        help="The least number of images with a defined value a question is decided on; below it "
                             "the verdict is undefined, never PASS or FAIL [default: 5]. Config: stats.min_images.")(f)


def stats_of(config_path, overrides, min_images, posthoc):
    """The `stats:` section (alpha, posthoc, min_images, test) from the config file, --set,
    --min-images and --posthoc."""
    from cxrsal.config import load_config

    options = {k: v for k, v in (("stats.min_images", min_images), ("stats.posthoc", posthoc)) if v is not None}
    s = load_config(config_path, overrides, options=options).stats
    return {"alpha": s.alpha, "posthoc": s.posthoc, "min_images": s.min_images, "test": s.test}


def register(cli):
    @cli.command()
    @click.argument("study_file", type=click.Path(dir_okay=False))
    @click.option("--out", type=click.Path(file_okay=False), required=True,
                  help="The study's folder: every job's outputs and the report (a rerun resumes there).")
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                  help="Override one key of the study file (repeatable), e.g. --set datasets.rsna.root=/data/rsna "
                       "or --set settings.saliency.batch_size=16.")
    @click.option("--plan", is_flag=True,
                  help="Print the job graph (each job, what it waits for, its model evaluations), the evaluations "
                       "per kind of job, training, and the projected hours; run nothing.")
    @click.option("--throughput", type=click.FloatRange(min=0, min_open=True), default=None, metavar="N",
                  help="--plan: project at N model evaluations/s (default: the figures benchmarks/workload.py "
                       "measured on this device, per architecture and size).")
    @click.option("--executor", type=click.Choice(("local", "slurm", "submitit-local")), default="local",
                  show_default=True,
                  help="local: worker processes on this machine; slurm: every job a SLURM job (submitit) with "
                       "afterok dependencies and its kind's resources (executor.resources); submitit-local: "
                       "submitit's local executor, one process per job (the cluster path, tried here).")
    @click.option("--status", is_flag=True, help="Print each job's state (done, or SLURM's state of its last "
                                                 "submission) and run nothing.")
    @click.option("--recompute-changed", is_flag=True,
                  help="When the study file changed settings of jobs already run: move their outputs aside (into "
                       "OUT/.replaced, never deleted) and run them and everything after them again.")
    @click.option("--jobs", type=click.IntRange(min=1), default=None,
                  help="local: worker processes (default: the CPUs this process may use, at most 8); the results "
                       "do not depend on it.")
    def study(study_file, out, overrides, plan, throughput, executor, status, recompute_changed, jobs):
        """Run a whole study from one file: data sets, models, localization networks, maps,
        experiments, statistics and the report (configs/study_a.yaml, study_b.yaml, study_demo.yaml).

        \b
            cxrsal study configs/study_a.yaml --out runs/a --plan
            cxrsal study configs/study_a.yaml --out runs/a
            cxrsal study configs/study_a.yaml --out runs/a --executor slurm
            cxrsal study configs/study_a.yaml --out runs/a --status

        The second runs it on this machine; the third submits every job to SLURM (run it again to
        resubmit what did not finish); the fourth prints each job's state.
        """
        from pathlib import Path

        from cxrsal.study import load_study, plan_lines, run_study

        if plan or status:
            from cxrsal.study.graph import build_jobs

            spec = load_study(study_file, overrides)
            graph = build_jobs(spec, Path(out).resolve())
            if plan:
                from cxrsal.study.cost import device_name

                device = "cpu" if throughput else device_name()
                click.echo("\n".join(plan_lines(graph, throughput=throughput, device=device)))
            if status:
                from cxrsal.study.cluster import job_states

                states = job_states(Path(out).resolve(), graph)
                width = max(len(n) for n in states)
                click.echo("\n".join(f"{n:<{width}}  {s}" for n, s in states.items()))
                counts = {}
                for s in states.values():
                    counts[s] = counts.get(s, 0) + 1
                click.echo(", ".join(f"{v} {k}" for k, v in counts.items()))
            return
        run_study(study_file, out, overrides=overrides, jobs=jobs, executor=executor,
                  recompute_changed=recompute_changed, log=click.echo)

    @cli.command()
    @click.option("--results", multiple=True, required=True, type=click.Path(file_okay=False),
                  help="Folders holding score / randomize / compare / train outputs (repeatable).")
    @click.option("--out", type=click.Path(file_okay=False), required=True)
    @posthoc_option
    @stats_options
    def stats(results, out, posthoc, min_images, config_path, overrides):
        """Mixed models + post-hoc contrasts per question of [A]; Table 2 per data set x model, Table 1.
        A question resting on an undefined statistic (constant maps, too few images) is
        "undefined", with the reason (undefined.csv, tests.csv)."""
        from cxrsal.stats.study import run_stats

        res = run_stats(results, out, **stats_of(config_path, overrides, min_images, posthoc), log=click.echo)
        click.echo(res["table2"].to_string(index=False) if len(res["table2"]) else "Table 2: no data")
        click.echo(f"tables: {out}/table2.csv, table1.csv, table1_utility.csv, tests.csv, posthoc.csv, "
                   "choices.csv, tables.md")

    @cli.command()
    @click.option("--results", multiple=True, required=True, type=click.Path(file_okay=False))
    @click.option("--out", type=click.Path(file_okay=False), required=True)
    @posthoc_option
    @stats_options
    def report(results, out, posthoc, min_images, config_path, overrides):
        """One self-contained HTML page plus Markdown: tables, figures, configs and versions."""
        from cxrsal.report import build_report

        build_report(results, out, **stats_of(config_path, overrides, min_images, posthoc), log=click.echo)

    @cli.command()
    @click.option("--out", type=click.Path(file_okay=False), default="cxrsal-demo", show_default=True)
    @click.option("--size", type=click.Choice(("tiny", "full", "large")), default="full", show_default=True,
                  help="tiny: every stage at its smallest (what the tests run); full: the demo, both data sets, 40 "
                       "positive test images per experiment, cheaper methods than [A]'s (minutes on a CPU); large: "
                       "full-width ResNets and [A]'s method settings (hours on a CPU: for a GPU). "
                       "`python benchmarks/demo_workers.py` measures a size.")
    @click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
    @click.option("--jobs", type=click.IntRange(min=1), default=None,
                  help="Worker processes running independent stages side by side (default: the CPUs this "
                       "process may use, at most 8). Each runs TensorFlow on one thread, so the results do not "
                       "depend on it.")
    @progress_options
    def demo(out, size, seed, jobs, quiet, progress):
        """The whole study on synthetic data, from DICOM files to the report (the stages print one
        line as they start and end; the progress bar is the images' decoding)."""
        from cxrsal.demo import run_demo

        run_demo(out, size=size, seed=seed, jobs=jobs, log=click.echo, progress=bars(quiet, progress))
