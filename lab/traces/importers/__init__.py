"""Importers of traces written by other harnesses (SUPER, METR run tables, Inspect AI eval logs)."""

from lab.traces.importers.inspect import import_inspect
from lab.traces.importers.metr import import_metr
from lab.traces.importers.super import import_super

__all__ = ["import_inspect", "import_metr", "import_super"]
