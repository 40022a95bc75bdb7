"""What makes two run folders "the same machine" for `bench merge`, read from env.json.

Two shards are measured on the same hardware when their env.json agree on the CPU model, the
logical and physical core counts, the GPUs, the Python version and every library version
bench records (torch, onnx, onnxruntime, openvino, numpy, ...). The host name, memory size,
CPU governor, bench's commit and the command line may differ: identical nodes of one cluster
have different names, and those facts do not change what a cell measures in a way a merged
table could hide (the governor is a warning in every record that it affects).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

#: env.json keys whose values must agree for two shards to count as one machine.
PROFILE_KEYS = ("cpu_model", "logical_cores", "physical_cores", "gpus", "python", "versions")


def profile(env: dict[str, Any]) -> dict[str, Any]:
    """The facts of `env` that define a machine for merging (missing ones are None)."""
    return {key: env.get(key) for key in PROFILE_KEYS}


def profile_key(env: dict[str, Any]) -> str:
    """A text equal for two env.json exactly when their profiles are."""
    return json.dumps(profile(env), sort_keys=True)


def differences(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """The profile keys (`versions.onnxruntime` for a library) on which two env.json differ."""
    found: list[str] = []
    for key in PROFILE_KEYS:
        a, b = first.get(key), second.get(key)
        if key == "versions" and isinstance(a, dict) and isinstance(b, dict):
            found += [f"versions.{n}" for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n)]
        elif a != b:
            found.append(key)
    return found


def label(env: dict[str, Any], hosts: Sequence[str], number: int) -> str:
    """A short name for one machine group: `machine 2: node-a, node-b (EPYC 7B13, 2 cores)`."""
    cores = env.get("logical_cores")
    parts = [str(env.get("cpu_model") or "unknown CPU")]
    if cores is not None:
        parts.append(f"{cores} cores")
    parts += [str(g) for g in env.get("gpus") or []]
    return f"machine {number}: {', '.join(hosts)} ({', '.join(parts)})"
