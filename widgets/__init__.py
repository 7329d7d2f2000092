"""Notebook widgets and Panel dashboards, built on lab's public API only.

>>> from widgets import dashboard
>>> dashboard().servable()          # in a notebook, or under ``lab serve``
"""

import panel as pn

# Everything renders offline: Bokeh's and Panel's JavaScript and CSS go inline into the notebook (or page)
# instead of being fetched from a CDN. A later ``pn.extension(...)`` keeps this unless it passes inline=False.
# (Panel's config maps the assignment to its `_inline` parameter in __setattr__; its `inline` property has no
# setter, so the type checker takes it for read-only)
pn.config.inline = True  # type: ignore[misc]

from widgets.dashboard import Dashboard, dashboard  # noqa: E402
from widgets.grading import GradingWidget  # noqa: E402
from widgets.human_vs_ai import HumanVsAIDashboard  # noqa: E402
from widgets.launcher import RunConfig, RunLauncher  # noqa: E402
from widgets.runs_table import RunsTable  # noqa: E402
from widgets.sample import sample_study  # noqa: E402
from widgets.trace_view import TraceDiff, TraceViewer  # noqa: E402

__all__ = [
    "Dashboard", "GradingWidget", "HumanVsAIDashboard", "RunConfig", "RunLauncher", "RunsTable", "TraceDiff",
    "TraceViewer", "dashboard", "sample_study",
]
