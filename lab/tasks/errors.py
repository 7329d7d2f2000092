"""Errors raised while loading, validating or scoring tasks; each names the task or file at fault."""

from __future__ import annotations

from lab.errors import LabError


class TaskError(LabError):
    """A task could not be loaded, validated, prepared or scored."""


class TaskSpecError(TaskError):
    """A task file is malformed: the message names the file, the field and the line."""


class TaskScoringError(TaskError):
    """Scoring a task failed (the scorer raised, hung, or returned nothing usable)."""


class TaskPathError(TaskSpecError):
    """A task file names a host path outside its own directory (and outside any allowed directory)."""
