"""The three error tiers of the house (DESIGN.md rule 6), and the one line that names an error.

Kept free of heavy imports: worker processes import this module without torch.
"""

from __future__ import annotations

import re


class BenchError(Exception):
    """A user mistake: printed as one line, exit status 2, no traceback."""


class BackendUnavailable(Exception):
    """The backend cannot run here (runtime missing, device absent): the cell is `skipped`."""


class PrecisionMismatch(Exception):
    """The runtime would compute in another precision than asked: the cell fails, loudly."""


#: A line that only says where in a runtime's C++ source an error was raised
#: (`Exception from src/inference/src/cpp/core.cpp:84:`, `Check 'false' failed at src/...:151:`).
_LOCATION = re.compile(r"\S+\.(?:c|cc|cpp|cxx|h|hpp)[:(]\d+\)?:?\s*$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TYPE_PREFIX = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Failure)): ?(.*)$")


def _noise(line: str) -> bool:
    """A line that names no problem: a source location, or a header ending in a colon."""
    return not line or bool(_LOCATION.search(line)) or line.endswith(":")


def meaningful_line(text: str | None) -> str:
    """The first line of an error text that says what went wrong, whole (never cut).

    Python errors: their first line. Runtime errors that begin with where they were raised
    (OpenVINO's `Exception from src/...cpp:84:` then `Check ... failed at ...:` and headers
    such as `Summary:`) skip those lines and join the rest of the first paragraph:
    `RuntimeError: Model wasn't fully converted. No conversion rule found for operations:
    Det-17`. The exception type of the first line is kept in front.
    """
    lines = [_ANSI.sub("", line).strip() for line in (text or "").splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        return ""
    prefix, first = "", lines[0]
    typed = _TYPE_PREFIX.match(first)
    if typed:
        prefix, first = f"{typed.group(1)}: ", typed.group(2).strip()
    if first and not _LOCATION.search(first):
        return prefix + first
    found: list[str] = []
    for line in lines[1:]:
        if not line:
            if found:
                break
            continue
        line = line.removeprefix("-- ").strip()
        if not _noise(line):
            found.append(line)
    return prefix + (" ".join(found) if found else first)
