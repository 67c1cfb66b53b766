"""Runnable examples: `make demo`."""
