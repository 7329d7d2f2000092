r"""Human grades (and any externally produced grades) into the trace store as scores with provenance.

A grade row names who graded (``grader``), what (``item``), on which rubric ``dimension`` and the
``value`` (and/or a categorical ``label``). Rows with a ``run_id`` grade that stored run's output; the
others are kept on one grading-session run per grader (``agent`` = the grader, ``task`` = the dataset),
so a grader's work is a run like any other and agreement is a query over scores.

Example — LLM-Rubric (human ratings of 223 dialogues vs the judge's expected score; the README's
RMSE 0.9187, Pearson 0.1773, Spearman 0.0867, Kendall 0.0659 come out of the last line)::

    human = pd.read_csv(d / "human_judges_real_convs_FIXED_ANON.tsv", sep="\t")
    import_grades(store, human.assign(dimension="Q0"), scorer="human",
                  columns={"grader": "annotator_id", "item": "text_id", "value": "Q0"})
    llm = pd.read_csv(d / "gpt-3.5-turbo-16k_real_evaluations_FIXED.tsv", sep="\t")
    p = llm[[f"answer{k}_prob" for k in range(1, 5)]].to_numpy()
    import_grades(store, pd.DataFrame({"grader": "gpt-3.5-turbo-16k", "item": llm.text_id,
                                       "value": p @ [1, 2, 3, 4] / p.sum(1), "dimension": llm.criterion}),
                  scorer="expected", provenance="model")
    q0 = ratings_table(store.scores_frame(), by="scorer", dimension="Q0")
    agreement(q0["expected"], q0["human"])

PandaLM (annotators and judges, ties and unparseable verdicts as ties) is worked through in
``notebooks/judging_the_judges.ipynb``.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lab.scoring.base import ScoringError
from lab.traces.errors import StoreError
from lab.traces.schema import Provenance, RunStatus, Score
from lab.traces.store import TraceStore, score_event


def read_grades(path: str | os.PathLike[str], *, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read a grades file: CSV, TSV (by extension) or JSONL, checked as text first (UTF-8, no NUL bytes).

    Each row gets a ``_line`` column: its line in the file, for error messages.

    Args:
        path: The file.
        columns: Our column name → the file's (e.g. ``{"grader": "annotator_id", "item": "text_id"}``).

    Raises:
        ScoringError: The file cannot be read or parsed (the message names the file, and the line where known).
    """
    from lab.traces.errors import TraceImportError
    from lab.traces.files import iter_lines, parse_json, read_text

    path = Path(path)
    try:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            records, lines = [], []
            for lineno, line in iter_lines(path):
                obj = parse_json(line, path, lineno)
                if not isinstance(obj, dict):
                    raise ScoringError(f"{path}:{lineno}: expected a JSON object (one grade per line)")
                records.append(obj)
                lines.append(lineno)
            df = pd.DataFrame.from_records(records).assign(_line=lines)
        else:
            text = read_text(path).removeprefix("\ufeff")  # spreadsheets often start CSV files with a BOM
            df = pd.read_csv(io.StringIO(text), sep="\t" if path.suffix.lower() == ".tsv" else ",", dtype=str,
                             keep_default_na=False, na_values=[""])
            df["_line"] = range(2, len(df) + 2)  # after the header; quoted line breaks would shift it
    except TraceImportError as e:
        raise ScoringError(str(e)) from None
    except pd.errors.EmptyDataError:
        raise ScoringError(f"{path}: no grades in the file") from None
    except (pd.errors.ParserError, ValueError) as e:
        m = re.search(r"line (\d+)", str(e))
        where = f"{path}:{m.group(1)}" if m else str(path)
        raise ScoringError(f"{where}: cannot parse grades ({str(e).strip().splitlines()[-1]})") from None
    if df.empty:
        raise ScoringError(f"{path}: no grades in the file")
    return df.rename(columns={v: k for k, v in (columns or {}).items()})


def import_grades(
    store: TraceStore,
    grades: pd.DataFrame | str | os.PathLike[str],
    *,
    scorer: str = "human_grade",
    provenance: str = Provenance.HUMAN.value,
    dataset: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> list[str]:
    """Record grades as scores, all or nothing.

    Args:
        store: The trace store.
        grades: A DataFrame or a CSV/TSV/JSONL path with columns ``grader``, ``item``, ``value`` and
            optionally ``dimension`` (default ``overall``), ``label`` and ``run_id``.
        scorer: Scorer name the grades are recorded under.
        provenance: ``human`` (experts, annotators) or ``model`` (verdicts of an external judge).
        dataset: Task name of the grading-session runs (default: the file's stem, or ``grades``).
        columns: Our column name → the input's, for files with other headers.

    Returns:
        The run ids the grades were recorded on (grading sessions first, then graded runs).

    Raises:
        ScoringError: Missing columns, or a row without a grader, an item, or a numeric value or label
            (the message names the row; nothing was recorded).
        StoreError: A ``run_id`` that is not in the store.
    """
    if provenance not in (Provenance.HUMAN.value, Provenance.MODEL.value):
        raise ScoringError(f"import_grades: provenance must be 'human' or 'model', not {provenance!r}")
    where = str(grades) if not isinstance(grades, pd.DataFrame) else "grades"
    if isinstance(grades, pd.DataFrame):
        df = grades.rename(columns={v: k for k, v in (columns or {}).items()})
    else:
        df = read_grades(grades, columns=columns)
        dataset = dataset or Path(grades).stem
    missing = {"grader", "item"} - set(df.columns)
    if missing or not ({"value", "label"} & set(df.columns)):
        head = f"{where}:1" if "_line" in df.columns else where
        raise ScoringError(f"{head}: grades need columns grader, item and value (or label); missing "
                           f"{sorted(missing) or ['value']} among {[c for c in df.columns if c != '_line']}")
    rows = [_row(r, i, where) for i, r in enumerate(df.to_dict("records"))]
    sessions: dict[str, str] = {}  # grader -> grading-session run
    graded: dict[str, None] = {}  # stored runs graded directly, in order
    events = []
    with store.transaction():
        for r in rows:
            if r["run_id"] is not None:
                try:
                    run_id = store.get_run(r["run_id"])["run_id"]
                except StoreError as e:
                    raise ScoringError(f"{r['at']}: field 'run_id': {e}") from None
                graded[run_id] = None
            elif r["grader"] not in sessions:
                run_id = sessions[r["grader"]] = store.create_run(
                    {"task": dataset or "grades", "grader": r["grader"], "source": where, "kind": "grading"},
                    agent=r["grader"], model=r["grader"] if provenance == Provenance.MODEL.value else None,
                    is_human=provenance == Provenance.HUMAN.value)
            else:
                run_id = sessions[r["grader"]]
            events.append(score_event(run_id, Score(scorer, r["value"], provenance, source=r["grader"],
                                                    item_id=r["item"], dimension=r["dimension"], label=r["label"])))
        store.append_many(events)
        for run_id in sessions.values():
            store.finish_run(run_id, RunStatus.DONE.value)
    return [*sessions.values(), *graded]


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _row(r: dict[str, Any], i: int, where: str) -> dict[str, Any]:
    at = f"{where}:{r['_line']}" if "_line" in r else f"{where}: row {i + 1}"
    if _blank(r.get("grader")) or _blank(r.get("item")):
        raise ScoringError(f"{at}: needs a grader and an item (got {r.get('grader')!r}, {r.get('item')!r})")
    raw: Any = r.get("value")  # any scalar a grades file holds
    label = r.get("label")
    value: float | None = None
    if not _blank(raw):
        try:
            value = float(raw) if not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            value = None
        if value is None:
            raise ScoringError(f"{at}: field 'value': {raw!r} is not a number (put categories in a label column)")
        if not math.isfinite(value):
            raise ScoringError(f"{at}: field 'value': {raw!r} is not a finite number")
    if value is None and _blank(label):
        raise ScoringError(f"{at}: has neither a value nor a label")
    return {"at": at, "grader": str(r["grader"]), "item": str(r["item"]),
            "dimension": "overall" if _blank(r.get("dimension")) else str(r["dimension"]),
            "value": value, "label": None if _blank(label) else str(label),
            "run_id": None if _blank(r.get("run_id")) else str(r["run_id"])}

