"""How a worker process allocates memory while it measures.

glibc's malloc adapts as a process runs: its mmap threshold rises after a large block is
freed, and it gives the top of the heap back to the kernel (trims it) once more than twice
that threshold is free. A cell whose inference allocates and frees a few large tensors per
call (PyTorch eager does: simple_cnn at batch 32 frees about 4.5 MB a call) then either reuses
the same pages every call or faults them in again every call, depending on the heap's layout
at the time; the layout depends on everything the process did before. Measured on a 2-core
AMD EPYC VM: about 800 minor page faults per call and 5-7 ms a call in one state, none and
2.3-3.5 ms in the other, and runs of bench switched between the two for minutes.

The `steady` policy (the default) fixes both thresholds in every worker before anything is
loaded, so a cell reuses its pages in every trial whatever ran before it. `system` leaves
glibc's adaptive behaviour, for a user who wants the process as their own service runs it.
Only glibc has these knobs; elsewhere the policy is recorded as not applied.
"""

from __future__ import annotations

import ctypes
from dataclasses import asdict, dataclass

POLICIES = ("steady", "system")
DEFAULT_POLICY = "steady"

#: mallopt parameters (glibc's <malloc.h>).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Never trim the heap; serve blocks up to 1 GiB from the heap (reused, not faulted in again).
STEADY_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: the largest it can
STEADY_MMAP_THRESHOLD = 1 << 30


@dataclass(frozen=True)
class AllocatorState:
    """What a process's allocator policy is and whether it took effect."""

    policy: str
    applied: bool
    detail: str

    def to_record(self) -> dict:
        return asdict(self)

    def setting(self) -> str:
        """The one-line form a record's `settings` carry."""
        return f"{self.policy} ({self.detail})" if self.policy == "steady" else self.policy


def _mallopt():
    """glibc's mallopt, or None where the C library has none (musl, macOS, Windows)."""
    try:
        return ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None


def check_policy(policy: str) -> str:
    """`policy` when it is one of POLICIES, else a ValueError naming them."""
    if policy not in POLICIES:
        raise ValueError(f"allocator policy {policy!r}; valid: {', '.join(POLICIES)}")
    return policy


def describe(policy: str) -> AllocatorState:
    """What `apply(policy)` would do in a process of this machine (nothing is changed)."""
    check_policy(policy)
    if policy == "system":
        return AllocatorState(policy, False, "the C library's own adaptive behaviour")
    if _mallopt() is None:
        return AllocatorState(policy, False, "this C library has no mallopt; left as it is")
    return AllocatorState(policy, True, _steady_detail())


def _steady_detail() -> str:
    return (
        f"glibc M_TRIM_THRESHOLD={STEADY_TRIM_THRESHOLD}, M_MMAP_THRESHOLD={STEADY_MMAP_THRESHOLD}"
    )


def apply(policy: str) -> AllocatorState:
    """Set this process's allocator policy (call it before the runtimes allocate much)."""
    state = describe(policy)
    if not state.applied:
        return state
    mallopt = _mallopt()
    assert mallopt is not None  # describe() found it
    trimmed = mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(STEADY_TRIM_THRESHOLD))
    mapped = mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(STEADY_MMAP_THRESHOLD))
    if trimmed != 1 or mapped != 1:
        return AllocatorState(policy, False, f"mallopt refused (trim {trimmed}, mmap {mapped})")
    return state
