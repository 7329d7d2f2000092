"""One live owner per combination: a lease in the trace store, renewed by a heartbeat while the run executes.

A runner takes a combination's lease before it runs (or resumes) it; a second runner on the same experiment
finds the lease held and skips the combination, or waits for it. A lease whose holder died (its expiry passed,
or its process is gone on this host) is taken over, and the run it left is resumed.

```python
lease = Lease(store, "exp:demo/1a2b3c")
if lease.take():          # held, renewed every ttl/3 s, until released
    try: ...
    finally: lease.release()
```
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable

from lab.traces.protocol import Store
from lab.traces.store import current_owner

LEASE_TTL_S = float(os.environ.get("LAB_LEASE_TTL", "60"))
"""Seconds a lease lasts without a heartbeat (``$LAB_LEASE_TTL``): how long a dead holder on another host
blocks its combination."""


class Lease:
    """A lease on one key in a store, held by this process.

    Args:
        store: The trace store (local, or a cluster worker's :class:`~lab.executors.remote_store.RemoteStore`).
        key: What is leased (a batch's combination).
        ttl: Seconds it lasts without renewal.

    Attributes:
        holder: After a failed :meth:`take`, the live holder's ``host:pid:start``.
        on_lost: Called (from the heartbeat thread) if the lease is lost while held.
    """

    def __init__(self, store: Store, key: str, *, ttl: float | None = None) -> None:
        self.store = store
        self.key = key
        self.ttl = ttl or LEASE_TTL_S
        self.token = uuid.uuid4().hex
        self.owner = current_owner()
        self.holder: str | None = None
        self.on_lost: Callable[[], None] | None = None
        self._held = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def take(self) -> bool:
        """Take the lease (and start its heartbeat); ``False`` when a live holder has it."""
        self.holder = self.store.take_lease(self.key, self.owner, self.token, self.ttl)
        if self.holder is not None:
            return False
        self._held = True
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="lab-lease", daemon=True)
        self._beat.start()
        return True

    def wait(self, stopped: Callable[[], bool], poll: float = 0.5) -> bool:
        """Take the lease once its holder lets go (or dies); ``False`` when ``stopped()`` turns true first."""
        while not self.take():
            if stopped():
                return False
            self._stop.wait(poll)
        return True

    def release(self) -> None:
        """Stop the heartbeat and give the lease up."""
        if not self._held:
            return
        self._held = False
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        self.store.release_lease(self.key, self.token)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                kept = self.store.renew_lease(self.key, self.token, self.ttl)
            except Exception:  # noqa: BLE001 - a store hiccup: try again at the next beat
                continue
            if not kept:
                if self.on_lost is not None:
                    self.on_lost()
                return
