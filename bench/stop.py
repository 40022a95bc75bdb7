"""How bench stops on a signal: after the job in flight, now, or at once (bench.runner)."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


class StopRequest:
    """First SIGINT, SIGTERM or SIGHUP: finish the job in flight, then stop and write the
    reports; a job still in flight after STOP_GRACE_S seconds is abandoned. A second signal:
    abandon the job in flight now (KeyboardInterrupt), still write the reports. A third: exit
    at once, without reports (the records on disk are whole; workers die with bench)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    STOP_GRACE_S = 30

    def __init__(self) -> None:
        self.requested = False
        self.signal: int | None = None
        self.count = 0
        self.resume_hint = ""
        self.writing_reports = False

    def __enter__(self) -> StopRequest:
        self._previous = {s: signal.getsignal(s) for s in (*self.SIGNALS, signal.SIGALRM)}
        for s in self.SIGNALS:
            signal.signal(s, self._handle)
        signal.signal(signal.SIGALRM, self._grace_over)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.alarm(0)
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def measured(self) -> None:
        """Measuring ended: the grace period for a job in flight no longer applies, and the
        next signal lets the reports be written (the one after exits without them)."""
        signal.alarm(0)
        self.writing_reports = True

    @property
    def exit_status(self) -> int:
        """128 + the first signal's number: 130 SIGINT, 143 SIGTERM, 129 SIGHUP."""
        return 128 + (self.signal or signal.SIGINT)

    def _grace_over(self, signum: int, frame: FrameType | None) -> None:
        if self.count == 1:
            print(f"\nthe job in flight did not end within {self.STOP_GRACE_S}s: stopping now",
                  file=sys.stderr)  # fmt: skip
            self.count = 2
            raise KeyboardInterrupt

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        name = signal.Signals(signum).name
        if self.writing_reports and self.count < 3:  # no job in flight to abandon any more
            self.count = 2
            self.requested, self.signal = True, self.signal or signum
            print(f"\n{name}: writing the reports first ({name} again to exit without them)",
                  file=sys.stderr)  # fmt: skip
            return
        if self.count == 1:
            self.requested, self.signal = True, signum
            signal.alarm(self.STOP_GRACE_S)
            print(f"\n{name}: stopping after the job in flight ({name} again to stop now)",
                  file=sys.stderr)  # fmt: skip
            return
        if self.count == 2:
            signal.alarm(0)
            raise KeyboardInterrupt
        print(f"\n{name}: exiting now, reports not written{self.resume_hint}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(self.exit_status)
