"""Grading widget: an expert grades run outputs blind (no agent, model or human shown), in an order randomised
per grader, on a rubric of one or several dimensions, or picks the better of a pair. Grades are stored as
human scores carrying the grader's id."""

from __future__ import annotations

import random
from collections import defaultdict

import panel as pn
import param

from lab.traces import Score, StoreError, TraceStore
from widgets.notice import notice

_OUTPUT_KEYS = ("lab.answer", "output", "content", "gen_ai.completion")
_PROMPT_KEYS = ("prompt", "question", "instructions", "task_prompt")


def item_text(store: TraceStore, run_id: str) -> tuple[str, str]:
    """What a grader sees of a run: the task's prompt and the run's final output (nothing else).

    The output is the ``lab.answer`` of ``run_finished``, else the last message's content; the prompt is
    the run config's ``prompt`` (or ``question``/``instructions``), else the task id.
    """
    run = store.get_run(run_id)
    cfg = run["config"]
    prompt = next((str(cfg[k]) for k in _PROMPT_KEYS if cfg.get(k)), f"Task {run['task']}")
    for ev in reversed(store.events(run["run_id"], kinds=["run_finished", "agent_message", "model_call"])):
        for key in _OUTPUT_KEYS:
            if ev.attrs.get(key):
                return prompt, str(ev.attrs[key])
    return prompt, ""


class GradingWidget(param.Parameterized):
    """Blind grading of runs by one expert.

    Args:
        store: Where runs are read and grades written.
        **params: ``grader`` (required to submit), ``runs`` (run ids to grade), ``dimensions``
            (name → (lowest, highest) grade), ``mode`` (``rubric`` or ``pairwise``), ``scorer``, ``seed``.
    """

    grader = param.String(default="", doc="The expert's id; stored as the grades' source.")
    runs = param.List(default=[], item_type=str, doc="Runs to grade (pairwise: runs of the same task are paired).")
    dimensions = param.Dict(default={"overall": (1, 5)}, doc="Rubric: dimension → (lowest, highest) integer grade.")
    mode = param.Selector(default="rubric", objects=["rubric", "pairwise"], doc="Grade each output, or pick the better of two.")
    scorer = param.String(default="expert", doc="Scorer name of rubric grades (pairwise: ``preference``).")
    seed = param.Integer(default=0, doc="Randomises the order (together with the grader id).")
    position = param.Integer(default=0, precedence=-1, doc="Index of the item shown.")
    done = param.Integer(default=0, precedence=-1, doc="Grades submitted in this session.")

    def __init__(self, store: TraceStore, **params) -> None:
        self.store = store
        self.queue: list[tuple[str, ...]] = []
        self._choices: dict[str, pn.widgets.RadioButtonGroup] = {}
        self._error = ""
        super().__init__(**params)
        self._build_queue()

    @param.depends("runs", "mode", "grader", "seed", "scorer", watch=True)
    def _build_queue(self) -> None:
        rng = random.Random(f"{self.grader}:{self.seed}")
        graded = self._already_graded()
        if self.mode == "rubric":
            items: list[tuple[str, ...]] = [(r,) for r in self.runs if r not in graded]
        else:
            by_task: dict[str, list[str]] = defaultdict(list)
            for r in self.runs:
                try:
                    by_task[self.store.get_run(r)["task"]].append(r)
                except StoreError:
                    continue
            items = []
            for ids in by_task.values():
                items += [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]
                          if frozenset((a, b)) not in graded]
            items = [tuple(rng.sample(pair, 2)) for pair in items]  # left/right at random
        rng.shuffle(items)
        self.queue = items
        self.position = 0

    def _already_graded(self) -> set:
        if not self.grader or self.mode != "rubric":
            return set()  # pairwise: a pair may be judged again (each judgement is one comparison)
        rows = self.store.query("SELECT DISTINCT run_id FROM scores WHERE provenance='human' AND source=? AND scorer=?",
                                (self.grader, self.scorer))
        return {r for (r,) in rows}

    @property
    def current(self) -> tuple[str, ...] | None:
        """The run id(s) being graded now, or ``None`` when the queue is done."""
        return self.queue[self.position] if self.position < len(self.queue) else None

    def grade(self, grades: dict[str, float] | str) -> None:
        """Store the grade of the current item and move on.

        Args:
            grades: Rubric mode: dimension → grade. Pairwise mode: ``"left"``, ``"right"`` or ``"tie"``.

        Raises:
            ValueError: No grader id, nothing left to grade, or a grade outside the rubric.
        """
        if not self.grader.strip():
            raise ValueError("enter your grader id before grading")
        item = self.current
        if item is None:
            raise ValueError("nothing left to grade")
        details = {"blind": True, "position": self.position, "seed": self.seed}
        if self.mode == "rubric":
            missing = set(self.dimensions) - set(grades)
            if missing:
                raise ValueError(f"grade every dimension (missing: {', '.join(sorted(missing))})")
            for dim, value in grades.items():
                lo, hi = self.dimensions[dim]
                if not lo <= float(value) <= hi:
                    raise ValueError(f"{dim}: grade {value} outside {lo}–{hi}")
            for dim, value in grades.items():
                self.store.add_score(item[0], Score(self.scorer, float(value), provenance="human", source=self.grader,
                                                    item_id=item[0], dimension=dim, details=details))
        else:
            if grades not in ("left", "right", "tie"):
                raise ValueError(f"pairwise grade must be left, right or tie, not {grades!r}")
            left = {"left": 1.0, "right": 0.0, "tie": 0.5}[grades]
            task = self.store.get_run(item[0])["task"]
            dim = next(iter(self.dimensions))
            for run, other, v in ((item[0], item[1], left), (item[1], item[0], 1.0 - left)):
                self.store.add_score(run, Score("preference", v, provenance="human", source=self.grader,
                                                item_id=task, dimension=dim, details={**details, "opponent": other}))
        self.done += 1
        self.position += 1

    # -- view ----------------------------------------------------------------------------------

    def _submit(self, value: dict[str, float] | str) -> None:
        try:
            self.grade(value)
            self._error = ""
        except ValueError as e:
            self._error = str(e)
            self.param.trigger("position")

    @param.depends("position", "done")
    def item_view(self) -> pn.viewable.Viewable:
        """The current item (blind) with its grading controls."""
        parts: list = []
        if getattr(self, "_error", ""):
            parts.append(notice(self._error, "warning"))
        if not self.runs:
            return notice("Nothing to grade: select runs (runs table) or pass `runs=[...]`.", "info")
        item = self.current
        if item is None:
            return notice(f"All {len(self.queue)} items graded — thank you. {self.done} grades stored this session.",
                          "success")
        parts.append(pn.pane.Markdown(f"**Item {self.position + 1} of {len(self.queue)}** (blind; order randomised)",
                                      css_classes=["lab-grade-progress"]))
        texts = [item_text(self.store, r) for r in item]
        parts.append(pn.pane.Markdown(f"**Task.** {texts[0][0]}"))
        if self.mode == "rubric":
            parts.append(pn.pane.Markdown(texts[0][1] or "*(the run produced no output)*",
                                          css_classes=["lab-grade-output"], styles={"background": "#f6f8fa"}))
            self._choices = {
                dim: pn.widgets.RadioButtonGroup(name=dim, options={"–": None, **{str(v): v for v in range(lo, hi + 1)}},
                                                 value=None, css_classes=[f"lab-grade-{dim}"])
                for dim, (lo, hi) in self.dimensions.items()
            }
            rows = [pn.Row(pn.pane.Markdown(f"**{dim}** ({lo}–{hi})", width=160), self._choices[dim])
                    for dim, (lo, hi) in self.dimensions.items()]
            submit = pn.widgets.Button(name="Submit grade", button_type="primary", css_classes=["lab-grade-submit"])
            submit.on_click(lambda _: self._submit({d: w.value for d, w in self._choices.items()
                                                    if w.value is not None}))
            parts += [*rows, submit]
        else:
            parts.append(pn.Row(*(pn.pane.Markdown(f"**{side}**\n\n{t[1] or '*(no output)*'}", width=380,
                                                   styles={"background": "#f6f8fa"})
                                  for side, t in zip(("Left", "Right"), texts))))
            buttons = []
            for choice, label in (("left", "Left is better"), ("tie", "Tie"), ("right", "Right is better")):
                b = pn.widgets.Button(name=label, css_classes=[f"lab-pair-{choice}"])
                b.on_click(lambda _, c=choice: self._submit(c))
                buttons.append(b)
            parts.append(pn.Row(*buttons))
        return pn.Column(*parts, sizing_mode="stretch_width", css_classes=["lab-grading"])

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(pn.widgets.TextInput.from_param(self.param.grader, name="grader id", css_classes=["lab-grader"]),
                   pn.widgets.RadioButtonGroup.from_param(self.param.mode)),
            self.item_view, sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self.panel()
