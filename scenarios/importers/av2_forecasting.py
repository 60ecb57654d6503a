"""Importer of Argoverse 2 motion-forecasting scenarios (format "av2-forecasting").

A scenario is a folder `<scenario_id>/` holding `scenario_<scenario_id>.parquet` (one row per track
and timestep: position, heading and velocity in the city frame at 10 Hz, 110 steps of which the first
50 are observed) and `log_map_archive_<scenario_id>.json` (the vector map). The ego is the track
`AV`: its position and heading give each frame's ego pose (z = 0, the format has no height); it is
not a box. Every other track present at a timestep is a box in the ego frame (position, heading and
velocity rotated into it) standing on the ground (z_centre = height / 2).

The format carries no sizes, so each object type gets a default (length, width, height) [m]:
vehicle 4.5 x 2.0 x 1.6, bus 12 x 2.6 x 3.2, pedestrian 0.6 x 0.6 x 1.75, cyclist and motorcyclist
1.8 x 0.7 x 1.7 (with rider), riderless bicycle 1.8 x 0.7 x 1.1, static, background, construction and
unknown objects 1 x 1 x 1.

Class map: vehicle, bus -> vehicle; pedestrian -> pedestrian; cyclist, motorcyclist,
riderless_bicycle -> cyclist; static, background, construction, unknown -> static. AV2 uses
`unknown` for real but unclassified objects, which we keep as obstacles (`static`) rather than drop.
Any other object type is refused. Timestamps are the scenario's `start_timestamp` plus one interval
per step, the interval being (end - start) / (num_timestamps - 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from andon.errors import BadInput
from andon.scenarios.importers.av2_map import read_av2_map
from andon.scenarios.importers.common import require_file
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import Frame, wrap_angle

NAME = "av2-forecasting"
VERSION = "1"
CLASS_MAP: dict[str, str] = {
    "vehicle": "vehicle", "bus": "vehicle",
    "pedestrian": "pedestrian",
    "cyclist": "cyclist", "motorcyclist": "cyclist", "riderless_bicycle": "cyclist",
    "static": "static", "background": "static", "construction": "static", "unknown": "static",
}
SIZE_M: dict[str, tuple[float, float, float]] = {  # (length, width, height) [m] per AV2 object type
    "vehicle": (4.5, 2.0, 1.6), "bus": (12.0, 2.6, 3.2), "pedestrian": (0.6, 0.6, 1.75),
    "cyclist": (1.8, 0.7, 1.7), "motorcyclist": (1.8, 0.7, 1.7), "riderless_bicycle": (1.8, 0.7, 1.1),
    "static": (1.0, 1.0, 1.0), "background": (1.0, 1.0, 1.0), "construction": (1.0, 1.0, 1.0),
    "unknown": (1.0, 1.0, 1.0),
}
EGO_TRACK_ID = "AV"
COLUMNS = ("observed", "track_id", "object_type", "timestep", "position_x", "position_y", "heading",
           "velocity_x", "velocity_y", "scenario_id", "start_timestamp", "end_timestamp",
           "num_timestamps", "focal_track_id", "city")
NUMERIC = ("timestep", "position_x", "position_y", "heading", "velocity_x", "velocity_y",
           "start_timestamp", "end_timestamp", "num_timestamps")
TAGS = frozenset({"forecasting"})


def read(path: Path) -> list[ImportedLog]:
    """Read a scenario parquet file, a scenario folder, or a folder of scenario folders.

    Raises:
        BadInput: naming the file and the problem for missing, unreadable or malformed files.
    """
    path = Path(path)
    if path.is_file():
        return [read_scenario(path)]
    if not path.is_dir():
        raise BadInput(f"{path}: no such file or folder; point at an AV2 scenario folder or its parquet file")
    files = sorted(path.glob("scenario_*.parquet")) or sorted(path.glob("*/scenario_*.parquet"))
    if not files:
        raise BadInput(f"{path}: no scenario_<id>.parquet here or in its subfolders; point at AV2 "
                       f"motion-forecasting scenario folders")
    return [read_scenario(file) for file in files]


def read_scenario(parquet: Path) -> ImportedLog:
    """One scenario as a log of 10 Hz frames in the AV's ego frame."""
    table = _load_table(parquet)
    scenario_id = str(table["scenario_id"].iat[0])
    map_path = parquet.parent / f"log_map_archive_{scenario_id}.json"
    road_map = read_av2_map(require_file(map_path, f"vector map of scenario {scenario_id}"))

    start_ns = int(round(float(table["start_timestamp"].iat[0])))
    n_steps = int(table["num_timestamps"].iat[0])
    step_ns = int(round((float(table["end_timestamp"].iat[0]) - start_ns) / max(n_steps - 1, 1)))
    ego = table[table["track_id"] == EGO_TRACK_ID].set_index("timestep")[["position_x", "position_y", "heading"]]
    steps = np.unique(table["timestep"].to_numpy())
    missing = np.setdiff1d(steps, ego.index.to_numpy())
    if len(missing):
        raise BadInput(f"{parquet}: the ego track {EGO_TRACK_ID!r} is missing at timesteps "
                       f"{missing[:5].tolist()}; every frame needs an ego pose")
    ego = ego.loc[steps]
    ego["ego_yaw"] = wrap_angle(ego["heading"].to_numpy())
    agents = table[table["track_id"] != EGO_TRACK_ID].sort_values(["timestep", "track_id"], kind="stable")
    boxes, velocities = _to_ego_frame(agents, ego)
    classes = agents["object_type"].map(CLASS_MAP).to_numpy()
    track_ids = agents["track_id"].to_numpy()
    bounds = np.searchsorted(agents["timestep"].to_numpy(), np.r_[steps, steps[-1] + 1])
    poses = np.column_stack([ego["position_x"], ego["position_y"], np.zeros(len(ego)), ego["ego_yaw"]])
    frames = [Frame(timestamp_ns=start_ns + int(step) * step_ns, ego_pose=tuple(float(v) for v in pose),
                    boxes=boxes[lo:hi], classes=classes[lo:hi].tolist(), track_ids=track_ids[lo:hi].tolist(),
                    velocities_mps=velocities[lo:hi])
              for step, pose, lo, hi in zip(steps, poses, bounds[:-1], bounds[1:], strict=True)]
    observed = table.loc[table["observed"], "timestep"]
    meta = {"scenario_id": scenario_id, "focal_track_id": str(table["focal_track_id"].iat[0]),
            "city": str(table["city"].iat[0]), "observed_steps": int(observed.max()) + 1 if len(observed) else 0,
            "step_s": step_ns / 1e9}
    return ImportedLog(source=NAME, name=scenario_id, frames=frames, road_map=road_map, meta=meta, tags=TAGS)


def _to_ego_frame(agents: pd.DataFrame, ego: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(N, 7) boxes and (N, 2) velocities [m/s] of every agent row in its timestep's ego frame."""
    pose = ego.loc[agents["timestep"]]
    c, s = np.cos(pose["ego_yaw"].to_numpy()), np.sin(pose["ego_yaw"].to_numpy())
    dx = agents["position_x"].to_numpy() - pose["position_x"].to_numpy()
    dy = agents["position_y"].to_numpy() - pose["position_y"].to_numpy()
    vx, vy = agents["velocity_x"].to_numpy(), agents["velocity_y"].to_numpy()
    size = np.column_stack([agents["object_type"].map({k: v[i] for k, v in SIZE_M.items()}).to_numpy(np.float64)
                            for i in range(3)]).reshape(-1, 3)
    yaw = wrap_angle(agents["heading"].to_numpy() - pose["ego_yaw"].to_numpy())
    boxes = np.column_stack([c * dx + s * dy, -s * dx + c * dy, size[:, 2] / 2, size, yaw]).reshape(-1, 7)
    return boxes, np.column_stack([c * vx + s * vy, -s * vx + c * vy]).reshape(-1, 2)


def _load_table(parquet: Path) -> pd.DataFrame:
    """The scenario's rows, checked: columns, finite numbers, known types, one row per track and step."""
    require_file(parquet, "AV2 scenario parquet file")
    try:
        table = pd.read_parquet(parquet)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise BadInput(f"{parquet}: not a readable parquet file ({exc}); re-download the scenario") from exc
    absent = [c for c in COLUMNS if c not in table.columns]
    if absent:
        raise BadInput(f"{parquet}: missing columns {absent}; expected an AV2 motion-forecasting scenario")
    if table.empty:
        raise BadInput(f"{parquet}: the scenario has no rows")
    for column in NUMERIC:
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)):
            row = int(np.flatnonzero(~np.isfinite(values))[0])
            raise BadInput(f"{parquet}: column {column} holds a non-finite value at row {row} "
                           f"({table[column].iat[row]!r})")
    table["track_id"] = table["track_id"].astype(str)
    unknown = sorted(set(table["object_type"].astype(str)) - set(CLASS_MAP))
    if unknown:
        raise BadInput(f"{parquet}: unknown object types {unknown}; the importer maps {sorted(CLASS_MAP)}")
    for column in ("scenario_id", "start_timestamp", "end_timestamp", "num_timestamps", "focal_track_id", "city"):
        if table[column].nunique() != 1:
            raise BadInput(f"{parquet}: column {column} must hold one value for the whole scenario, "
                           f"got {table[column].unique()[:3].tolist()}")
    duplicated = table.duplicated(["track_id", "timestep"])
    if duplicated.any():
        row = table[duplicated].iloc[0]
        raise BadInput(f"{parquet}: track {row['track_id']} has more than one row at timestep {row['timestep']}")
    if not (table["track_id"] == EGO_TRACK_ID).any():
        raise BadInput(f"{parquet}: no ego track {EGO_TRACK_ID!r}; the importer needs it for the ego pose")
    table["timestep"] = table["timestep"].astype(np.int64)
    table["observed"] = table["observed"].astype(bool)
    return table
