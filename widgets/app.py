"""The dashboard as a ``panel serve`` app (what ``lab serve dashboard`` serves); reads ``$LAB_STORE``."""

import panel as pn

from widgets import dashboard

pn.extension("tabulator", "vega", inline=True)
dashboard().servable(title="Expert Lab")
