"""`--executor`, `--ray-address` and `--target` checked before anything runs (rule 6): each
mistake is one line naming the valid choices. Imports no Ray (find_spec only)."""

from __future__ import annotations

import importlib.util
import re

from bench.errors import BenchError

RAY_INSTALL = "pip install -e '.[ray]' (or: pip install 'ray>=2.9')"
#: A target's key and value: what Ray accepts in a node label, and safe in a cell id.
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def ray_installed() -> bool:
    """Whether `import ray` would find a package (without importing it)."""
    return importlib.util.find_spec("ray") is not None


def parse_target(item: str) -> str:
    """`KEY=VALUE` as given, checked; `BenchError` naming the expected form."""
    key, eq, value = item.partition("=")
    if not eq or not _PART.fullmatch(key) or not _PART.fullmatch(value):
        raise BenchError(f"--target {item!r}: expected KEY=VALUE, a Ray node label (letters, "
                         "digits, '.', '_' or '-'; e.g. --target accel=h200)")  # fmt: skip
    return f"{key}={value}"


def check_executor(executor: str, address: str | None, targets: list[str]) -> tuple[str, ...]:
    """The run's targets; refuses Ray settings without `--executor ray`, and `--executor ray`
    without the ray package."""
    parsed = tuple(dict.fromkeys(parse_target(t) for t in targets))
    if executor != "ray":
        given = [flag for flag, v in (("--ray-address", address), ("--target", parsed)) if v]
        if given:
            verb = "go" if len(given) > 1 else "goes"
            raise BenchError(f"{' and '.join(given)} {verb} with --executor ray (valid "
                             "executors: local, ray)")  # fmt: skip
        return parsed
    if address is not None and not address.strip():
        raise BenchError("--ray-address: empty; give auto, HOST:PORT or ray://HOST:PORT")
    if not ray_installed():
        raise BenchError(
            f"--executor ray needs the ray package, which is not installed: {RAY_INSTALL}"
        )
    return parsed


def target_label(target: str) -> tuple[str, str]:
    """`KEY=VALUE` as (key, value)."""
    key, _, value = target.partition("=")
    return key, value
