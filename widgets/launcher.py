"""Run launcher: a saveable run configuration (suite, tasks, loop, models, sandbox, seeds, concurrency,
budgets) turned into a :class:`lab.experiment.Experiment`; start, live progress per batch and per run,
resume, cancel."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn
import param

from lab.agents.run import LOOPS
from lab.auth import Access, record_action
from lab.errors import LabError
from lab.executors import EXECUTORS, get_executor
from lab.experiment import Experiment, ExperimentError
from lab.runner import Runner
from lab.sandbox.factory import SANDBOX_BACKENDS
from lab.traces import TraceStore
from widgets.callbacks import keep_with, on_click
from widgets.notice import notice


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

    experiment = param.String(default="notebook", doc="Experiment name (its runs form the batch exp:<name>).")
    suite: param.Selector[str | None] = param.Selector(default=None, objects=[], doc="Task suite.")
    tasks = param.ListSelector(default=[], objects=[], doc="Tasks of the suite (none: the suite's CI subset).")
    loop: param.Selector[str] = param.Selector(default="dera", objects=LOOPS.names(), doc="Agent loop.")
    models = param.List(default=["smollm2"], item_type=str, doc="Models (each task runs on each).")
    sandbox: param.Selector[str] = param.Selector(default="docker", objects=SANDBOX_BACKENDS.names(),
                                                  doc="Sandbox backend.")
    seeds = param.Integer(default=1, bounds=(1, 100), doc="Runs per task and model (seeds 0..n-1).")
    concurrency = param.Integer(default=2, bounds=(1, 64), doc="Runs at once.")
    executor: param.Selector[str] = param.Selector(default="local", objects=EXECUTORS.names(),
                                                   doc="Where runs execute (here or Ray).")
    address = param.String(default="", doc="Ray cluster address HOST:PORT (empty: $RAY_ADDRESS or this machine's).")
    max_steps = param.Integer(default=10, bounds=(1, 10000), doc="Step budget per run.")
    time_limit = param.Number(default=600.0, bounds=(1, None), doc="Working-time budget per run (seconds).")
    max_tokens = param.Integer(default=256, bounds=(1, 100000), doc="Output tokens per model call.")
    task_scoring = param.Boolean(default=True, doc="Score each run with its task's own scorers.")

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

    def to_experiment(self) -> Experiment:
        """The :class:`lab.experiment.Experiment` this configuration describes.

        Raises:
            ExperimentError: No suite chosen, or a field the experiment rejects.
        """
        if not self.suite:
            raise ExperimentError("choose a task suite")
        tasks = {"suite": self.suite, **({"ids": list(self.tasks)} if self.tasks else {"subset": "ci"})}
        return Experiment.from_dict({
            "name": self.experiment, "tasks": [tasks], "loops": [self.loop], "models": list(self.models),
            "seeds": list(range(self.seeds)), "concurrency": self.concurrency, "sandbox_backend": self.sandbox,
            "budgets": {"steps": self.max_steps, "working_time_s": self.time_limit},
            "sampling": {"max_tokens": self.max_tokens}, "task_scoring": self.task_scoring}, source="run launcher")

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


class RunLauncher(pn.viewable.Viewer):
    """Start, watch, cancel and resume a batch of runs described by a :class:`RunConfig` (runs in a
    background thread, so the notebook stays usable; progress is read from the store).

    Args:
        store: Where runs are recorded.
        config: The configuration (a fresh one by default).
        model_loader: Turns model names into models (default: :func:`lab.models.load_model`).
        access: Who launches: signed in, only an ``operator`` may start, resume or cancel, and each run of a
            launch records who launched it (``human_action`` event, ``lab.audit: launch``, ``lab.by``).
    """

    batch_id = param.String(default="", doc="The batch launched last (progress follows it).")
    status = param.String(default="", doc="What the launcher last did.")

    def __init__(self, store: TraceStore, config: RunConfig | None = None, *,
                 model_loader: Callable[[str], Any] | None = None, access: Access | None = None,
                 **params: Any) -> None:
        self.store = store
        self.access = access or Access()
        self.config = config or RunConfig()
        self.model_loader = model_loader
        self.total = 0
        self._thread: threading.Thread | None = None
        self._runner: Runner | None = None
        self._experiment: Experiment | None = None
        super().__init__(**params)

    @property
    def running(self) -> bool:
        """Whether a batch started here is still running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, *, wait: bool = False) -> str:
        """Launch the configured batch (combinations already done in the store are skipped).

        Args:
            wait: Block until the batch ends (default: run it in the background).

        Returns:
            The batch id.

        Raises:
            AuthError: Signed in with a role that may not launch.
            LabError: A batch is still running, or the configuration is invalid.
        """
        user = self.access.require("launch")
        if self.running:
            raise LabError(f"batch {self.batch_id} is still running")
        exp = self.config.to_experiment()
        self.total = len(exp.combos())
        self._experiment, self.batch_id = exp, exp.batch_id

        attribute = self._attributor(user, exp.batch_id)

        def work() -> None:
            try:
                executor = get_executor(self.config.executor, address=self.config.address or None)
                self._runner = Runner(self.store, progress=False, executor=executor, model_loader=self.model_loader)
                result = self._runner.run(exp)
                self.status = f"finished: {result.count('done')} done, {result.count('failed')} failed"
            except Exception as e:  # noqa: BLE001 - shown in the launcher, the batch is resumable
                self.status = f"stopped: {type(e).__name__}: {e}"
            finally:
                if attribute is not None:
                    self.store.remove_listener(attribute)

        self._thread = threading.Thread(target=work, name=f"launch-{exp.name}", daemon=True)
        self._thread.start()
        if wait:
            self._thread.join()
        return self.batch_id

    def _attributor(self, user: str, batch_id: str) -> Callable | None:
        """A store listener recording ``user`` as the launcher of each run of ``batch_id`` as it starts."""
        if not user:
            return None
        seen: set[str] = set()

        def attribute(store: Any, events: list) -> None:
            for ev in events:
                if ev.kind == "run_started" and ev.run_id not in seen:
                    seen.add(ev.run_id)
                    if store.get_run(ev.run_id).get("batch_id") == batch_id:
                        record_action(store, ev.run_id, "launch", user, batch=batch_id)

        self.store.add_listener(attribute)
        return attribute

    def cancel(self, *, wait: bool = False) -> str:
        """Stop the running batch: its running runs pause at their next step (``interrupted``, resumable)
        and the ones not started yet do not start.

        Raises:
            AuthError: Signed in with a role that may not cancel.
            LabError: No batch started here is running.
        """
        self.access.require("cancel")
        if not self.running or self._runner is None:
            raise LabError("no batch is running")
        self._runner.stop()
        if wait and self._thread is not None:
            self._thread.join()
        return self.batch_id

    def resume(self, *, wait: bool = False) -> str:
        """Run the batch again: done combinations are kept, interrupted ones continue from their checkpoint."""
        return self.start(wait=wait)

    def progress(self) -> pd.DataFrame:
        """The batch's runs (forks excluded) with their status and working time."""
        cols = ["run_id", "task", "model", "seed", "status", "elapsed"]
        runs = pd.DataFrame(self.store.list_runs(batch_id=self.batch_id)) if self.batch_id else pd.DataFrame()
        if runs.empty:
            return pd.DataFrame(columns=cols)
        return runs[runs["parent_run_id"].isna()][cols].reset_index(drop=True)

    # -- view ----------------------------------------------------------------------------------

    def _act(self, action: str) -> None:
        try:
            getattr(self, action)()
            self.status = f"{action}: ok" + (f" (batch `{self.batch_id}`)" if self.batch_id else "")
        except LabError as e:
            self.status = f"{action} failed: {e}"

    @param.depends("status", "batch_id")
    def status_view(self) -> pn.viewable.Viewable:
        """What the last button did (empty before any)."""
        return notice(self.status, "info") if self.status else pn.pane.HTML("")

    def progress_view(self) -> pn.viewable.Viewable:
        """A progress bar and table of the batch's runs."""
        df = self.progress()
        if df.empty:
            return pn.pane.Markdown("*No batch running.*")
        done = int((df["status"] != "running").sum())
        total = max(self.total, len(df))
        state = "running" if self.running else "not running"
        return pn.Column(
            pn.indicators.Progress(value=done, max=total, sizing_mode="stretch_width",
                                   css_classes=["lab-batch-progress"]),
            pn.pane.Markdown(f"batch `{self.batch_id}` ({state}): {done} of {total} runs finished"),
            pn.widgets.Tabulator(df, disabled=True, show_index=False, height=240, sizing_mode="stretch_width"),
        )

    def panel(self) -> pn.viewable.Viewable:
        """The run configuration form, start / cancel / resume buttons, status and progress (refreshed every
        2 s while a batch is known)."""
        self.config.load_choices()
        buttons = []
        for action, kind in (("start", "primary"), ("cancel", "warning"), ("resume", "default")):
            b = pn.widgets.Button(name=action, button_type=kind, width=90, css_classes=[f"lab-{action}"])
            on_click(b, partial(self._act, action))
            buttons.append(b)
        progress = pn.panel(pn.bind(lambda *_: self.progress_view(), self.param.batch_id, self.param.status))
        view = pn.Column(pn.Param(self.config, show_name=False, widgets={
            "tasks": pn.widgets.MultiChoice, "models": {"type": pn.widgets.LiteralInput, "serializer": "json"},
            **{n: {"type": pn.widgets.IntInput, "step": 1}
               for n in ("seeds", "concurrency", "max_steps", "max_tokens")},
            "time_limit": {"type": pn.widgets.FloatInput, "step": 60}}),
            pn.Row(*buttons), self.status_view, progress, sizing_mode="stretch_width", css_classes=["lab-launcher"])

        def refresh() -> None:
            if self.batch_id:
                self.param.trigger("batch_id")

        keep_with(view, pn.state.add_periodic_callback(refresh, period=2000))
        return view

    def __panel__(self) -> pn.viewable.Viewable:
        return self.panel()
