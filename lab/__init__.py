"""Expert Lab: run agents and human experts on expert work, score them, compare them."""

__version__ = "0.1.0"
