"""The trace store's errors."""

from __future__ import annotations

from lab.errors import LabError


class StoreError(LabError):
    """The trace store cannot be opened or written."""


class TraceImportError(StoreError):
    """A file being imported is malformed; the message names the file and line. Nothing was written."""
