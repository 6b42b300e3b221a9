"""`cxrsal stats`, `cxrsal report` and `cxrsal demo`."""

import click

from .options import RegistryChoice, RegistryHelpOption, bars, progress_options


def posthoc_names():
    """The registered post-hoc procedures (`cxrsal.stats.POSTHOC`: NumPy, statsmodels only when one runs)."""
    from cxrsal.stats import POSTHOC

    return POSTHOC.names()


def posthoc_help():
    """--posthoc: each registered procedure and what it is."""
    from cxrsal.stats import POSTHOC

    return "Pairwise comparisons between methods: " + "; ".join(
        f"{name}: {POSTHOC.get(name).meaning}" for name in POSTHOC.names()) + "."


posthoc_option = click.option(
    "--posthoc", type=RegistryChoice(posthoc_names), default="mixedlm", show_default=True, cls=RegistryHelpOption,
    help_from=posthoc_help)


def register(cli):
    @cli.command()
    @click.option("--results", multiple=True, required=True, type=click.Path(file_okay=False),
                  help="Folders holding score / randomize / compare / train outputs (repeatable).")
    @click.option("--out", type=click.Path(file_okay=False), required=True)
    @posthoc_option
    def stats(results, out, posthoc):
        """Mixed models + post-hoc contrasts per question of [A]; Table 2 per data set x model, Table 1."""
        from cxrsal.stats.study import run_stats

        res = run_stats(results, out, posthoc=posthoc, log=click.echo)
        click.echo(res["table2"].to_string(index=False) if len(res["table2"]) else "Table 2: no data")
        click.echo(f"tables: {out}/table2.csv, table1.csv, table1_utility.csv, tests.csv, posthoc.csv, "
                   "choices.csv, tables.md")

    @cli.command()
    @click.option("--results", multiple=True, required=True, type=click.Path(file_okay=False))
    @click.option("--out", type=click.Path(file_okay=False), required=True)
    @posthoc_option
    def report(results, out, posthoc):
        """One self-contained HTML page plus Markdown: tables, figures, configs and versions."""
        from cxrsal.report import build_report

        build_report(results, out, posthoc=posthoc, log=click.echo)

    @cli.command()
    @click.option("--out", type=click.Path(file_okay=False), default="cxrsal-demo", show_default=True)
    @click.option("--size", type=click.Choice(("tiny", "full", "large")), default="full", show_default=True,
                  help="tiny: every stage at its smallest (what the tests run); full: the demo; large: full-width "
                       "ResNets, more images and epochs. `python benchmarks/demo_workers.py` measures a size.")
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
