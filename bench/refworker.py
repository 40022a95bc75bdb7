"""The run's reference worker, seen from the parent: a PyTorch model's reference outputs,
its exports and its float64 oracle (or an ONNX file's reference outputs), each a job under
`--cell-timeout` in one worker that builds each module once. A crash or a timeout there costs
the cells that needed that job; the next job starts a fresh worker."""

from __future__ import annotations

from bench.artifacts import ReferenceFailed
from bench.jobs import PREPARE_ALLOWANCE_S, Failure, Job, ReferenceJob, ReferenceOutcome, Reply
from bench.pool import WorkerLost
from bench.prepjobs import PrepJob, PrepReply
from bench.schedule import Scheduler

KEY = "reference"


class ReferenceWorker:
    """Sends reference, export and oracle jobs to the scheduler's `reference` worker."""

    def __init__(self, scheduler: Scheduler, cell_timeout: float) -> None:
        self.scheduler = scheduler
        self.cell_timeout = cell_timeout

    def _execute(self, job: Job, timeout: float) -> Reply:
        try:
            return self.scheduler.worker(KEY, KEY).execute(job, timeout)
        except WorkerLost:
            self.scheduler.forget(KEY)
            raise

    def reference(self, job: ReferenceJob) -> ReferenceOutcome:
        """Reference outputs; raises `ReferenceFailed` (status `crashed`, `timeout`, `failed`).
        A job without inputs imports torch and builds the module: it gets an allowance."""
        timeout = self.cell_timeout + (PREPARE_ALLOWANCE_S if not job.inputs else 0)
        try:
            reply = self._execute(job, timeout)
        except WorkerLost as lost:
            raise ReferenceFailed(str(lost), lost.status) from None
        if isinstance(reply, Failure):
            raise ReferenceFailed(reply.reason)
        assert isinstance(reply, ReferenceOutcome)
        return reply

    def prep(self, job: PrepJob) -> PrepReply | str:
        """An export or a float64 oracle; a crash, a timeout or an error is the line that
        says so."""
        try:
            reply = self._execute(job, self.cell_timeout + PREPARE_ALLOWANCE_S)
        except WorkerLost as lost:
            return f"{lost.status} in the reference worker: {lost.headline}"  # tail: in logs/
        if isinstance(reply, Failure):
            return reply.reason
        return reply  # type: ignore[return-value]
