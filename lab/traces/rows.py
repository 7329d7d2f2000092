"""What the trace store's read methods return: typed rows of its tables, and small typed summaries.

A table's row is a :class:`~typing.TypedDict` (``run["status"]`` reads as before, and the type checker knows
the keys); a summary computed by a query is a :class:`~typing.NamedTuple` (unpacks like the SQL row it
replaces, and compares as a tuple).
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypedDict

#: An attribute value as SQL reads it out of an event's JSON: text, a number, ``None`` when absent, JSON
#: ``true``/``false`` as 1/0, and an object or array as its JSON text.
JsonScalar = str | int | float | None


class RunRow(TypedDict):
    """One run, as :meth:`~lab.traces.store.TraceStore.get_run` and ``list_runs`` return it.

    Attributes:
        run_id: The run's id.
        task: The task's id.
        agent: The loop (or ``human``) that made the run.
        model: The model it used (``human:<expert>`` for a human expert).
        seed: Its seed.
        is_human: Whether a human expert made it.
        status: ``running``, ``done``, ``failed``, ``cancelled``, ``interrupted`` ... (see ``RunStatus``).
        created_at: When it was registered (Unix seconds).
        finished_at: When it finished (``None`` while it runs).
        elapsed: Its pause-free working time in seconds, once recorded.
        error: Why it failed or stopped.
        owner: ``host:pid:start`` of the process writing it while it runs.
        parent_run_id: The run it was forked from.
        fork_step: The parent's step it was forked at.
        batch_id: The batch (experiment launch) it belongs to.
        config: Its whole configuration (secrets redacted).
    """

    run_id: str
    task: str | None
    agent: str | None
    model: str | None
    seed: int | None
    is_human: bool
    status: str
    created_at: float
    finished_at: float | None
    elapsed: float | None
    error: str | None
    owner: str | None
    parent_run_id: str | None
    fork_step: int | None
    batch_id: str | None
    config: dict[str, Any]


class ScoreRow(TypedDict):
    """One score with its provenance, as :meth:`~lab.traces.store.TraceStore.scores` returns it.

    Attributes:
        run_id: The scored run.
        seq: The sequence number of the score's event in the run.
        item_id: The scored item (``None``: the run's task).
        scorer: The scorer's name.
        dimension: The rubric dimension (``overall`` when the score has none).
        value: The numeric score (``None`` for a label-only or missing score).
        label: A categorical grade.
        provenance: Who gave it: ``rule``, ``model`` or ``human``.
        source: Which judge or expert gave it.
        final: Whether it is the run's final score (else an intermediate one, over working time).
        elapsed: The run's working time when it was given.
        ts: When it was recorded (Unix seconds).
        details: What the scorer recorded with it (a judge's reasons, a pairwise judgement's ``opponent`` ...).
    """

    run_id: str
    seq: int
    item_id: str | None
    scorer: str
    dimension: str
    value: float | None
    label: str | None
    provenance: str
    source: str | None
    final: bool
    elapsed: float
    ts: float
    details: dict[str, Any] | None


class ScoreRange(NamedTuple):
    """The lowest and highest value given on one dimension (:meth:`~lab.traces.store.TraceStore.score_ranges`)."""

    dimension: str
    low: float
    high: float


class StoreTotals(NamedTuple):
    """Counts that change whenever runs are added, change status or get scores
    (:meth:`~lab.traces.store.TraceStore.totals`)."""

    runs: int
    running: int
    scores: int
    last_finished_at: float


class EventValues(NamedTuple):
    """Some attribute values of one event (:meth:`~lab.traces.store.TraceStore.event_values`)."""

    run_id: str
    seq: int
    kind: str
    values: tuple[JsonScalar, ...]
