"""``lab grades import|agreement``: human (or external judge) grades into the store, and agreement
between any two graders read back from it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lab.cli.options import StoreOption, open_store

grades_app = typer.Typer(no_args_is_help=True, help="Human and judge grades: import, agreement.")


@grades_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="CSV, TSV or JSONL with grader, item, value [, dimension, label, run_id]."),
    scorer: str = typer.Option("human_grade", help="Scorer name the grades are recorded under."),
    provenance: str = typer.Option("human", help="'human' (experts) or 'model' (an external judge's verdicts)."),
    dataset: str = typer.Option(None, help="Task name of the grading sessions (default: the file name)."),
    column: list[str] = typer.Option([], help="OURS=THEIRS column renames, e.g. grader=annotator_id."),
    store: Path = StoreOption,
) -> None:
    """Record every grade as a score with provenance (all or nothing)."""
    from lab.scoring import ScoringError, import_grades

    renames = {}
    for c in column:
        ours, eq, theirs = c.partition("=")
        if not eq or not ours or not theirs:
            raise ScoringError(f"--column takes OURS=THEIRS (e.g. grader=annotator_id), not {c!r}")
        renames[ours] = theirs
    ids = import_grades(open_store(store, create=True), file, scorer=scorer, provenance=provenance,
                        dataset=dataset, columns=renames)
    typer.echo(f"imported grades from {file} onto {len(ids)} run(s)")


@grades_app.command("agreement")
def agreement_cmd(
    a: str = typer.Argument(..., help="First grader (a source: grader id or model name)."),
    b: str = typer.Argument(..., help="Second grader."),
    scorer: str = typer.Option(None, help="Only scores of this scorer."),
    dimension: str = typer.Option("overall", help="Rubric dimension."),
    kind: str = typer.Option("auto", help="auto, nominal, ordinal or interval."),
    label: bool = typer.Option(False, "--label", help="Compare categorical labels instead of values."),
    join: str = typer.Option("inner", help="'inner' (common items) or 'exact' (same items required)."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object: measures with CIs."),
    store: Path = StoreOption,
) -> None:
    """Every applicable agreement measure between two graders, with 95% bootstrap CIs."""
    from lab.stats import StatsError, agreement, ratings_table

    scores = open_store(store).scores_frame()
    if scorer:
        scores = scores[scores["scorer"] == scorer]
    table = ratings_table(scores, value="label" if label else "value", dimension=dimension, agg="last")
    missing = [g for g in (a, b) if g not in table.columns]
    if missing:
        graders = sorted(map(str, table.columns))
        raise StatsError(f"no grades by {missing} (dimension {dimension!r}); graders: {graders}")
    res = agreement(table[a], table[b], kind=kind, join=join, n_boot=n_boot, names=(a, b))
    if as_json:
        typer.echo(json.dumps({"a": a, "b": b, "kind": res.kind, "n": res.n,
                               "measures": res.measures.to_dict(orient="index")}))
    else:
        typer.echo(repr(res))


def register(app: typer.Typer) -> None:
    """Add the ``lab grades`` commands to the app."""
    app.add_typer(grades_app, name="grades")
