"""Checks on an experiment before its first run starts: every task loads, every loop builds from its options,
every model name resolves, every tool and scorer exists and takes its arguments (tools named by import path
import; data files read and have the mapped columns). Nothing is loaded that a
run would not need (no model weights), and nothing is written.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from lab.errors import LabError
from lab.experiment import Experiment, ExperimentError
from lab.models.base import ChatModel
from lab.models.registry import check_model_name
from lab.models.scripted import ScriptedModel
from lab.pipeline import build_agent, sampling_for
from lab.scoring.base import SCORERS
from lab.tasks.model import Task
from lab.tools.registry import get_tools


def check_experiment(experiment: Experiment, *, models: bool = True) -> list[Task]:
    """Check ``experiment`` as far as possible without running it.

    Args:
        experiment: The experiment.
        models: Check model names (turned off when a custom model loader gives names their meaning).

    Returns:
        The experiment's tasks (loaded once here).

    Raises:
        ExperimentError: The first problem found, naming the experiment (its file) and the field.
    """
    src = experiment.source
    for d in experiment.import_dirs():  # where module:function tools import from
        if str(d) not in sys.path:
            sys.path.append(str(d))

    def fail(field: str, e: Exception | str) -> ExperimentError:
        return ExperimentError(f"{src}: field '{field}': {e}")

    tasks_by_selector: list[list[Task]] = []
    for i, sel in enumerate(experiment.tasks):
        try:
            tasks = sel.load(experiment.base_dir)
        except LabError as e:
            raise fail(f"tasks.{i}", e) from None
        if not tasks:
            raise fail(f"tasks.{i}", f"selects no task from {sel.suite or sel.path}")
        for t in tasks:
            try:
                get_tools(list(t.tools))
            except LabError as e:
                raise fail(f"tasks.{i}", f"task '{t.key}': {e}") from None
        tasks_by_selector.append(tasks)
    if models:
        for i, name in enumerate(experiment.models):
            try:
                check_model_name(name)
            except LabError as e:
                raise fail(f"models.{i}", e) from None
    first = tasks_by_selector[0][0]
    for i, loop in enumerate(experiment.loops):
        def placeholder(name: str, _i: int = i) -> ChatModel:
            if models:
                try:
                    check_model_name(name)
                except LabError as e:
                    raise fail(f"loops.{_i}.options", e) from None
            return ScriptedModel([], name=name)

        try:
            build_agent(loop, ScriptedModel([], name="check"), first, budgets=experiment.budgets,
                        sampling=sampling_for(experiment, 0), model_loader=placeholder)
        except ExperimentError as e:
            if str(e).startswith(f"{src}: "):
                raise
            raise fail(f"loops.{i}", e) from None
        except (LabError, ValueError) as e:
            raise fail(f"loops.{i}.options", e) from None
    for i, ref in enumerate(experiment.scorers):
        try:
            _check_scorer(ref.scorer, ref.args, models=models)
        except LabError as e:
            raise fail(f"scorers.{i}", e) from None
    return [t for tasks in tasks_by_selector for t in tasks]


def _check_scorer(name: str, args: dict[str, Any], *, models: bool) -> None:
    """The scorer exists and takes ``args`` (it is not built: a judge would load its model)."""
    factory = SCORERS.get(name)
    try:
        inspect.signature(factory).bind(**args)
    except TypeError as e:
        raise SCORERS.error(f"scorer {name!r}: bad arguments {sorted(args)}: {e}") from None
    if models and isinstance(args.get("model"), str):
        check_model_name(args["model"])
