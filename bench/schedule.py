"""Scheduling: load cells into workers, then run their trials interleaved in a seeded random
order (randomized multiple interleaved trials), so every cell samples the whole run.

Memory: every cell of a group stays loaded (its session in its backend's worker) until its
last trial. Cells are loaded in grid order until the machine's available memory falls below
`MEMORY_FLOOR` of its total (or all are loaded); that group's trials are interleaved and run,
its sessions closed, and the next group loads. A run whose cells fit in memory is one group;
each record names its `trial_group`, and trials interleave only within a group.

Contention: a trial during which other processes held more than 20% of all cores is retried
once at a random later point of the group's schedule (at most `trials` retries per cell). A
retried trial stays in the record (`used: false`); a contended trial that could not be
replaced is kept in the statistics and the cell carries a visible caveat.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.allocator import DEFAULT_POLICY
from bench.jobs import (
    Failure,
    LoadJob,
    LoadOutcome,
    ProfileOutcome,
    TrialJob,
    TrialOutcome,
    UnloadJob,
    UnloadOutcome,
)
from bench.judge import Trial, is_contended
from bench.pool import Worker, WorkerLost
from bench.profilepass import profile_cell
from bench.timing import TimingPolicy

MEMORY_FLOOR = 0.15


@dataclass
class Planned:
    """A cell ready to measure: its load job and which worker hosts it."""

    cell_id: str
    backend: str
    job: LoadJob
    fresh_worker: bool = False  # a worker of its own (torch.compile caches must not leak)
    target: str | None = None  # --target KEY=VALUE: the Ray nodes that may measure it
    profile_runs: int = 0  # --profile: inferences of the profiled pass after the trials
    trial_share: int = 1  # trials per round, each this much shorter (the control workload)


@dataclass
class Measured:
    """Everything measured for one cell; `failure` set when it could not finish."""

    planned: Planned
    group: int
    load: LoadOutcome | None = None
    inference: list[Trial] = field(default_factory=list)
    end_to_end: list[Trial] = field(default_factory=list)
    throughput: list[Trial] = field(default_factory=list)
    unload: UnloadOutcome | None = None
    failure: Failure | None = None
    reloads: int = 0
    host: str | None = None  # the machine that measured it, when not this one (bench.rayexec)
    node_id: str | None = None  # its Ray node id
    profile: ProfileOutcome | Failure | None = None


def rmit_order(cell_ids: list[str], trials: int, rng: random.Random) -> list[str]:
    """`trials` rounds; each round runs every cell once, in its own random order."""
    order: list[str] = []
    for _ in range(trials):
        round_ = list(cell_ids)
        rng.shuffle(round_)
        order.extend(round_)
    return order


def available_memory_fraction() -> float | None:
    """MemAvailable / MemTotal from /proc/meminfo (Linux), else None."""
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        return int(info["MemAvailable"].split()[0]) / int(info["MemTotal"].split()[0])
    except (OSError, KeyError, ValueError):
        return None


class Scheduler:
    """Owns the workers of a run and measures planned cells, calling `on_done` per cell."""

    def __init__(
        self,
        log_dir: Path,
        policy: TimingPolicy,
        seed: int,
        cell_timeout: float,
        end_to_end: bool,
        cpus: str | None = None,
        progress: Callable[[str], None] = print,
        allocator: str = DEFAULT_POLICY,
    ) -> None:
        self.log_dir = log_dir
        self.policy = policy
        self.rng = random.Random(seed)
        self.cell_timeout = cell_timeout
        self.end_to_end = end_to_end
        self.cpus = cpus
        self.allocator = allocator
        self.progress = progress
        self._workers: dict[str, Worker] = {}
        self._count = 0
        self.stopped = False

    # -- workers --------------------------------------------------------------------------

    def _key(self, planned: Planned) -> str:
        return planned.cell_id if planned.fresh_worker else planned.backend

    def worker(self, key: str, label: str) -> Worker:
        """The live worker for `key`, starting one when there is none."""
        found = self._workers.get(key)
        if found is not None and found.alive():
            return found
        self._count += 1
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[:60]
        worker = Worker(
            self.log_dir / f"worker-{self._count:03d}-{safe}.log", self.cpus, self.allocator
        )
        self._workers[key] = worker
        return worker

    def forget(self, key: str) -> None:
        worker = self._workers.pop(key, None)
        if worker is not None:
            worker.kill()

    def close(self) -> None:
        for worker in self._workers.values():
            worker.ask_to_exit()
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()

    def kill(self) -> None:
        """Kill every worker now, jobs in flight included (a second stop signal)."""
        for worker in self._workers.values():
            worker.kill()
        self._workers.clear()

    # -- measuring ----------------------------------------------------------------------------

    def measure(
        self,
        cells: list[Planned],
        on_done: Callable[[Measured], None],
        should_stop: Callable[[], bool],
        on_trial: Callable[[str, int, TrialOutcome], None] = lambda *_: None,
    ) -> None:
        """Load and measure `cells` group by group; `on_done` gets each finished cell."""
        pending = list(cells)
        group = 0
        while pending and not should_stop():
            group += 1
            loaded: dict[str, Measured] = {}
            while pending and not should_stop():
                planned = pending.pop(0)
                measured = Measured(planned, group)
                self._load(measured, len(cells) - len(pending), len(cells))
                if measured.failure:
                    on_done(measured)
                    continue
                loaded[planned.cell_id] = measured
                free = available_memory_fraction()
                if free is not None and free < MEMORY_FLOOR and pending:
                    self.progress(f"  memory: {free:.0%} available; measuring "
                                  f"{len(loaded)} loaded cells before loading more")  # fmt: skip
                    break
            self._run_trials(loaded, on_done, should_stop, on_trial)
        self.stopped = bool(pending) or should_stop()

    def _load(self, measured: Measured, index: int, total: int) -> bool:
        planned = measured.planned
        reloading = measured.load is not None
        try:
            reply = self.worker(self._key(planned), planned.backend).execute(
                planned.job, self.cell_timeout
            )
        except WorkerLost as lost:
            self.forget(self._key(planned))
            measured.failure = Failure(lost.status, f"loading: {lost}")
            return False
        if isinstance(reply, Failure):
            measured.failure = reply
        elif reloading:
            measured.reloads += 1
        else:
            assert isinstance(reply, LoadOutcome)
            measured.load = reply
            self.progress(f"[{index}/{total}] loaded {planned.cell_id} ({reply.load_s:.2f} s)")
        return measured.failure is None

    def _run_trials(
        self,
        loaded: dict[str, Measured],
        on_done: Callable[[Measured], None],
        should_stop: Callable[[], bool],
        on_trial: Callable[[str, int, TrialOutcome], None],
    ) -> None:
        slots = [c for c, m in loaded.items() for _ in range(m.planned.trial_share)]
        queue = rmit_order(slots, self.policy.trials, self.rng)
        retries = {c: self.policy.trials * m.planned.trial_share for c, m in loaded.items()}
        stale: set[str] = set()  # cells whose worker died: reload before their next trial
        position = 0
        total = len(queue)
        while queue and not should_stop():
            cell_id = queue.pop(0)
            position += 1
            measured = loaded[cell_id]
            if measured.failure:
                continue
            if cell_id in stale:
                stale.discard(cell_id)
                if not self._load(measured, position, total):
                    self._finish(measured, on_done)
                    continue
            if position % max(len(slots), 1) == 1 or len(slots) == 1:
                self.progress(f"  trials {position}-{min(position + len(slots) - 1, total)} "
                              f"of {total}")  # fmt: skip
            key = self._key(measured.planned)
            job = TrialJob(cell_id, trial_policy(self.policy, measured.planned.trial_share),
                           self.end_to_end)  # fmt: skip
            try:
                reply = self.worker(key, measured.planned.backend).execute(job, self.cell_timeout)
            except WorkerLost as lost:
                self.forget(key)
                measured.failure = Failure(lost.status, f"trial {position}: {lost}")
                stale |= {c for c, m in loaded.items() if self._key(m.planned) == key}
                self._finish(measured, on_done)
                continue
            if isinstance(reply, Failure):
                measured.failure = reply
                self._finish(measured, on_done)
                continue
            assert isinstance(reply, TrialOutcome)
            on_trial(cell_id, position, reply)
            if self._record_trial(measured, reply, position) and retries[cell_id] > 0:
                retries[cell_id] -= 1
                queue.insert(self.rng.randint(0, len(queue)), cell_id)
                total += 1
            if cell_id not in queue:
                self._finish(measured, on_done)
        if should_stop():
            for measured in loaded.values():  # cells left unfinished: closed, not recorded
                if measured.failure is None and measured.unload is None:
                    self._unload(measured)

    @staticmethod
    def _record_trial(measured: Measured, reply: TrialOutcome, index: int) -> bool:
        """Append the trial; True when it was contended (and so may be retried)."""
        contended = False
        for name in ("inference", "end_to_end", "throughput"):
            measurement = getattr(reply, name)
            if measurement is not None:
                getattr(measured, name).append(Trial(index, measurement))
                contended |= is_contended(measurement)
        return contended

    def _unload(self, measured: Measured) -> None:
        key = self._key(measured.planned)
        worker = self._workers.get(key)
        if worker is None or not worker.alive():
            return
        try:
            reply = worker.execute(UnloadJob(measured.planned.cell_id), self.cell_timeout)
        except WorkerLost:
            self.forget(key)
            return
        if isinstance(reply, UnloadOutcome):
            measured.unload = reply
        if measured.planned.fresh_worker:
            self._workers.pop(key).close()

    def _finish(self, measured: Measured, on_done: Callable[[Measured], None]) -> None:
        if measured.failure is None:
            self._unload(measured)
            if measured.planned.profile_runs:
                measured.profile = profile_cell(measured.planned, self.worker, self.forget,
                                                self.cell_timeout, self.progress)  # fmt: skip
        mark_replaced(measured, self.policy.trials * measured.planned.trial_share)
        on_done(measured)


def trial_policy(policy: TimingPolicy, share: int) -> TimingPolicy:
    """The policy of one of `share` trials a round: the same minimum of calls, 1/share of the
    time."""
    if share <= 1:
        return policy
    return replace(policy, min_time=policy.min_time / share,
                   warmup_time=policy.warmup_time / share)  # fmt: skip


def mark_replaced(measured: Measured, planned_trials: int) -> None:
    """Each retry replaces one contended trial: the earliest ones are marked `used=False`."""
    for trials in (measured.inference, measured.end_to_end, measured.throughput):
        surplus = len(trials) - planned_trials
        contended = [i for i, t in enumerate(trials) if t.contended][: max(surplus, 0)]
        for i in contended:
            trials[i] = Trial(trials[i].index, trials[i].measurement, used=False)
