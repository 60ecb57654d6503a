"""Simulation results: per-scenario summaries of replays, and the result file of a run.

`summarize_scenario` is the `reduce` of `andon sim run`: it runs where the replay ran (a Ray worker),
turns a ScenarioTrace into a small `ScenarioSummary` (km, disengagements, collisions, jerk, progress)
and draws a picture of every disengagement into `out_dir/pictures/`. Only summaries travel back to
the driver, so memory does not grow with the frames replayed.

A run is stored in `WS/simulations/<sim_id>/` (result.json + pictures/). `sim_id` is the first 16 hex
digits of the hash of the run's inputs (sorted scenario ids, the stack's resolved versions, the
replay config, the confidence and andon's code version): the same inputs reuse the stored result
unless `rerun=true`. A run is written into a staging folder and renamed into place, so a reader sees
either the old complete result or the new one, never half of one. result.json holds no wall-clock
time, so the same inputs give the same bytes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.ids import hash_json
from andon.scenarios.logstore import ego_poses
from andon.scenarios.records import Log
from andon.scenarios.transforms import ego_to_world_xy, world_to_ego_xy
from andon.simulation.pictures import render_moment
from andon.simulation.system_metrics import aggregate, aggregate_per_tag, jerk_stats, progress_ratio
from andon.simulation.trace import Event, ScenarioTrace
from andon.workspace import Workspace

SIMULATIONS_DIR = "simulations"
RESULT_FILE = "result.json"
PICTURES_DIR = "pictures"
SIM_ID_HEX = 16
RESULT_VERSION = 1


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A disengagement and the picture of its moment (a path relative to the run's folder, or None)."""

    event: Event
    picture: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.event.to_dict(), "picture": self.picture}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> EventRecord:
        return cls(Event.from_dict(dict(doc)), doc.get("picture"))


@dataclass(frozen=True, slots=True)
class ScenarioSummary:
    """What a run keeps of one replayed scenario (satisfies system_metrics.ScenarioMetrics).

    Attributes:
        jerk_rms_mps3, max_abs_jerk_mps3: the ego's comfort over the replay [m/s³].
        jerk_samples: how many jerk values the RMS is over (pooling weights).
        progress: km / logged_km; None when the logged ego did not move.
        sensor_approximation: "" for exact sensing, else how closed-loop sensing was approximated.
    """

    scenario_id: str
    log_id: str
    tags: tuple[str, ...]
    km: float
    logged_km: float
    disengagements: int
    collisions: int
    jerk_rms_mps3: float
    max_abs_jerk_mps3: float
    jerk_samples: int
    progress: float | None
    sensor_approximation: str
    events: tuple[EventRecord, ...] = ()

    @property
    def jerk_sq_sum_mps6(self) -> float:
        return self.jerk_rms_mps3 ** 2 * self.jerk_samples

    def to_dict(self) -> dict[str, Any]:
        """The result file's scenario entry (events are listed at the run's level)."""
        return {"scenario_id": self.scenario_id, "log_id": self.log_id, "tags": list(self.tags), "km": self.km,
                "logged_km": self.logged_km, "disengagements": self.disengagements, "collisions": self.collisions,
                "jerk_rms_mps3": self.jerk_rms_mps3, "max_abs_jerk_mps3": self.max_abs_jerk_mps3,
                "jerk_samples": self.jerk_samples, "progress": self.progress,
                "sensor_approximation": self.sensor_approximation}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], events: Sequence[Mapping[str, Any]] = ()) -> ScenarioSummary:
        return cls(str(doc["scenario_id"]), str(doc["log_id"]), tuple(doc.get("tags", ())), float(doc["km"]),
                   float(doc["logged_km"]), int(doc["disengagements"]), int(doc["collisions"]),
                   float(doc["jerk_rms_mps3"]), float(doc["max_abs_jerk_mps3"]), int(doc.get("jerk_samples", 0)),
                   None if doc.get("progress") is None else float(doc["progress"]),
                   str(doc.get("sensor_approximation", "")),
                   tuple(EventRecord.from_dict(e) for e in events if e.get("scenario_id") == doc["scenario_id"]))


# ----- reduce: trace -> summary (+ pictures) ------------------------------------------------------------
def sweep_in_replayed_frame(log: Log, timestamp_ns: int, replayed_pose: np.ndarray) -> np.ndarray | None:
    """The log's sweep at `timestamp_ns`, in the ego frame of the replayed pose, or None without a sweep.

    Points stay where they were in the world: they go from the logged ego frame to the world and into the
    replayed ego's frame (closed loop); in open loop the two poses are equal and nothing moves.
    """
    stamps, poses = ego_poses(log)
    index = int(np.searchsorted(stamps, timestamp_ns))
    if index >= len(stamps) or int(stamps[index]) != int(timestamp_ns):
        return None
    points = log.frames[index].points
    if points is None or not len(points):
        return None
    logged = poses[index]
    pose = np.asarray(replayed_pose, dtype=np.float64)
    if np.allclose(logged[[0, 1, 3]], pose[[0, 1, 3]]):
        return np.asarray(points)
    moved = np.array(points, dtype=np.float32)
    world = ego_to_world_xy(points[:, :2], logged[:2], float(logged[3]))
    moved[:, :2] = world_to_ego_xy(world, pose[:2], float(pose[3]))
    return moved


def picture_name(scenario_id: str, ordinal: int, event: Event) -> str:
    """`<scenario_id>-<ordinal>-<cause>.png`: unique within a run, stable across reruns."""
    return f"{scenario_id}-{ordinal:02d}-{event.cause}.png"


def draw_events(trace: ScenarioTrace, log: Log, out_dir: Path) -> tuple[EventRecord, ...]:
    """A BEV picture of each event's moment in `out_dir/pictures/` (paths relative to out_dir)."""
    records = []
    for ordinal, event in enumerate(trace.events):
        frame = trace.frames[event.frame_index]
        name = picture_name(trace.scenario_id, ordinal, event)
        render_moment(trace, event.frame_index, sweep_in_replayed_frame(log, frame.timestamp_ns, frame.ego_pose),
                      Path(out_dir) / PICTURES_DIR / name, f"{event.cause}: {event.detail}", event.track_ids)
        records.append(EventRecord(event, f"{PICTURES_DIR}/{name}"))
    return tuple(records)


def summarize_scenario(trace: ScenarioTrace, log: Log, out_dir: Path) -> ScenarioSummary:
    """The `reduce` of `andon sim run`: a trace's summary, with a picture of each disengagement."""
    stamps = np.array([f.timestamp_ns for f in trace.frames], dtype=np.int64)
    accel = np.array([f.ego_accel_mps2 for f in trace.frames], dtype=np.float64)
    rms, max_abs, _, samples = jerk_stats(accel, stamps)
    return ScenarioSummary(
        scenario_id=trace.scenario_id, log_id=trace.log_id, tags=tuple(sorted(trace.tags)), km=float(trace.km),
        logged_km=float(trace.logged_km), disengagements=len(trace.events), collisions=int(trace.collisions),
        jerk_rms_mps3=rms, max_abs_jerk_mps3=max_abs, jerk_samples=samples,
        progress=progress_ratio(float(trace.km), float(trace.logged_km)),
        sensor_approximation=trace.sensor_approximation, events=draw_events(trace, log, out_dir))


# ----- the run's identity and document -----------------------------------------------------------------
def sim_inputs(scenario_ids: Sequence[str], stack: Mapping[str, str], config: Mapping[str, Any],
               confidence: float, code_version: str) -> dict[str, Any]:
    """What fixes a run's result (the hashed part of its identity)."""
    return {"scenario_ids": sorted(scenario_ids), "stack": dict(sorted(stack.items())), "config": dict(config),
            "confidence": confidence, "code_version": code_version}


def sim_id_for(inputs: Mapping[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the inputs' canonical JSON."""
    return hash_json(dict(inputs))[:SIM_ID_HEX]


def _clean(value: Any) -> Any:
    """Non-finite floats become None (canonical JSON refuses NaN and infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def result_document(sim_id: str, inputs: Mapping[str, Any], models: Sequence[str],
                    summaries: Sequence[ScenarioSummary], errors: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """The result file's document (see /contracts: simulation result file); errored scenarios are not in
    the metrics, they are listed in `errors` and fail the run."""
    confidence = float(inputs["confidence"])
    config = dict(inputs["config"])
    run = aggregate(summaries, confidence).to_dict()
    doc = {
        "result_version": RESULT_VERSION, "sim_id": sim_id, "mode": config.get("mode"),
        "reactive": config.get("reactive"), "stack": dict(inputs["stack"]), "models": list(models),
        "scenario_ids": list(inputs["scenario_ids"]), "config": config, "code_version": inputs["code_version"],
        **{key: run[key] for key in ("km", "logged_km", "disengagements", "km_per_disengagement", "interval",
                                     "confidence", "collisions", "collisions_per_km", "jerk_rms_mps3", "progress")},
        "max_abs_jerk_mps3": max((s.max_abs_jerk_mps3 for s in summaries), default=0.0),
        "scenarios_replayed": len(summaries),
        "errors": [{"scenario_id": e["scenario_id"], "message": e["message"]} for e in errors],
        "per_tag": {tag: m.to_dict() for tag, m in aggregate_per_tag(summaries, confidence).items()},
        "scenarios": [s.to_dict() for s in summaries],
        "events": [record.to_dict() for s in summaries for record in s.events],
    }
    return _clean(doc)


# ----- storage -----------------------------------------------------------------------------------------
def simulations_dir(workspace: Workspace) -> Path:
    return workspace.root / SIMULATIONS_DIR


def result_path(workspace: Workspace, sim_id: str) -> Path:
    return simulations_dir(workspace) / sim_id / RESULT_FILE


def staging_dir(workspace: Workspace, sim_id: str) -> Path:
    """A fresh folder to write a run into (pictures, then result.json) before `publish` renames it."""
    path = simulations_dir(workspace) / f".staging-{sim_id}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def publish(workspace: Workspace, staging: Path, doc: Mapping[str, Any]) -> Path:
    """Write result.json into the staging folder and move the folder to `simulations/<sim_id>/`, replacing a
    previous run of the same inputs; returns the result file's path."""
    sim_id = str(doc["sim_id"])
    tmp = staging / f".{RESULT_FILE}.tmp"
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n")
    tmp.replace(staging / RESULT_FILE)
    final = simulations_dir(workspace) / sim_id
    old = simulations_dir(workspace) / f".replaced-{sim_id}-{os.getpid()}"
    if final.exists():
        final.replace(old)
    try:
        staging.replace(final)
    except OSError:
        if not (final / RESULT_FILE).is_file():
            raise
        discard(staging)  # a concurrent run of the same inputs published first: its result is the same
    shutil.rmtree(old, ignore_errors=True)
    return final / RESULT_FILE


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def stored_result(workspace: Workspace, sim_id: str) -> dict[str, Any] | None:
    """The stored result of `sim_id`, or None when absent or unreadable (then it is run again)."""
    path = result_path(workspace, sim_id)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("sim_id") == sim_id else None


def load_result(workspace: Workspace, sim_id: str) -> dict[str, Any]:
    """A stored result by id or unique id prefix (6+ characters).

    Raises:
        BadInput: no such result, or an ambiguous prefix.
    """
    root = simulations_dir(workspace)
    if not sim_id or "/" in sim_id or sim_id.startswith("."):
        raise BadInput(f"{sim_id!r} is not a simulation id: `andon sim list` lists them")
    matches = [sim_id] if (root / sim_id / RESULT_FILE).is_file() else (
        sorted(p.parent.name for p in root.glob(f"{sim_id}*/{RESULT_FILE}")) if len(sim_id) >= 6 else [])
    if len(matches) > 1:
        raise BadInput(f"simulation id prefix {sim_id!r} is ambiguous ({', '.join(matches[:3])}...): give more characters")
    doc = stored_result(workspace, matches[0]) if matches else None
    if doc is None:
        raise BadInput(f"no simulation result {sim_id!r} in {root}: `andon sim list` lists them, "
                       f"`andon sim run` makes one")
    return doc


def list_results(workspace: Workspace) -> list[dict[str, Any]]:
    """Every readable stored result, by sim_id."""
    root = simulations_dir(workspace)
    found = (stored_result(workspace, p.parent.name) for p in sorted(root.glob(f"[!.]*/{RESULT_FILE}")))
    return [doc for doc in found if doc is not None]

