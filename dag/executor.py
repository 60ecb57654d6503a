"""`andon dag run`: retrain the stale and missing nodes, and only those, in topological order.

The driver keeps the schedule; workers run nodes. A node becomes ready when every upstream node is
fresh or done; its fingerprint is computed then (an upstream autolabel link may just have built the
dataset it reads), and a node that is fresh by then is not run. Ready nodes are submitted together,
so independent nodes run in parallel on Ray with their resource requests.

- Idempotent: with nothing stale the run says so and starts nothing (not even Ray).
- Resumable: a killed driver leaves finished nodes registered with their fingerprint, so the next
  run finds them fresh; a node killed mid-run never registered (registration comes after the
  artifacts are fully logged; the fingerprint tag comes last) and runs again.
- Fail closed, locally: a failed or blocked node stops its descendants, not its siblings; the run
  ends with exit code 1 and a summary (node, state before, outcome, duration, version).
- Lineage: a pipeline run in the MLflow experiment `andon/dag`, one nested run per node
  (`mlflow.parentRunId`), tagged with the runs of its upstream nodes and with the model's own run.
- One run at a time per workspace (a lock file): two drivers would train the same node twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from andon.dag.fingerprint import Fingerprinter, NodeFingerprint
from andon.dag.graph import ancestors
from andon.dag.lineage import TAG_NODE_RUN, Lineage
from andon.dag.runners import DAG_EXPERIMENT, NodeResult, NodeTask, execute_node
from andon.dag.spec import Dag
from andon.dag.status import FRESH, node_status
from andon.dag.workers import Worker
from andon.errors import BadInput, InternalError
from andon.workspace import Workspace

log = logging.getLogger("andon.dag")

DONE, FAILED, SKIPPED, BLOCKED, NOT_RUN = "done", "failed", "skipped", "blocked", "fresh"
OUTCOMES = (NOT_RUN, DONE, FAILED, SKIPPED, BLOCKED)
LOCK_FILE = "dag-run.lock"


@dataclass(frozen=True, slots=True)
class NodeOutcome:
    """One row of the run's summary."""

    node: str
    before: str
    outcome: str
    duration_s: float = 0.0
    version: str | None = None
    reason: str = ""
    run_id: str | None = None
    placement: str = ""
    started_s: float = 0.0
    ended_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "before": self.before, "outcome": self.outcome,
                "duration_s": round(self.duration_s, 3), "version": self.version, "reason": self.reason,
                "run_id": self.run_id, "placement": self.placement, "started_s": self.started_s,
                "ended_s": self.ended_s}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> NodeOutcome:
        return cls(doc["node"], doc["before"], doc["outcome"], float(doc.get("duration_s", 0.0)), doc.get("version"),
                   doc.get("reason", ""), doc.get("run_id"), doc.get("placement", ""),
                   float(doc.get("started_s", 0.0)), float(doc.get("ended_s", 0.0)))


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What `andon dag run` did."""

    dag: str
    worker: str
    outcomes: tuple[NodeOutcome, ...]
    pipeline_run_id: str | None = None
    duration_s: float = 0.0
    worker_start_s: float | None = None
    message: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return all(o.outcome in (NOT_RUN, DONE) for o in self.outcomes)

    def outcome(self, node: str) -> NodeOutcome:
        return next(o for o in self.outcomes if o.node == node)

    def to_dict(self) -> dict[str, Any]:
        return {"dag": self.dag, "worker": self.worker, "ok": self.ok, "message": self.message,
                "pipeline_run_id": self.pipeline_run_id, "duration_s": round(self.duration_s, 3),
                "worker_start_s": None if self.worker_start_s is None else round(self.worker_start_s, 3),
                "nodes": [o.to_dict() for o in self.outcomes]}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> RunSummary:
        return cls(doc["dag"], doc["worker"], tuple(NodeOutcome.from_dict(o) for o in doc["nodes"]),
                   doc.get("pipeline_run_id"), float(doc.get("duration_s", 0.0)), doc.get("worker_start_s"),
                   doc.get("message", ""))


@contextlib.contextmanager
def run_lock(workspace: Workspace) -> Iterator[None]:
    """Hold the workspace's DAG-run lock (released by the OS if the driver dies)."""
    path = workspace.tmp_dir / LOCK_FILE
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise BadInput(f"another `andon dag run` ({holder}) is running on {workspace.root}: wait for it, "
                           f"or stop it first") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Executor:
    """Schedules a DAG's stale nodes on a worker.

    Args:
        dag: the DAG.
        workspace: the workspace.
        fingerprinter: computes fingerprints (its ConfigSession must be entered).
        lineage: reads the registry.
        worker: runs the nodes.
    """

    def __init__(self, dag: Dag, workspace: Workspace, fingerprinter: Fingerprinter, lineage: Lineage,
                 worker: Worker) -> None:
        self.dag = dag
        self.workspace = workspace
        self.fingerprinter = fingerprinter
        self.lineage = lineage
        self.worker = worker

    @property
    def client(self) -> Any:
        """MLflow's client (opened only when something runs: a run with nothing to do stays fast)."""
        return self.lineage.client

    def run(self, targets: list[str] | None = None) -> RunSummary:
        """Bring `targets` (all nodes by default) and their upstream nodes up to date."""
        started = time.perf_counter()
        selected = self._selected(targets)
        with run_lock(self.workspace):
            before = self._states(selected)
            pending = [n for n in self.dag.order if n in selected and before[n] != FRESH]
            if not pending:
                outcomes = tuple(NodeOutcome(n, FRESH, NOT_RUN, version=self._fresh_version(n))
                                 for n in self.dag.order if n in selected)
                return RunSummary(self.dag.name, self.worker.name, outcomes, duration_s=time.perf_counter() - started,
                                  message=f"nothing to do: all {len(outcomes)} nodes are fresh")
            self._close_abandoned_runs()
            pipeline = self._start_pipeline_run(pending)
            try:
                outcomes = self._schedule(selected, before, pipeline)
            except BaseException:
                self.client.set_terminated(pipeline, "FAILED")
                raise
            finally:
                self.worker.shutdown()
            failed = [o for o in outcomes.values() if o.outcome not in (NOT_RUN, DONE)]
            self.client.set_terminated(pipeline, "FAILED" if failed else "FINISHED")
        ordered = tuple(outcomes[n] for n in self.dag.order if n in outcomes)
        counts = {kind: sum(1 for o in ordered if o.outcome == kind) for kind in (DONE, FAILED, BLOCKED, SKIPPED)}
        message = (f"{counts[DONE]} node(s) run; {counts[FAILED]} failed, {counts[BLOCKED]} blocked, "
                   f"{counts[SKIPPED]} skipped: the line stops there" if failed
                   else f"{counts[DONE]} node(s) run; every selected node is fresh")
        return RunSummary(self.dag.name, self.worker.name, ordered, pipeline, time.perf_counter() - started,
                          getattr(self.worker, "init_s", None), message)

    # ----- scheduling -------------------------------------------------------------------------------
    def _selected(self, targets: list[str] | None) -> set[str]:
        if not targets:
            return set(self.dag.order)
        for name in targets:
            self.dag.node(name)
        return set(targets) | ancestors(self.dag.upstream_map(), targets)

    def _states(self, selected: set[str]) -> dict[str, str]:
        states: dict[str, str] = {n: "" for n in self.dag.order}
        producers = self.dag.producers()
        for name in self.dag.order:
            if name in selected:
                states[name] = node_status(self.fingerprinter.fingerprint(name), self.lineage, states, producers).state
        self.fingerprinter.sources.save()
        return {n: s for n, s in states.items() if n in selected}

    def _schedule(self, selected: set[str], before: dict[str, str], pipeline: str) -> dict[str, NodeOutcome]:
        upstream = self.dag.upstream_map()
        outcomes: dict[str, NodeOutcome] = {}
        runs: dict[str, str] = {}  # node -> the MLflow run of its current version (lineage links)
        submitted: dict[str, float] = {}
        waiting = [n for n in self.dag.order if n in selected]
        while waiting or submitted:
            for name in list(waiting):
                ups = [u for u in upstream[name] if u in selected]
                if any(u not in outcomes for u in ups):
                    continue
                waiting.remove(name)
                bad = [u for u in ups if outcomes[u].outcome not in (NOT_RUN, DONE)]
                if bad:
                    outcomes[name] = NodeOutcome(name, before[name], SKIPPED, reason=f"upstream {bad[0]} "
                                                 f"{outcomes[bad[0]].outcome}")
                    continue
                outcome = self._submit(name, before[name], pipeline, runs)
                if outcome is None:
                    submitted[name] = time.perf_counter()
                else:
                    outcomes[name] = outcome
            if not submitted:
                if waiting:
                    raise InternalError(f"dag: nodes {waiting} wait for upstream nodes that never ran")
                continue
            for done in self.worker.wait():
                started = submitted.pop(done.key)
                outcomes[done.key] = self._finish(done.key, before[done.key], done, time.perf_counter() - started,
                                                  runs)
        return outcomes

    def _submit(self, name: str, before: str, pipeline: str, runs: dict[str, str]) -> NodeOutcome | None:
        """Submit the node, or the outcome when it does not run (fresh by now, or blocked)."""
        node = self.dag.node(name)
        self.fingerprinter.forget({name})  # its datasets may have just been built upstream
        self.lineage.forget(name)
        fp = self.fingerprinter.fingerprint(name)
        fresh = self.lineage.with_fingerprint(name, fp.fingerprint)
        if fresh:
            runs[name] = fresh[0].tags.get(TAG_NODE_RUN) or fresh[0].run_id
            return NodeOutcome(name, before, NOT_RUN, version=str(fresh[0].version))
        if fp.problems:
            return NodeOutcome(name, before, BLOCKED, reason="; ".join(fp.problems))
        versions, configs = self._upstream_inputs(name)
        upstream_runs = {u: runs[u] for u in node.upstream if runs.get(u)}
        tags = {"mlflow.parentRunId": pipeline, "andon.node": name, "andon.kind": node.kind,
                "andon.fingerprint": fp.fingerprint, "andon.state_before": before,
                **{f"andon.upstream_run.{u}": r for u, r in upstream_runs.items()},
                **{f"andon.upstream_version.{u}": v for u, v in versions.items()}}
        run = self.client.create_run(self._experiment(), run_name=name, tags=tags)
        node_run = run.info.run_id
        runs[name] = node_run
        self.client.log_dict(node_run, fp.to_dict(), "dag/fingerprint.json")
        task = NodeTask(workspace=str(self.workspace.root), node=node, fingerprint=_portable(fp),
                        searchpath=self.fingerprinter.session.searchpath,
                        fingerprint_ignore=self.dag.fingerprint_ignore,
                        upstream_versions=tuple(versions.items()), upstream_configs=tuple(configs.items()),
                        node_run_id=node_run, pipeline_run_id=pipeline)
        log.info("dag: %s (%s, %s) submitted to %s", name, node.kind, before, self.worker.name)
        self.worker.submit(name, execute_node, node.resources, task)
        return None

    def _finish(self, name: str, before: str, done: Any, duration_s: float, runs: dict[str, str]) -> NodeOutcome:
        node_run = runs.get(name)
        if not done.ok:
            if node_run:
                self.client.set_tag(node_run, "andon.error", done.error[:4000])
                self.client.set_terminated(node_run, "FAILED")
            log.error("dag: %s failed: %s", name, done.error)
            return NodeOutcome(name, before, FAILED, duration_s, reason=done.error, run_id=node_run)
        result: NodeResult = done.value
        self.lineage.forget(name)
        if node_run:
            self.client.set_tag(node_run, "andon.model_version", result.version)
            if result.run_id and result.run_id != node_run:
                self.client.set_tag(node_run, "andon.model_run", result.run_id)
            for key, value in result.metrics:
                self.client.log_metric(node_run, key, value)
            self.client.set_terminated(node_run, "FINISHED")
        log.info("dag: %s done: version %s (%s)", name, result.version, result.detail)
        if result.ended_s > result.started_s > 0:
            duration_s = result.ended_s - result.started_s  # the run itself, not its time in Ray's queue
        return NodeOutcome(name, before, DONE, duration_s, result.version, result.detail, node_run,
                           result.placement, result.started_s, result.ended_s)

    def _upstream_inputs(self, name: str) -> tuple[dict[str, str], dict[str, Any]]:
        """The versions (and configs) the node is made from: its upstream nodes' fresh versions, and
        through an autolabel link, the versions the link's dataset was made from."""
        versions: dict[str, str] = {}
        configs: dict[str, Any] = {}
        queue = list(self.dag.node(name).upstream)
        while queue:
            up = queue.pop(0)
            if up in versions:
                continue
            fp = self.fingerprinter.fingerprint(up)
            fresh = self.lineage.with_fingerprint(up, fp.fingerprint)
            if fresh:
                versions[up] = str(fresh[0].version)
                configs[up] = dict(fp.config or {})
            if self.dag.node(up).kind == "autolabel":
                queue.extend(self.dag.node(up).upstream)
        return versions, configs

    # ----- MLflow -----------------------------------------------------------------------------------
    def _experiment(self) -> str:
        return self.lineage.registry.experiment_id(DAG_EXPERIMENT)

    def _start_pipeline_run(self, pending: list[str]) -> str:
        run = self.client.create_run(self._experiment(), run_name=f"dag {self.dag.name}",
                                     tags={"andon.dag": self.dag.name, "andon.worker": self.worker.name,
                                           "andon.pending": ",".join(pending)})
        return run.info.run_id

    def _close_abandoned_runs(self) -> None:
        """Runs left RUNNING by a driver that died (the lock says no driver is alive) are marked KILLED."""
        from mlflow.entities import ViewType

        experiment = self._experiment()
        for run in self.client.search_runs([experiment], "attributes.status = 'RUNNING'", ViewType.ACTIVE_ONLY,
                                           max_results=1000):
            self.client.set_terminated(run.info.run_id, "KILLED")

    def _fresh_version(self, name: str) -> str | None:
        fresh = self.lineage.with_fingerprint(name, self.fingerprinter.fingerprint(name).fingerprint)
        return str(fresh[0].version) if fresh else None


def _portable(fp: NodeFingerprint) -> NodeFingerprint:
    """The fingerprint with its config as plain data (it is pickled to workers)."""
    return NodeFingerprint.from_dict(fp.to_dict())


def summary_rows(summary: RunSummary) -> list[list[Any]]:
    """Rows of the human summary table."""
    return [[o.node, o.before, o.outcome, f"{o.duration_s:.1f}", o.version or "-", o.reason[:90]]
            for o in summary.outcomes]


SUMMARY_HEADERS = ["node", "before", "outcome", "duration_s", "version", "detail"]
