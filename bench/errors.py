"""The three error tiers of the house (DESIGN.md rule 6).

Kept free of heavy imports: worker processes import this module without torch.
"""


class BenchError(Exception):
    """A user mistake: printed as one line, exit status 2, no traceback."""


class BackendUnavailable(Exception):
    """The backend cannot run here (runtime missing, device absent): the cell is `skipped`."""


class PrecisionMismatch(Exception):
    """The runtime would compute in another precision than asked: the cell fails, loudly."""
