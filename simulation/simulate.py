"""One simulation run as a function: replay scenarios through a stack, or reuse the stored result.

`andon sim run` (simulation/sim_cli.py) and the release line (andon.gates.line) both call `simulate`:
it resolves the stack's aliases to fixed versions, derives the run's id from its inputs, reuses a
stored result of the same inputs (unless `rerun`, or the stored one has errors), and otherwise
replays on the worker and publishes WS/simulations/<sim_id>/ atomically.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from andon.output import info

log = logging.getLogger("andon.simulation")


@dataclass(frozen=True, slots=True)
class SimRun:
    """A finished (or reused) simulation: its result document, where it is stored, and whether it was reused."""

    doc: dict[str, Any]
    path: Path
    reused: bool


def simulate(workspace: Any, models: Sequence[str], scenarios: Sequence[Any], replay: Any, *,
             make_worker: Callable[[], Any], confidence: float = 0.95, rerun: bool = False, device: str = "cpu",
             allow_stand_ins: bool = True, task_cpus: float = 1.0, task_gpus: float = 0.0,
             progress: bool = True) -> SimRun:
    """Replay `scenarios` through the stack of `models` (or reuse the stored result of the same inputs).

    Args:
        workspace: the workspace (catalog, registry, results).
        models: registry refs; roles not given run stand-ins when `allow_stand_ins`.
        scenarios: the scenarios to replay (andon.scenarios.records.Scenario).
        replay: the ReplayConfig.
        make_worker: builds the worker the replays run on; called only when something must be replayed,
            and shut down here.
        confidence: of the Poisson interval on km per disengagement.
        rerun: replay even when a result of the same inputs is stored.
        device, allow_stand_ins: as `andon sim run`.
        task_cpus, task_gpus: what one replay task asks Ray for.
        progress: progress bars on stderr.

    Raises:
        BadInput: a bad model ref.
    """
    from andon.dag.spec import Resources
    from andon.dag.workers import SequentialWorker
    from andon.models.lineage import code_version
    from andon.simulation import results as res
    from andon.simulation.runner import ReplayError, cached_stack, clear_stack_cache, run_replays
    from andon.simulation.sim_cli import pinned_models

    stack = cached_stack(workspace, list(models), device, allow_stand_ins)
    description = dict(stack.description)
    pinned = pinned_models(list(models), description)
    config = dataclasses.asdict(replay)
    inputs = res.sim_inputs([s.scenario_id for s in scenarios], description, config, confidence, code_version())
    sim_id = res.sim_id_for(inputs)
    stored = None if rerun else res.stored_result(workspace, sim_id)
    if stored is not None and stored.get("errors"):
        info(f"sim: the stored result {sim_id} has errors: replaying again")
        stored = None
    if stored is not None:
        info(f"sim: reusing the stored result {sim_id} (same scenarios, stack, config and code; rerun=true replays)")
        return SimRun(stored, res.result_path(workspace, sim_id), True)

    worker = make_worker()
    if not isinstance(worker, SequentialWorker):
        clear_stack_cache()  # the workers load their own; the driver does not keep the weights
    staging = res.staging_dir(workspace, sim_id)
    try:
        outcomes = run_replays(workspace, list(scenarios), pinned, replay, worker, res.summarize_scenario, staging,
                               progress, device=device, allow_stand_ins=allow_stand_ins,
                               resources=Resources(num_cpus=task_cpus, num_gpus=task_gpus))
        summaries = [o for o in outcomes if not isinstance(o, ReplayError)]
        errors = [o.to_dict() for o in outcomes if isinstance(o, ReplayError)]
        doc = res.result_document(sim_id, inputs, list(models), summaries, errors)
        path = res.publish(workspace, staging, doc)
    except BaseException:
        res.discard(staging)
        raise
    finally:
        worker.shutdown()
    return SimRun(doc, path, False)
