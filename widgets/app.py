"""The dashboard as a ``panel serve`` app (what ``lab serve dashboard`` serves); reads ``$LAB_STORE``.

Served with sign-in (``$LAB_SIGN_IN``), the session's user is the signed ``user`` cookie's and their role comes
from the users file ``$LAB_USERS``."""

import os
from pathlib import Path

import panel as pn

from lab.auth import Access
from widgets import dashboard
from widgets.auth_module import session_user

pn.extension("tabulator", "vega", inline=True)
access = Access(session_user(), Path(os.environ["LAB_USERS"])) if os.environ.get("LAB_SIGN_IN") else Access()
dashboard(access=access).servable(title="Expert Lab")
