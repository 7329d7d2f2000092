"""Notebook widgets and Panel dashboards, built on lab's public API only."""
