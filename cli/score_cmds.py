"""`cxrsal score`."""

import click


def register(cli):
    @cli.command()
    @click.option("--maps", "store", type=click.Path(file_okay=False), required=True, help="Map store.")
    @click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
                  help="Run of `cxrsal prepare` [default: the one the model was trained on].")
    @click.option("--baselines", default="", help="Comma list: avg, boxes:FILE (detector CSV), seg:DIR.")
    @click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder for the tables.")
    def score(store, data_dir, baselines, out):
        """Localization utility (AUPRC, AUROC) and pointwise detection of every stored map."""
        from cxrsal.experiments.scoring import score_store

        table = score_store(store, out, data_dir=data_dir, baselines=baselines, log=click.echo)
        click.echo(f"{len(table)} rows: {out}/scores.csv (and .parquet), summary.csv, pointwise.csv")
