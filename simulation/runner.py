"""Replaying many scenarios in parallel: chunks of scenarios as worker tasks, the stack loaded once per process.

`run_replays` splits the scenarios into chunks (grouped by log, so a log is opened once per chunk),
submits one task per chunk to a `Worker` (andon.dag.workers: in-process or Ray tasks) and returns one
result per scenario, in the order the scenarios were given, whatever order the tasks finish in.

Each task calls `replay_chunk`, which takes the stack from a per-process cache (loaded on the first
chunk a process runs, reused by every later chunk of the same run: a model loads once per Ray worker,
not once per scenario), replays each scenario and hands the trace to `reduce` right there, so only
the reduced values travel back. A scenario that raises becomes a `ReplayError`; a task that dies
(its worker crashed, the stack could not load) turns each of its scenarios into one. Callers count
errors as failures: the line fails closed.

The caller owns the worker and shuts it down (a worker may serve several runs, e.g. candidate and
baseline). With Ray on a cluster, the workspace (catalog, blobs, out_dir) must be on a shared file system.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from tqdm import tqdm

from andon.dag.spec import Resources
from andon.dag.workers import SequentialWorker, Worker
from andon.errors import BadInput
from andon.scenarios.records import Scenario
from andon.workspace import Workspace

if TYPE_CHECKING:
    from andon.scenarios.records import Log
    from andon.simulation.replay import ReplayConfig
    from andon.simulation.stack import Stack
    from andon.simulation.trace import ScenarioTrace

log = logging.getLogger("andon.simulation")
T = TypeVar("T")
CHUNKS_PER_SLOT = 4  # more chunks than slots: load balance and progress; the stack cache makes them cheap
ONE_CPU = Resources(num_cpus=1.0)


@dataclass(frozen=True, slots=True)
class ReplayError:
    """A scenario whose replay (or reduce) raised, or whose task died: counted as a failure, never skipped."""

    scenario_id: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"scenario_id": self.scenario_id, "message": self.message}


# ----- the per-process stack cache -------------------------------------------------------------------
_stack_cache: dict[tuple[Any, ...], Stack] = {}


def cached_stack(workspace: Workspace, models: Sequence[str], device: str = "cpu",
                 allow_stand_ins: bool = True) -> Stack:
    """The stack of `models`, loaded once per process and kept for the next chunks.

    The cache holds one stack: a process that is asked for another set of models drops the previous
    one first, so a long-lived Ray worker never holds two models' weights.
    """
    from andon.simulation.stack import load_stack

    key = (str(workspace.root), tuple(models), device, allow_stand_ins)
    if key not in _stack_cache:
        _stack_cache.clear()
        log.info("simulation: loading the stack %s on %s (pid %d)", list(models) or "of stand-ins", device,
                 os.getpid())
        _stack_cache[key] = load_stack(workspace, list(models), device=device, allow_stand_ins=allow_stand_ins)
    return _stack_cache[key]


def clear_stack_cache() -> None:
    _stack_cache.clear()


# ----- one task ----------------------------------------------------------------------------------------
def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[-1]}" if text else type(exc).__name__


def replay_chunk(workspace: Workspace, scenarios: Sequence[Scenario], models: Sequence[str], config: ReplayConfig,
                 reduce: Callable[[ScenarioTrace, Log, Path], T], out_dir: Path, device: str = "cpu",
                 allow_stand_ins: bool = True) -> list[T | ReplayError]:
    """Replay `scenarios` one after another with the cached stack; `reduce` each trace where it was made.

    Top-level (picklable) so that a Ray worker can run it. Never raises for a scenario: each failure
    becomes a ReplayError naming the scenario and the exception.
    """
    from andon.scenarios.catalog import Catalog
    from andon.simulation.replay import replay_scenario

    stack = cached_stack(workspace, models, device, allow_stand_ins)
    out: list[T | ReplayError] = []
    with Catalog(workspace) as catalog:
        current: Log | None = None
        for scenario in scenarios:
            try:
                if current is None or current.log_id != scenario.log_id:
                    current = None  # drop the previous log (and its cached frames) before opening the next
                    current = catalog.log(scenario.log_id)
                trace = replay_scenario(current, scenario, stack, config)
                out.append(reduce(trace, current, out_dir))
            except Exception as exc:  # fail closed: the scenario is counted as an error, the others go on
                log.warning("simulation: scenario %s failed: %s", scenario.scenario_id, _message(exc))
                out.append(ReplayError(scenario.scenario_id, _message(exc)))
    return out


# ----- chunking ----------------------------------------------------------------------------------------
def worker_slots(worker: Worker, resources: Resources) -> int | None:
    """How many chunks the worker runs at once (None: in-process, one scenario per chunk)."""
    if isinstance(worker, SequentialWorker):
        return None
    cpus = getattr(worker, "num_cpus", None)
    if cpus is None:
        try:
            import ray

            cpus = ray.cluster_resources().get("CPU") if ray.is_initialized() else None
        except ImportError:
            cpus = None
    cpus = cpus or os.cpu_count() or 1
    return max(1, int(cpus // max(resources.num_cpus, 1e-9)))


def make_chunks(scenarios: Sequence[Scenario], n_chunks: int) -> list[np.ndarray]:
    """Indices into `scenarios`, split into `n_chunks` contiguous runs of (log_id, scenario_id) order, so
    the scenarios of a log mostly share a chunk. Deterministic."""
    order = sorted(range(len(scenarios)), key=lambda i: (scenarios[i].log_id, scenarios[i].scenario_id))
    n_chunks = max(1, min(n_chunks, len(scenarios)))
    return [chunk for chunk in np.array_split(np.asarray(order, dtype=np.int64), n_chunks) if len(chunk)]


def run_replays(workspace: Workspace, scenarios: Sequence[Scenario], models: Sequence[str], config: ReplayConfig,
                worker: Worker, reduce: Callable[[ScenarioTrace, Log, Path], T], out_dir: Path,
                progress: bool = True, *, device: str = "cpu", allow_stand_ins: bool = True,
                resources: Resources = ONE_CPU, chunks: int | None = None) -> list[T | ReplayError]:
    """Replay every scenario through the stack of `models` on `worker`; one result per scenario, in order.

    Args:
        workspace: where the catalog (logs) and the models live.
        scenarios: what to replay (a scenario id must not repeat).
        models: registry refs NAME@ALIAS or NAME@VERSION (roles not given use stand-ins; see load_stack).
            Pin versions (NAME@3) when workers may load after an alias moves.
        config: the replay's settings.
        worker: where tasks run; the caller shuts it down.
        reduce: a picklable top-level function (trace, log, out_dir) -> value, run where the replay ran.
        out_dir: where `reduce` writes files (e.g. pictures); created here.
        progress: a progress bar on stderr.
        device: where the models run (cpu, cuda).
        allow_stand_ins: stand-ins for the roles `models` does not give.
        resources: what one task asks the worker for.
        chunks: how many tasks (default: 4 per worker slot; one per scenario in-process).

    Returns:
        `reduce`'s value for each scenario, or a ReplayError, in the order of `scenarios`.

    Raises:
        BadInput: a scenario id given twice.
    """
    ids = [s.scenario_id for s in scenarios]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise BadInput(f"scenario {repeated[0]} is given more than once: replay each scenario once")
    if not scenarios:
        return []
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    if chunks is None:
        slots = worker_slots(worker, resources)
        chunks = len(scenarios) if slots is None else slots * CHUNKS_PER_SLOT
    parts = make_chunks(scenarios, chunks)
    results: list[T | ReplayError | None] = [None] * len(scenarios)
    members = {f"chunk-{k}": part for k, part in enumerate(parts)}
    for key, part in members.items():
        worker.submit(key, replay_chunk, resources, workspace, [scenarios[i] for i in part], list(models), config,
                      reduce, Path(out_dir), device, allow_stand_ins)
    with tqdm(total=len(scenarios), desc="sim", unit="scenario", file=sys.stderr,
              disable=None if progress else True) as bar:
        remaining = set(members)
        while remaining:
            done = worker.wait()
            if not done:  # a worker that lost tasks: fail them closed rather than wait forever
                break
            for completion in done:
                remaining.discard(completion.key)
                part = members[completion.key]
                values = completion.value if completion.ok else None
                if values is None or len(values) != len(part):
                    why = completion.error or f"the task returned {type(completion.value).__name__}"
                    values = [ReplayError(scenarios[i].scenario_id, why) for i in part]
                for i, value in zip(part, values, strict=True):
                    results[i] = value
                bar.update(len(part))
    return [r if r is not None else ReplayError(scenarios[i].scenario_id, "the worker lost the task")
            for i, r in enumerate(results)]
