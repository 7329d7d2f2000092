"""Grading widget: an expert grades run outputs blind (no agent, model or human shown), in an order randomised
per grader, on a rubric of one or several dimensions, or picks the better of a pair. Grades are stored as
human scores carrying the grader's id."""

from __future__ import annotations

import random
from collections import defaultdict
from functools import partial

import panel as pn
import param

from lab.auth import Access
from lab.errors import LabError
from lab.traces import Score, StoreError, TraceStore, schema
from widgets.callbacks import on_click
from widgets.notice import notice

_PROMPT_KEYS = ("prompt", "question", "instructions", "task_prompt")
#: Pairwise judgements are stored on this dimension (a preference is overall unless a rubric says otherwise).
PAIR_DIMENSION = "overall"


def outputs(store: TraceStore, run_ids: list[str] | None = None) -> dict[str, str]:
    """Each run's final output, read in one query: the ``lab.answer`` of ``run_finished``, else the last
    answer a message gave, else the last submitted action (imported SUPER runs). Runs without one are absent."""
    rows = store.event_values(["run_finished", "agent_message", "tool_call", "human_action"],
                              [schema.ANSWER, schema.CONTENT, schema.TOOL_NAME, schema.ACTION,
                               (schema.ARGUMENTS, "answer")])
    wanted = set(run_ids) if run_ids is not None else None
    rank: dict[str, tuple[int, int, str]] = {}
    for run_id, seq, kind, (answer, _content, tool, action, arg_answer) in rows:
        if wanted is not None and run_id not in wanted:
            continue
        if kind == "run_finished" and answer:
            cand = (3, seq, str(answer))
        elif kind in ("agent_message", "human_action") and answer:
            cand = (2, seq, str(answer))
        elif kind == "tool_call" and tool == "submit" and (action or arg_answer):
            cand = (1, seq, str(action or arg_answer))
        else:
            continue
        if run_id not in rank or cand[:2] > rank[run_id][:2]:
            rank[run_id] = cand
    return {r: c[2] for r, c in rank.items()}


def item_text(store: TraceStore, run_id: str) -> tuple[str, str]:
    """What a grader sees of a run: the task's prompt and the run's final output (nothing else).

    The output is as :func:`outputs` reads it; the prompt is the run config's ``prompt`` (or
    ``question``/``instructions``, or an imported SUPER run's query), else the task id.
    """
    run = store.get_run(run_id)
    cfg = run["config"]
    prompt = next((str(cfg[k]) for k in _PROMPT_KEYS if cfg.get(k)), "")
    if not prompt:
        first = store.events(run["run_id"], kinds=["run_started"])
        prompt = str(first[0].attrs.get(schema.SUPER_QUERY) or "") if first else ""
    return prompt or f"Task {run['task']}", outputs(store, [run["run_id"]]).get(run["run_id"], "")


class GradingWidget(pn.viewable.Viewer):
    """Blind grading of runs by one expert.

    Args:
        store: Where runs are read and grades written.
        **params: ``grader`` (required to submit), ``runs`` (run ids to grade), ``dimensions``
            (name → (lowest, highest) grade), ``mode`` (``rubric`` or ``pairwise``), ``scorer``, ``seed``.
        access: Who grades: signed in, the grader id is the signed-in user (never typed) and only a
            ``grader`` may grade (default: local use, the typed grader id).
    """

    grader = param.String(default="", doc="The expert's id; stored as the grades' source.")
    runs = param.List(default=[], item_type=str, doc="Runs to grade (pairwise: runs of the same task are paired).")
    dimensions = param.Dict(default={"overall": (1, 5)}, doc="Rubric: dimension → (lowest, highest) integer grade.")
    mode: param.Selector[str] = param.Selector(default="rubric", objects=["rubric", "pairwise"],
                                               doc="Grade each output, or pick the better of two.")
    scorer = param.String(default="expert", doc="Scorer name of rubric grades (pairwise: ``preference``).")
    seed = param.Integer(default=0, doc="Randomises the order (together with the grader id).")
    position = param.Integer(default=0, precedence=-1, doc="Index of the item shown.")
    done = param.Integer(default=0, precedence=-1, doc="Grades submitted in this session.")
    queue_version = param.Integer(default=0, precedence=-1, doc="Bumped whenever the queue is rebuilt.")
    message = param.String(default="", precedence=-1, doc="What went wrong with the last submission ('' if fine).")

    def __init__(self, store: TraceStore, *, access: Access | None = None, **params) -> None:
        self.store = store
        self.access = access or Access()
        if self.access.signed_in:
            params["grader"] = self.access.user or ""
        self.queue: list[tuple[str, ...]] = []
        self.skipped = 0
        self._choices: dict[str, pn.widgets.RadioButtonGroup] = {}
        self._chosen: dict[str, int] = {}
        super().__init__(**params)
        self._build_queue()

    @param.depends("runs", "mode", "grader", "seed", "scorer", "dimensions", watch=True)
    def _build_queue(self) -> None:
        """Rebuild the queue (only runs with an output; pairwise: pairs of runs of the same task), in an
        order randomised per grader and seed. The item on screen stays first if it is still to be graded,
        and the view is redrawn, so what is graded is always what is shown."""
        shown = self.current
        rng = random.Random(f"{self.grader}:{self.seed}")
        graded = self._already_graded()
        have = outputs(self.store, list(self.runs)) if self.runs else {}
        runs = [r for r in self.runs if r in have]
        self.skipped = len(self.runs) - len(runs)
        if self.mode == "rubric":
            items: list[tuple[str, ...]] = [(r,) for r in runs if r not in graded]
        else:
            by_task: dict[str | None, list[str]] = defaultdict(list)
            for r in runs:
                try:
                    by_task[self.store.get_run(r)["task"]].append(r)
                except StoreError:
                    continue
            items = []
            for ids in by_task.values():
                items += [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]]
            items = [tuple(rng.sample(pair, 2)) for pair in items]  # left/right at random
        rng.shuffle(items)
        if shown is not None:
            same = [i for i in items if set(i) == set(shown)]
            if same:
                items.remove(same[0])
                items.insert(0, same[0] if self.mode == "pairwise" else shown)
            else:
                self._chosen = {}
        self.queue = items
        self.position = 0
        self.message = ""
        self.queue_version += 1

    def _already_graded(self) -> set:
        if not self.grader or self.mode != "rubric":
            return set()  # pairwise: a pair may be judged again (each judgement is one comparison)
        return {r["run_id"] for r in self.store.scores(provenance="human", source=self.grader, scorer=self.scorer)}

    @property
    def current(self) -> tuple[str, ...] | None:
        """The run id(s) being graded now, or ``None`` when the queue is done."""
        return self.queue[self.position] if self.position < len(self.queue) else None

    def grade(self, grades: dict[str, float] | str, *, item: tuple[str, ...] | None = None) -> None:
        """Store the grade of the current item and move on.

        Args:
            grades: Rubric mode: dimension → grade. Pairwise mode: ``"left"``, ``"right"`` or ``"tie"``.
            item: The item the grade is meant for (what the grader saw); refused unless it is the current one.

        Raises:
            AuthError: Signed in with a role that may not grade.
            ValueError: No grader id, nothing left to grade, another item than the current one, or a grade
                that does not fit the mode or the rubric.
        """
        if self.access.signed_in:
            self.grader = self.access.require("grade")
        if not self.grader.strip():
            raise ValueError("enter your grader id before grading")
        current = self.current
        if current is None:
            raise ValueError("nothing left to grade")
        if item is not None and tuple(item) != current:
            raise ValueError("the queue changed since this item was shown; grade the item shown now")
        details = {"blind": True, "position": self.position, "seed": self.seed, "by": self.grader}
        if self.mode == "rubric":
            if not isinstance(grades, dict):
                raise ValueError("rubric mode: give a grade for each dimension")
            missing = set(self.dimensions) - set(grades)
            if missing:
                raise ValueError(f"grade every dimension (missing: {', '.join(sorted(missing))})")
            for dim, value in grades.items():
                if dim not in self.dimensions:
                    raise ValueError(f"{dim} is not a dimension of the rubric ({', '.join(self.dimensions)})")
                lo, hi = self.dimensions[dim]
                if not lo <= float(value) <= hi:
                    raise ValueError(f"{dim}: grade {value} outside {lo}–{hi}")
            for dim, value in grades.items():
                self.store.add_score(current[0], Score(self.scorer, float(value), provenance="human",
                                                       source=self.grader, item_id=current[0], dimension=dim,
                                                       details=details))
        else:
            if grades not in ("left", "right", "tie"):
                raise ValueError("pairwise mode: choose left, right or tie")
            left = {"left": 1.0, "right": 0.0, "tie": 0.5}[grades]
            task = self.store.get_run(current[0])["task"]
            for run, other, v in ((current[0], current[1], left), (current[1], current[0], 1.0 - left)):
                self.store.add_score(run, Score("preference", v, provenance="human", source=self.grader,
                                                item_id=task, dimension=PAIR_DIMENSION,
                                                details={**details, "opponent": other}))
        self._chosen = {}
        self.message = ""
        self.done += 1
        self.position += 1

    # -- view ----------------------------------------------------------------------------------

    def _submit(self, value: dict[str, float] | str, item: tuple[str, ...]) -> None:
        try:
            self.grade(value, item=item)
        except (ValueError, LabError) as e:
            self.message = str(e)

    @param.depends("message")
    def message_view(self) -> pn.viewable.Viewable:
        """Why the last submission was refused (empty after a successful one)."""
        return notice(self.message, "warning") if self.message else pn.pane.HTML("", css_classes=["lab-grade-ok"])

    def _choice(self, dim: str, lo: int, hi: int) -> pn.widgets.RadioButtonGroup:
        w = pn.widgets.RadioButtonGroup(name=dim, options={"–": None, **{str(v): v for v in range(lo, hi + 1)}},
                                        value=self._chosen.get(dim), css_classes=[f"lab-grade-{dim}"])
        w.param.watch(lambda e: self._chosen.__setitem__(dim, e.new), "value")
        return w

    @param.depends("position", "done", "queue_version")
    def item_view(self) -> pn.viewable.Viewable:
        """The current item (blind) with its grading controls; its buttons grade exactly this item."""
        if not self.runs:
            return notice("Nothing to grade: select runs (runs table) or pass `runs=[...]`.", "info")
        skipped = (f" ({self.skipped} selected run{'s' if self.skipped != 1 else ''} without an output left out)"
                   if self.skipped else "")
        item = self.current
        if item is None:
            if not self.queue:
                return notice(f"Nothing to grade in {self.mode} mode among the selected runs{skipped}"
                              + (": pairs need two runs of the same task with an output." if self.mode == "pairwise"
                                 else "."), "info")
            return notice(f"All {len(self.queue)} items graded — thank you. {self.done} grades stored this session.",
                          "success")
        parts: list = [pn.pane.Markdown(
            f"**Item {self.position + 1} of {len(self.queue)}** ({self.mode}; blind; order randomised"
            f"{' for ' + self.grader if self.grader else ''}){skipped}",
            css_classes=["lab-grade-progress"])]
        texts = [item_text(self.store, r) for r in item]
        parts.append(pn.pane.Markdown(f"**Task.** {texts[0][0]}", css_classes=["lab-grade-task"]))
        if self.mode == "rubric":
            parts.append(pn.pane.Markdown(texts[0][1], css_classes=["lab-grade-output"],
                                          styles={"background": "#f6f8fa", "padding": "0 8px"}))
            self._choices = {dim: self._choice(dim, lo, hi) for dim, (lo, hi) in self.dimensions.items()}
            rows = [pn.Row(pn.pane.Markdown(f"**{dim}** ({lo}–{hi})", width=160), self._choices[dim])
                    for dim, (lo, hi) in self.dimensions.items()]
            submit = pn.widgets.Button(name="Submit grade", button_type="primary", css_classes=["lab-grade-submit"])
            submit.on_click(lambda _: self._submit({d: v for d, v in self._chosen.items()
                                                    if v is not None and d in self.dimensions}, item))
            parts += [*rows, submit]
        else:
            parts.append(pn.Row(*(pn.pane.Markdown(f"**{side}**\n\n{t[1]}", width=380,
                                                   styles={"background": "#f6f8fa", "padding": "0 8px"},
                                                   css_classes=[f"lab-pair-{side.lower()}-output"])
                                  for side, t in zip(("Left", "Right"), texts, strict=True))))
            buttons = []
            for choice, label in (("left", "Left is better"), ("tie", "Tie"), ("right", "Right is better")):
                b = pn.widgets.Button(name=label, css_classes=[f"lab-pair-{choice}"])
                on_click(b, partial(self._submit, choice, item))
                buttons.append(b)
            parts.append(pn.Row(*buttons))
        return pn.Column(*parts, sizing_mode="stretch_width", css_classes=["lab-grading"],
                         tags=[",".join(item)])

    def panel(self) -> pn.viewable.Viewable:
        """The grader id and mode controls, the queue's message and the item being graded."""
        return pn.Column(
            pn.Row(pn.widgets.TextInput.from_param(self.param.grader, name="grader id", css_classes=["lab-grader"],
                                                   disabled=self.access.signed_in),
                   pn.widgets.RadioButtonGroup.from_param(self.param.mode, css_classes=["lab-grade-mode"])),
            self.message_view, self.item_view, sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self.panel()
