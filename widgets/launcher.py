"""Run launcher: a saveable run configuration (suite, tasks, loop, models, sandbox, seeds, concurrency,
budgets), start, live progress per batch and per run, cancel and resume."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn
import param

from lab.errors import LabError
from lab.traces import TraceStore
from widgets.notice import notice

LOOPS = ["dera", "react", "repo-setup", "human"]


def _suites() -> list[str]:
    try:
        from lab.tasks import list_suites

        return [s.name for s in list_suites()]
    except LabError:
        return []


class RunConfig(param.Parameterized):
    """What to run: task suite × tasks × loop × models × seeds, where, how many at once, within which budgets.

    Save it with :meth:`save` (JSON) and rebuild it with :meth:`load`, so a launch can be rerun exactly.
    """

    suite = param.Selector(default=None, objects=[], doc="Task suite.")
    tasks = param.ListSelector(default=[], objects=[], doc="Tasks of the suite (none: the suite's CI subset).")
    loop = param.Selector(default="dera", objects=LOOPS, doc="Agent loop.")
    models = param.List(default=["smollm2"], item_type=str, doc="Models (each task runs on each).")
    sandbox = param.Selector(default="docker", objects=["docker", "local"], doc="Sandbox backend.")
    seeds = param.Integer(default=1, bounds=(1, 100), doc="Runs per task and model (seeds 0..n-1).")
    concurrency = param.Integer(default=2, bounds=(1, 64), doc="Runs at once.")
    max_steps = param.Integer(default=10, bounds=(1, 10000), doc="Step budget per run.")
    time_limit = param.Number(default=600.0, bounds=(1, None), doc="Working-time budget per run (seconds).")
    max_tokens = param.Integer(default=256, bounds=(1, 100000), doc="Output tokens per model call.")

    def load_choices(self) -> None:
        """Fill the suite and task choices from the installed suites (reads task files; done when shown)."""
        self.param.suite.objects = _suites()
        if self.suite is None and self.param.suite.objects:
            self.suite = self.param.suite.objects[0]
        self._load_tasks()

    @param.depends("suite", watch=True)
    def _load_tasks(self) -> None:
        ids: list[str] = []
        if self.suite and self.param.suite.objects:
            try:
                from lab.tasks import load_suite

                ids = [t.id for t in load_suite(self.suite)]
            except LabError:
                ids = []
        self.param.tasks.objects = ids
        if ids:
            self.tasks = [t for t in self.tasks if t in ids]

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-able values."""
        return {k: v for k, v in self.param.values().items() if k != "name"}

    def save(self, path: str | Path) -> Path:
        """Write the configuration as JSON."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Rebuild a saved configuration.

        Raises:
            LabError: The file is missing or not a saved configuration.
        """
        try:
            data = json.loads(Path(path).read_text())
            return cls(**data)
        except (OSError, json.JSONDecodeError, ValueError, TypeError) as e:
            raise LabError(f"{path}: not a saved run configuration ({e})") from e


def _runner() -> Any | None:
    """The lab's runner module, when this installation has it."""
    try:
        return importlib.import_module("lab.runner")
    except ImportError:
        return None


class RunLauncher(param.Parameterized):
    """Start, watch, cancel and resume a batch of runs described by a :class:`RunConfig`.

    Args:
        store: Where runs are recorded.
        config: The configuration (a fresh one by default).
    """

    batch_id = param.String(default="", doc="The batch launched last (progress follows it).")
    status = param.String(default="", doc="What the launcher last did.")

    def __init__(self, store: TraceStore, config: RunConfig | None = None, **params: Any) -> None:
        self.store = store
        self.config = config or RunConfig()
        self.handle: Any = None
        super().__init__(**params)

    def start(self) -> str:
        """Launch the batch in the background; returns its batch id.

        Raises:
            LabError: The runner is not installed, or the configuration is invalid.
        """
        runner = _runner()
        if runner is None:
            raise LabError("the run launcher needs lab.runner, which this installation does not have yet")
        self.handle = runner.launch(self.store, self.config.to_dict(), background=True)
        self.batch_id = self.handle.batch_id
        return self.batch_id

    def cancel(self) -> None:
        """Cancel the running batch (runs in flight stop as ``cancelled``)."""
        if self.handle is not None:
            self.handle.cancel()

    def resume(self) -> None:
        """Resume the batch: runs not finished are run again, finished ones are kept."""
        runner = _runner()
        if runner is None or not self.batch_id:
            raise LabError("nothing to resume: no batch launched from here")
        self.handle = runner.resume(self.store, self.batch_id, background=True)

    def progress(self) -> pd.DataFrame:
        """The batch's runs with their status and working time."""
        if not self.batch_id:
            return pd.DataFrame(columns=["run_id", "task", "model", "seed", "status", "elapsed"])
        runs = pd.DataFrame(self.store.list_runs(batch_id=self.batch_id))
        if runs.empty:
            return pd.DataFrame(columns=["run_id", "task", "model", "seed", "status", "elapsed"])
        return runs[["run_id", "task", "model", "seed", "status", "elapsed"]]

    # -- view ----------------------------------------------------------------------------------

    def _act(self, action: str) -> None:
        try:
            getattr(self, action)()
            self.status = f"{action}: ok" + (f" (batch `{self.batch_id}`)" if self.batch_id else "")
        except LabError as e:
            self.status = f"{action}: {e}"

    @param.depends("status", "batch_id")
    def status_view(self) -> pn.viewable.Viewable:
        if _runner() is None:
            return notice("Launching is unavailable: this installation of `lab` has no runner yet "
                          "(`lab.runner`). The configuration can still be edited and saved.", "warning")
        return notice(self.status, "info") if self.status else pn.pane.HTML("")

    def progress_view(self) -> pn.viewable.Viewable:
        df = self.progress()
        if df.empty:
            return pn.pane.Markdown("*No batch running.*")
        done = int((df["status"] != "running").sum())
        return pn.Column(
            pn.indicators.Progress(value=done, max=len(df), sizing_mode="stretch_width", css_classes=["lab-batch-progress"]),
            pn.pane.Markdown(f"batch `{self.batch_id}`: {done} of {len(df)} runs finished"),
            pn.widgets.Tabulator(df, disabled=True, show_index=False, height=240, sizing_mode="stretch_width"),
        )

    def panel(self) -> pn.viewable.Viewable:
        self.config.load_choices()
        buttons = []
        for action, kind in (("start", "primary"), ("cancel", "danger"), ("resume", "default")):
            b = pn.widgets.Button(name=action, button_type=kind, width=90, css_classes=[f"lab-{action}"])
            b.on_click(lambda _, a=action: self._act(a))
            buttons.append(b)
        progress = pn.panel(pn.bind(lambda *_: self.progress_view(), self.param.batch_id, self.param.status))
        view = pn.Column(pn.Param(self.config, show_name=False, widgets={
            "tasks": pn.widgets.MultiChoice, "models": {"type": pn.widgets.LiteralInput, "serializer": "json"}}),
            pn.Row(*buttons), self.status_view, progress, sizing_mode="stretch_width")
        cb = pn.state.add_periodic_callback(lambda: self.batch_id and self.param.trigger("batch_id"), period=2000)
        view._lab_callback = cb
        return view

    def __panel__(self) -> pn.viewable.Viewable:
        return self.panel()
