"""Importers of traces written by other harnesses (SUPER, METR run tables)."""
