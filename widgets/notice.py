"""The one way views say something plainly instead of raising: an alert box."""

from __future__ import annotations

import panel as pn


def notice(text: str, kind: str = "warning") -> pn.pane.Alert:
    """A short message in place of a view that has nothing (valid) to show.

    Args:
        text: What is wrong or missing, and what to do about it (Markdown).
        kind: ``info``, ``warning`` or ``danger``.

    Returns:
        An alert pane; its CSS class ``lab-notice`` lets browser tests find it.
    """
    return pn.pane.Alert(text, alert_type=kind, css_classes=["lab-notice"], sizing_mode="stretch_width")
