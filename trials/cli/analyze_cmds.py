"""`fastscale analyze`: design-space analysis of trained populations (docs/analysis.md)."""

from __future__ import annotations

import click

from trials.analysis.report import refined_text, rows
from trials.analysis.run import AnalyzeConfig, analyze
from trials.cli.common import SEED, Finite, echo_json, print_table


@click.command("analyze")
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for analysis.html, analysis.json and refined_space.yaml.",
)
@click.option(
    "--by",
    multiple=True,
    help="Group populations by this column instead of the design space (repeatable; the "
    "flop regime always separates populations), e.g. --by dataset.",
)
@click.option(
    "--bootstrap",
    type=click.IntRange(10, 100_000),
    default=1000,
    show_default=True,
    help="Bootstrap resamples behind every band.",
)
@click.option(
    "--permutations",
    type=click.IntRange(10, 100_000),
    default=1000,
    show_default=True,
    help="Label permutations behind each KS p-value.",
)
@click.option(
    "--top",
    "q",
    type=Finite(0, 1, min_open=True, max_open=True),
    default=0.25,
    show_default=True,
    help="The good models: the best share q of a population (top-q band, trends, refining).",
)
@click.option(
    "--within",
    type=Finite(0, 1000, min_open=True),
    default=5.0,
    show_default=True,
    help="Report the share of models within this percent (relative) of the best error.",
)
@click.option(
    "--keep",
    type=Finite(0, 1, min_open=True),
    default=0.8,
    show_default=True,
    help="The refined space keeps at least this share of the good models.",
)
@click.option(
    "--no-normalize",
    is_flag=True,
    help="Plain EDFs: do not reweight populations to one flops distribution.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the resampling.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the analysis (EDF arrays too) as JSON."
)
def analyze_cmd(
    sources, out_dir, by, bootstrap, permutations, q, within, keep, no_normalize, seed, as_json
):
    """Compare design spaces by their error distributions, as the RegNet papers do.

    SOURCE is a study or compare directory, a CSV/parquet table (an error column and a spec
    column or spec fields) or a pycls sweep's sweep.json. Prints one row per population
    (by design space and flop regime) and writes DIR/analysis.html with the EDFs, the
    expected best of a random search of m models and the error-vs-parameter trends, and
    DIR/refined_space.yaml, a narrower space for `sample --space` and `study run --space`:

    \b
    fastscale analyze runs/search-a runs/search-b --out runs/analysis
    """
    cfg = AnalyzeConfig(
        by=tuple(by),
        bootstrap=bootstrap,
        permutations=permutations,
        q=q,
        within=within,
        keep=keep,
        normalize=not no_normalize,
        seed=seed,
    )
    result = analyze(list(sources), out_dir, cfg)
    if as_json:
        echo_json(result)
        return
    print_table(rows(result), title="design-space analysis (errors in %, bands 95%)")
    if result["refined"]:
        click.echo(f"{refined_text(result['refined'])}: {result['files']['refined_space']}")
    click.echo(f"wrote {result['files']['html']}", err=True)
