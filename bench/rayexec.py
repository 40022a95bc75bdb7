"""`--executor ray`: each cell is one Ray task that holds a whole node (all its CPUs, and its
GPUs for a GPU backend), so no two measurements share a machine. The driver (this process)
keeps everything else: exports, references, parity, the run folder and its lock; records are
appended as tasks finish. A task measures its cell with the control workload beside it
(bench.raytask). A task that dies (a killed worker, a lost node) costs its cell only: the
cell is recorded `crashed` with the reason, and `--resume --retry-failed` measures it again.

Nodes are chosen by the driver: `--target KEY=VALUE` takes the alive nodes whose Ray label
KEY is VALUE (`ray start --labels`), and every cell runs once per target; without a target,
any node with CPUs. Each task is pinned to one free node (node affinity, not soft)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import RunConfig
from bench.errors import BenchError, meaningful_line
from bench.jobs import Failure, TrialOutcome
from bench.judge import Trial
from bench.raytask import NodeResult, NodeSettings, model_files, ray_task
from bench.schedule import Measured, Planned
from bench.targets import target_label

#: Ray's own switch: a local instance on the loopback address (get_node_ip_address).
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@dataclass(frozen=True)
class Node:
    """A Ray node able to measure: its id, host, CPUs and GPUs to reserve, labels."""

    node_id: str
    host: str
    cpus: float
    gpus: float
    labels: dict[str, str]

    def matches(self, target: str | None) -> bool:
        if target is None:
            return True
        key, value = target_label(target)
        return self.labels.get(key) == value


def connect(address: str | None) -> Any:
    """The imported `ray`, connected: to `address`, or to a new local instance bound to
    127.0.0.1 only (no other address of this machine listens)."""
    if address is None:
        os.environ.setdefault(LOOPBACK_ENV, "0")  # read when ray is imported
    import ray

    try:
        if address is None:
            ray.init(_node_ip_address="127.0.0.1", include_dashboard=False,
                     log_to_driver=False, logging_level=logging.WARNING)  # fmt: skip
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except Exception as exc:  # ConnectionError, ValueError, RuntimeError, ...
        where = f"--ray-address {address}" if address else "a local Ray instance"
        raise BenchError(f"{where}: cannot connect ({type(exc).__name__}: "
                         f"{meaningful_line(str(exc))})") from None  # fmt: skip
    return ray


def alive_nodes(ray: Any) -> list[Node]:
    """The cluster's alive nodes that have CPUs."""
    nodes = []
    for info in ray.nodes():
        resources = info.get("Resources") or {}
        if info.get("Alive") and resources.get("CPU", 0) >= 1:
            nodes.append(Node(info["NodeID"], info.get("NodeManagerHostname") or "?",
                              resources["CPU"], resources.get("GPU", 0.0),
                              dict(info.get("Labels") or {})))  # fmt: skip
    return nodes


class RayExecutor:
    """Measures planned cells as Ray tasks, one per free node, calling `on_done` per cell."""

    def __init__(
        self,
        config: RunConfig,
        log_dir: Path,
        gpu_backends: set[str],
        progress: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self.log_dir = log_dir
        self.gpu_backends = gpu_backends
        self.progress = progress
        self.settings = NodeSettings(config.timing, config.seed, config.cell_timeout,
                                     config.times_end_to_end, config.allocator)  # fmt: skip
        self.stopped = False
        self._files: dict[str, Any] = {}  # model source -> object ref of its files
        self._in_flight: dict[Any, tuple[Planned, Node, int]] = {}
        self._tasks = 0
        self.ray = connect(config.ray_address)
        self.remote = self.ray.remote(max_retries=0)(ray_task)
        self.nodes = alive_nodes(self.ray)
        for target in config.targets or (None,):
            if not any(n.matches(target) for n in self.nodes):
                labels = sorted({f"{k}={v}" for n in self.nodes for k, v in n.labels.items()
                                 if not k.startswith("ray.io/")})  # fmt: skip
                self.close()
                raise BenchError(f"--target {target}: no alive Ray node with CPUs has that "
                                 f"label; labels present: {', '.join(labels) or 'none'}"
                                 if target else "the Ray cluster has no alive node with CPUs")  # fmt: skip

    # -- the loop ---------------------------------------------------------------------------

    def measure(
        self,
        cells: list[Planned],
        on_done: Callable[[Measured], None],
        should_stop: Callable[[], bool],
        on_trial: Callable[[str, int, TrialOutcome], None] = lambda *_: None,
    ) -> None:
        """Run every cell as a task on a free node of its target; `on_done` as each ends."""
        controls = {p.target: p for p in cells if p.backend == "control"}
        self._control: dict[str | None, Measured] = {}
        queue = [p for p in cells if p.backend != "control"]
        free = list(self.nodes)
        while (queue or self._in_flight) and not should_stop():
            for planned in list(queue):
                node = next((n for n in free if n.matches(planned.target)), None)
                if node is None and not any(n.matches(planned.target) for n in self.nodes):
                    queue.remove(planned)
                    on_done(self._lost(planned, f"no alive Ray node of target {planned.target} "
                                       "is left (its nodes were lost)", None))  # fmt: skip
                elif node is not None:
                    queue.remove(planned)
                    free.remove(node)
                    self._submit(planned, controls.get(planned.target), node)
            ready, _ = self.ray.wait(list(self._in_flight), num_returns=1, timeout=0.5)
            for ref in ready:
                planned, node, number = self._in_flight.pop(ref)
                if self._collect(ref, planned, node, number, on_done, on_trial):
                    free.append(node)
        self.stopped = bool(queue or self._in_flight)
        if self.stopped:
            self.kill()  # tasks in flight are abandoned: their cells have no record
            return
        for target, control in controls.items():
            on_done(self._control.get(target) or Measured(control, 0, failure=Failure(
                "failed", "not measured: no task of this target measured the control")))  # fmt: skip

    def _submit(self, planned: Planned, control: Planned | None, node: Node) -> None:
        source = planned.job.load.source
        if source not in self._files:
            self._files[source] = self.ray.put(model_files(source))
        gpus = node.gpus if planned.backend in self.gpu_backends else 0
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options = {"num_cpus": node.cpus, "num_gpus": gpus,
                   "scheduling_strategy": NodeAffinitySchedulingStrategy(node.node_id, soft=False)}  # fmt: skip
        ref = self.remote.options(**options).remote(
            planned, control, self._files[source], self.settings
        )
        self._tasks += 1
        self._in_flight[ref] = (planned, node, self._tasks)
        self.progress(f"[ray] {planned.cell_id} -> {node.host} ({node.node_id[:12]})")

    def _collect(
        self,
        ref: Any,
        planned: Planned,
        node: Node,
        number: int,
        on_done: Callable[[Measured], None],
        on_trial: Callable[[str, int, TrialOutcome], None],
    ) -> bool:
        """Record a finished task; False when its node is gone."""
        try:
            result: NodeResult = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            on_done(self._lost(planned, f"Ray task on {node.host} ({node.node_id[:12]}) "
                               f"lost: {type(exc).__name__}: {meaningful_line(str(exc))}", node))  # fmt: skip
            if node.node_id not in {n.node_id for n in alive_nodes(self.ray)}:
                self.nodes = [n for n in self.nodes if n.node_id != node.node_id]
                self.progress(f"[ray] node {node.host} ({node.node_id[:12]}) lost")
                return False
            return True
        self._write_log(planned, result.log)
        for cell_id, position, outcome in result.trials:
            on_trial(cell_id, position, outcome)
        for measured in result.measured:
            measured.host, measured.node_id = result.host, result.node_id
            if measured.planned.backend == "control":
                self._add_control(planned.target, measured)
                continue
            measured.planned, measured.group = planned, number
            on_done(measured)
        return True

    def _lost(self, planned: Planned, reason: str, node: Node | None) -> Measured:
        return Measured(planned, 0, failure=Failure("crashed", reason),
                        host=node.host if node else None, node_id=node.node_id if node else None)  # fmt: skip

    def _add_control(self, target: str | None, measured: Measured) -> None:
        """Each task's control trials join its target's one control record."""
        if measured.failure or measured.load is None:
            return
        kept = self._control.setdefault(target, measured)
        if kept is not measured:
            start = len(kept.inference)
            kept.inference.extend(Trial(start + i + 1, t.measurement, t.used)
                                  for i, t in enumerate(measured.inference))  # fmt: skip
            hosts = set((kept.host or "").split(",")) | {measured.host or ""}
            kept.host = ",".join(sorted(h for h in hosts if h))
            kept.node_id = None if kept.node_id != measured.node_id else kept.node_id

    def _write_log(self, planned: Planned, text: str) -> None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in planned.cell_id)[:80]
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            (self.log_dir / f"ray-{safe}.log").write_text(text)
        except OSError:
            pass  # logs are a help, never a reason to lose a record

    # -- shutdown ---------------------------------------------------------------------------

    def kill(self) -> None:
        """Cancel every task in flight now."""
        for ref in list(self._in_flight):
            with contextlib.suppress(Exception):  # already finished or its node gone
                self.ray.cancel(ref, force=True)
        self._in_flight.clear()

    def close(self) -> None:
        """Disconnect (a local instance this run started stops with it)."""
        self.kill()
        self.ray.shutdown()
