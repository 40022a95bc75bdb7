"""`bench run --config FILE`: read a TOML or JSON file of run settings and check every value.

Kept light on purpose (the standard library, `tomli` before Python 3.11, and bench.errors):
the config path loads without torch or any runtime. Each problem is one `BenchError` line
that names what is valid.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from bench.errors import BenchError

#: Settings that never come from a file.
NOT_IN_FILE = ("help", "config", "resume")
#: Settings that are one path, never a list.
PATHS = ("out", "cache_dir")


def _toml_loads(text: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads(text)
    try:
        import tomli
    except ImportError:
        raise BenchError(
            "--config: reading TOML on Python 3.10 needs the tomli package "
            "(pip install tomli), or give a .json file"
        ) from None
    return tomli.loads(text)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def read_config_file(path: str) -> dict[str, Any]:
    """The file's settings: a JSON object (`.json`) or a TOML document (any other name)."""
    file = Path(path)
    if not file.exists():
        raise BenchError(f"--config: no such file {file}")
    if not file.is_file():
        raise BenchError(f"--config: {file} is not a file")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"--config: cannot read {file}: {exc}") from None
    is_json = file.suffix.lower() == ".json"
    try:
        # tomllib's and tomli's TOMLDecodeError are ValueErrors, as is json's error.
        data = json.loads(text) if is_json else _toml_loads(text)
    except ValueError as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise BenchError(f"--config: {file} does not parse: {first}") from None
    if not isinstance(data, dict):
        raise BenchError(
            f"--config: {file} must hold a JSON object of settings "
            f'(e.g. {{"backends": ["ort-cpu"]}}), got {type(data).__name__}'
        )
    return data


def _scalar_text(value: Any) -> str | None:
    """A string, or a number as text; None for anything else (bools included)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _setting(key: str, value: Any, action: argparse.Action) -> Any:
    """The file's `value` checked and converted for the flag behind `action`."""

    def wrong(expected: str) -> BenchError:
        return BenchError(f"--config: {key} must be {expected}, got {_kind(value)}")

    if value is None:
        if action.default is None:
            return None
        raise wrong("set (leave it out for the default)")
    if action.nargs == 0:  # store_true flags
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if isinstance(action.default, list):  # repeatable flags: --dims, --shape, --rtol, ...
        items = value if isinstance(value, list) else [value]
        texts = [_scalar_text(item) for item in items]
        if any(text is None for text in texts):
            raise wrong("a string or a list of strings")
        return texts
    if action.choices:
        if value not in action.choices:
            raise wrong(f"one of {', '.join(map(str, action.choices))}")
        return value
    if action.type in (int, float):
        # A number, not text that reads as one ("3", "nan"), and never a boolean.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong("a whole number" if action.type is int else "a number")
        if not math.isfinite(value):
            raise wrong("a finite number")
        if action.type is int and value != int(value):
            raise wrong("a whole number")
        return action.type(value)
    if action.dest in PATHS:
        if not isinstance(value, str) or not value:
            raise wrong("a folder name (a string)")
        return value
    # Comma-separated text flags (--backends, --opsets, ...): a list or a single value.
    items = value if isinstance(value, list) else [value]
    texts = [_scalar_text(item) for item in items]
    known = [text for text in texts if text is not None]
    if len(known) != len(texts):
        raise wrong("a string, a number or a list of them")
    return ",".join(known)


def _tolerances(value: Any) -> dict[str, dict[str, float]]:
    usage = "a table of [tolerances.MODEL] tables with rtol and atol"
    if not isinstance(value, dict):
        raise BenchError(f"--config: tolerances must be {usage}, got {_kind(value)}")
    for model, table in value.items():
        if not isinstance(table, dict):
            raise BenchError(
                f"--config: tolerances.{model} must be a table with rtol and atol, "
                f"got {_kind(table)}"
            )
        for name, number in table.items():
            if name in ("rtol", "atol") and (
                isinstance(number, bool)
                or not isinstance(number, int | float)
                or not math.isfinite(number)
                or number < 0
            ):
                raise BenchError(
                    f"--config: tolerances.{model}.{name} must be a number >= 0, "
                    f"got {_kind(number)}"
                )
    return value


def run_defaults(
    data: dict[str, Any], run_parser: argparse.ArgumentParser
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """The file's settings as defaults for `run_parser` (flag name with underscores or
    dashes -> value), and its `[tolerances.MODEL]` tables; raises `BenchError`."""
    flags: dict[str, argparse.Action] = getattr(run_parser, "flags", {})
    actions = {dest: a for dest, a in flags.items() if dest not in NOT_IN_FILE}
    settings = dict(data)
    tolerances = _tolerances(settings.pop("tolerances", {}))
    defaults = {}
    for key, value in settings.items():
        dest = key.replace("-", "_")
        if dest not in actions:
            raise BenchError(
                f"--config: unknown setting {key!r}; "
                f"valid: {', '.join(sorted([*actions, 'tolerances']))}"
            )
        defaults[dest] = _setting(key, value, actions[dest])
    return defaults, tolerances
