"""Survive a folder named `bench` in the working directory (for example the folder holding a
clone of this repository): Python imports it as a namespace package ahead of the installed
`bench`. Entry points (`python -m bench`, the worker) call `leave_shadowing_folder()` first."""

from __future__ import annotations

import os
import sys


def leave_shadowing_folder() -> None:
    """Drop the working directory from the path and forget `bench` if it was imported as a
    namespace package, so the next import finds the installed one. No-op otherwise."""
    package = sys.modules.get("bench")
    if package is None or getattr(package, "__file__", None) is not None:
        return
    cwd = os.getcwd()
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != cwd]
    for name in [m for m in sys.modules if m == "bench" or m.startswith("bench.")]:
        del sys.modules[name]
