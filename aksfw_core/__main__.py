"""`python -m aksfw_core COMMAND`, and the `aksfw` entry point of pyproject.toml: the
command line of `aksfw_core.cli` (`aksfw_core.cli.program.main`)."""

from __future__ import annotations

import sys

from aksfw_core.cli.program import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
