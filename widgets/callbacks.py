"""Callbacks of views: button clicks, and periodic refreshes that live as long as the view they refresh."""

from __future__ import annotations

import weakref
from collections.abc import Callable

import panel as pn
from panel.io.callbacks import PeriodicCallback

_KEPT: weakref.WeakKeyDictionary[pn.viewable.Viewable, list[PeriodicCallback]] = weakref.WeakKeyDictionary()


def on_click(button: pn.widgets.Button, action: Callable[[], object]) -> None:
    """Call ``action`` (bind its arguments with :func:`functools.partial`) on each click of ``button``; what it
    returns is ignored."""

    def clicked(_: object) -> None:
        action()

    button.on_click(clicked)


def keep_with(view: pn.viewable.Viewable, callback: PeriodicCallback) -> None:
    """Keep ``callback`` (a periodic callback refreshing ``view``) alive as long as ``view`` is."""
    _KEPT.setdefault(view, []).append(callback)
