"""Tasks: the task model, loaders for the formats researchers use, the suite registry, and scoring glue.

>>> from lab.tasks import load_suite, list_suites
>>> tasks = load_suite("chem-tools")
"""

from lab.tasks.errors import TaskError, TaskScoringError, TaskSpecError
from lab.tasks.medqa import answer_aliases, load_medqa_open
from lab.tasks.metr import IntermediateScore, MetrSession, load_metr_family, manifest_schema
from lab.tasks.model import (
    CopySpec,
    Limits,
    MetrRef,
    Resources,
    ScorerRef,
    Scoring,
    ScriptScoring,
    Task,
    TaskSandbox,
)
from lab.tasks.registry import BUNDLED, Suite, get_task, list_suites, load_suite, load_tasks
from lab.tasks.scoring import score_task
from lab.tasks.super_jsonl import load_super_jsonl
from lab.tasks.validate import check_task, gpu_count, image_names, unavailable_reason
from lab.tasks.yaml_loader import load_task_file

__all__ = [
    "BUNDLED", "CopySpec", "IntermediateScore", "Limits", "MetrRef", "MetrSession", "Resources", "ScorerRef",
    "Scoring", "ScriptScoring", "Suite", "Task", "TaskSandbox", "TaskError", "TaskScoringError", "TaskSpecError",
    "answer_aliases", "check_task", "get_task", "gpu_count", "image_names", "list_suites", "load_medqa_open",
    "load_metr_family", "load_suite", "load_super_jsonl", "load_task_file", "load_tasks", "manifest_schema",
    "score_task", "unavailable_reason",
]
