"""Option values that start with "-" (`bench run --shard -1/2`): argparse reads such a token as
an option and says "expected one argument"; joined to its option (`--shard=-1/2`), the value
reaches the option's own check, which names the problem in one line."""

from __future__ import annotations

from collections.abc import Sequence

#: The options whose value may start with "-".
DASH_VALUE_OPTIONS = frozenset({"--shard"})


def join_dash_values(argv: Sequence[str]) -> list[str]:
    """`argv` with `OPTION -VALUE` written `OPTION=-VALUE` for `DASH_VALUE_OPTIONS` (a value
    starting with "--" is left alone: that is the next option, the value was forgotten)."""
    out: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            out += [token, *tokens]
            break
        if token in DASH_VALUE_OPTIONS:
            value = next(tokens, None)
            if value is not None and value.startswith("-") and not value.startswith("--"):
                out.append(f"{token}={value}")
                continue
            out += [token] if value is None else [token, value]
            continue
        out.append(token)
    return out
