"""The ``lab`` command line."""
