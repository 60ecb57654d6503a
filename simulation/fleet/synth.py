"""Synthetic logs and fleets: a seed in, an ImportedLog out, and many of them into the catalog.

A log (source "synthetic") is a drive of the world its seed builds (world.simulate) at 10 Hz: ego
poses in the world frame, labels with realistic errors (labels), a lidar sweep per frame (lidar; or
every n-th frame, `lidar_every_n_frames`), the road map, and in meta:

- "ground_truth": simulation.ground_truth.FleetGroundTruth: seed, conditions {"night", "rain"}, the
  behaviour events (behaviours: their exact definitions) and every label error;
- "scene": the static boxes the lidar saw (scene.StaticScene.to_meta), for re-ray-casting at a new
  ego pose with lidar.raycast_sweep;
- "conditions": {"night", "rain"}, as a real log's description would say;
- "fleet": generator, version, seed, duration, the config and its digest, and the lidar's mounting.

The same seed and config give byte-identical frames and meta, hence the same log id in the catalog.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from tqdm import tqdm

from andon.errors import BadInput
from andon.ids import hash_json
from andon.scenarios.catalog import Catalog
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import Frame, Provenance
from andon.simulation.fleet import behaviours, labels, lidar
from andon.simulation.fleet.agents import EGO
from andon.simulation.fleet.config import FRAME_RATE_HZ, FleetConfig
from andon.simulation.fleet.world import Drive, check_seed_and_duration, simulate, streams
from andon.simulation.ground_truth import META_KEY, FleetGroundTruth

NAME = "synthetic-fleet"
VERSION = "1"
SOURCE = "synthetic"
FLEET_STRIDE = 1_000_000  # log seeds of fleet seed S are S * FLEET_STRIDE + 0, 1, 2, ...


def config_digest(config: FleetConfig, duration_s: float) -> str:
    """What fixes a log besides its seed: generator version, duration and config."""
    return hash_json({"version": VERSION, "duration_s": float(duration_s), "config": config.to_dict()})


def log_name(seed: int, config: FleetConfig, duration_s: float) -> str:
    return f"synth-{seed:06d}-{config_digest(config, duration_s)[:8]}"


def synthesize_log(seed: int, duration_s: float = 20.0, config: FleetConfig | None = None) -> ImportedLog:
    """The synthetic log of `seed`: `duration_s` of driving at 10 Hz.

    Raises:
        BadInput: a negative seed, a duration outside (0, 3600] s, or a bad config value.
    """
    config = config or FleetConfig()
    return _log(simulate(seed, duration_s, config), duration_s, config)


def _log(drive: Drive, duration_s: float, config: FleetConfig) -> ImportedLog:
    rng = streams(drive.seed)
    population = drive.population
    others = np.arange(population.n) != EGO
    classes = population.classes[others]
    track_ids = np.asarray(population.track_ids)[others]
    reflectivity = population.reflectivity[others]
    night, rain = drive.conditions["night"], drive.conditions["rain"]
    frames: list[Frame] = []
    truth: list[labels.FrameLabels] = []
    errors = []
    for index, (stamp, pose) in enumerate(zip(drive.timestamps_ns, drive.ego_poses, strict=True)):
        boxes_world = drive.boxes_world[index, others]
        true = labels.true_labels(boxes_world, drive.velocity_world_mps[index, others], classes, track_ids, pose,
                                  config.label_range_m)
        shown, frame_errors = labels.corrupt(true, config.label_error_rate, index, int(stamp), rng["labels"])
        points = None
        if config.with_lidar and index % config.lidar_every_n_frames == 0:
            points = lidar.raycast_sweep(drive.scene.boxes_m, boxes_world, pose, config, rng["lidar"],
                                         scene_reflectivity=drive.scene.reflectivity,
                                         agent_reflectivity=reflectivity, night=night, rain=rain)
        frames.append(Frame(timestamp_ns=int(stamp), ego_pose=tuple(float(v) for v in pose), boxes=shown.boxes,
                            classes=shown.classes, track_ids=shown.track_ids, points=points,
                            velocities_mps=shown.velocities_mps))
        truth.append(true)
        errors.extend(frame_errors)
    events = behaviours.detect(drive.timestamps_ns, drive.ego_poses, truth, drive.road_map, drive.cut_ins, night)
    ground_truth = FleetGroundTruth(seed=drive.seed, conditions=dict(drive.conditions), behaviours=events,
                                    label_errors=tuple(errors))
    meta: dict[str, Any] = {
        META_KEY: ground_truth.to_dict(),
        "scene": drive.scene.to_meta(),
        "conditions": dict(drive.conditions),
        "fleet": {"generator": NAME, "version": VERSION, "seed": drive.seed, "duration_s": float(duration_s),
                  "frame_rate_hz": FRAME_RATE_HZ, "config": config.to_dict(),
                  "config_digest": config_digest(config, duration_s), "heavy_traffic": drive.heavy_traffic,
                  "lidar": {"height_m": config.lidar_height_m, "beams": config.lidar_beams,
                            "azimuth_steps": config.lidar_azimuth_steps, "max_range_m": config.max_range_m,
                            "elevation_deg": [config.lidar_elevation_min_deg, config.lidar_elevation_max_deg]}},
    }
    return ImportedLog(source=SOURCE, name=log_name(drive.seed, config, duration_s), frames=frames,
                       road_map=drive.road_map, meta=meta)


def fleet_seeds(seed: int, n_logs: int) -> list[int]:
    """The log seeds of a fleet: deterministic, and the first k are the same whatever n_logs."""
    return [seed * FLEET_STRIDE + index for index in range(n_logs)]


def synthesize_fleet(catalog: Catalog, n_logs: int, seed: int, duration_s: float = 20.0,
                     config: FleetConfig | None = None) -> list[str]:
    """Synthesise `n_logs` logs into `catalog`; returns their log ids in seed order.

    Idempotent: a log already in the catalog (same name, i.e. same seed, duration, config and
    generator version) is not synthesised again, and adding the same content is a no-op anyway.

    Raises:
        BadInput: n_logs outside [1, FLEET_STRIDE], a negative seed, or a bad duration or config.
    """
    config = config or FleetConfig()
    if isinstance(n_logs, bool) or not isinstance(n_logs, int | np.integer) or not 1 <= n_logs <= FLEET_STRIDE:
        raise BadInput(f"number of logs {n_logs!r} must be an integer in [1, {FLEET_STRIDE}]")
    check_seed_and_duration(seed, duration_s)
    provenance = Provenance("import", NAME, VERSION)
    existing = {row["name"]: row["log_id"] for row in (catalog.log_row(i) for i in catalog.logs(source=SOURCE))}
    log_ids = []
    for log_seed in tqdm(fleet_seeds(seed, n_logs), desc="synthesise", unit="log", disable=None, file=sys.stderr):
        name = log_name(log_seed, config, duration_s)
        if name in existing:
            log_ids.append(existing[name])
            continue
        log = synthesize_log(log_seed, duration_s, config)
        log_id, _ = catalog.add_log(log, provenance, origin=f"fleet seed {seed}, log seed {log_seed} ({name})")
        log_ids.append(log_id)
    return log_ids
