"""`fraud backtest`: how stable a model family is over time, fold by fold."""

import json

import click

from ..backtest import backtest, backtest_report, spread
from ..config import get_settings
from ..errors import UsageError
from ..families import ALGORITHMS, Algorithm, family_params
from ..training import TrainingOptions
from .console import err, load_command_data


@click.command("backtest")
@click.option("--data", "data_uri", help="Dataset path or s3:// URI (default: FRAUD_DATA).")
@click.option("--synthetic", is_flag=True, help="Use generated data (labelled SYNTHETIC).")
@click.option("--synthetic-rows", default=100_000, show_default=True)
@click.option("--min-samples", default=1000, show_default=True)
@click.option("--algorithm", type=click.Choice(ALGORITHMS), default="rf", show_default=True)
@click.option("--trees", type=int, help="Number of trees (default: the family's).")
@click.option("--folds", default=4, show_default=True, help="Rolling time folds to score.")
@click.option(
    "--fold-fraction", default=0.05, show_default=True, help="Share of rows in each fold."
)
@click.option("--json", "as_json", is_flag=True, help="Folds and spread as JSON.")
def backtest_command(
    data_uri: str | None,
    synthetic: bool,
    synthetic_rows: int,
    min_samples: int,
    algorithm: Algorithm,
    trees: int | None,
    folds: int,
    fold_fraction: float,
    as_json: bool,
) -> None:
    """Re-train before each of the last FOLDS time slices, score it, print each and the spread."""
    options = TrainingOptions(algorithm=algorithm, params=family_params(algorithm, trees))
    if not 0 < folds * fold_fraction < 1:
        raise UsageError("--folds x --fold-fraction must be between 0 and 1")
    df, _ = load_command_data(get_settings(data=data_uri), synthetic, synthetic_rows, min_samples)
    results = backtest(
        df,
        options,
        folds=folds,
        fold_fraction=fold_fraction,
        on_fold=lambda f: err.print(
            f"fold {f['fold']}: PR-AUC {f['metrics']['pr_auc']:.3f} "
            f"on {f['metrics']['frauds']} frauds"
        ),
    )
    if as_json:
        click.echo(json.dumps({"folds": results, "spread": spread(results)}, indent=2))
        return
    click.echo(("SYNTHETIC DATA\n\n" if synthetic else "") + backtest_report(results, options))
