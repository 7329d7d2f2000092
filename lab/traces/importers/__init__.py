"""Importers of traces written by other harnesses (SUPER, METR run tables)."""

from lab.traces.importers.metr import import_metr
from lab.traces.importers.super import import_super

__all__ = ["import_metr", "import_super"]
