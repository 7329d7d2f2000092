"""Notebook widgets and Panel dashboards, built on lab's public API only.

>>> from widgets import dashboard
>>> dashboard().servable()          # in a notebook, or under ``lab serve``
"""

from widgets.dashboard import Dashboard, dashboard
from widgets.grading import GradingWidget
from widgets.human_vs_ai import HumanVsAIDashboard
from widgets.launcher import RunConfig, RunLauncher
from widgets.runs_table import RunsTable
from widgets.sample import sample_study
from widgets.trace_view import TraceDiff, TraceViewer

__all__ = [
    "Dashboard", "GradingWidget", "HumanVsAIDashboard", "RunConfig", "RunLauncher", "RunsTable", "TraceDiff",
    "TraceViewer", "dashboard", "sample_study",
]
