"""Importer of Argoverse 2 sensor-dataset logs (format "av2").

Input: one log directory (`annotations.feather`, `city_SE3_egovehicle.feather`, `sensors/lidar/
<timestamp_ns>.feather`, `map/log_map_archive_*.json`), its annotations.feather, or a directory of
logs; one ImportedLog per log, named by its directory.

Frames: one per annotation timestamp (10 Hz). Cuboids (`tx_m, ty_m, tz_m` centre, `length_m, width_m,
height_m`, heading from `qw, qx, qy, qz`) and lidar points are already in the ego frame (x forward,
y left, z up). A frame whose timestamp has a lidar sweep gets its points (x, y, z stored as float16,
widened exactly to float32; intensity on AV2's 0-255 scale); the others have none. The ego pose is
`city_SE3_egovehicle` at the frame's timestamp (the file has one there for every sweep; between
poses it is interpolated, translation linearly and rotation by normalised quaternion lerp), as
(x, y, z, heading) in the city frame, which is also the map's frame.

Velocities are over the ground, expressed in the ego frame: each track's centre is moved into the
city frame, differenced over time (central where both neighbouring annotations of the track lie
within MAX_DIFFERENCE_GAP_NS, one-sided where only one does, NaN where neither), and rotated back
into the frame's ego axes.

Map: lanes from `lane_segments` (`centerline` where present; otherwise the midline of the left and
right boundaries resampled to equal arc length, as av2-api does) with `is_intersection`; crosswalks
from `pedestrian_crossings` as the polygon edge1 + reversed edge2. A log without a map archive gets
no road map.

Class map (every AV2 sensor category):
    vehicle: REGULAR_VEHICLE, LARGE_VEHICLE, BUS, BOX_TRUCK, TRUCK, TRUCK_CAB, VEHICULAR_TRAILER,
        SCHOOL_BUS, ARTICULATED_BUS, RAILED_VEHICLE
    pedestrian: PEDESTRIAN, OFFICIAL_SIGNALER, STROLLER, WHEELCHAIR, DOG, ANIMAL (AV2's legged and
        walking-pace categories: they share the sidewalk and move at walking speed)
    cyclist: BICYCLE, BICYCLIST, MOTORCYCLE, MOTORCYCLIST, WHEELED_DEVICE, WHEELED_RIDER
    static: BOLLARD, CONSTRUCTION_BARREL, CONSTRUCTION_CONE, SIGN, STOP_SIGN,
        MOBILE_PEDESTRIAN_CROSSING_SIGN, MESSAGE_BOARD_TRAILER, TRAFFIC_LIGHT_TRAILER (the two
        trailers are parked road equipment, not traffic)
Any other category is refused, naming the file and the category.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather

from andon.errors import BadInput
from andon.scenarios.importers.av2_map import read_av2_map
from andon.scenarios.importers.common import require_file, require_finite, yaw_from_quaternion
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import Frame, RoadMap, wrap_angle

NAME = "av2"
VERSION = "1"
CLASS_MAP: dict[str, str] = {
    **dict.fromkeys(("REGULAR_VEHICLE", "LARGE_VEHICLE", "BUS", "BOX_TRUCK", "TRUCK", "TRUCK_CAB",
                     "VEHICULAR_TRAILER", "SCHOOL_BUS", "ARTICULATED_BUS", "RAILED_VEHICLE"), "vehicle"),
    **dict.fromkeys(("PEDESTRIAN", "OFFICIAL_SIGNALER", "STROLLER", "WHEELCHAIR", "DOG", "ANIMAL"), "pedestrian"),
    **dict.fromkeys(("BICYCLE", "BICYCLIST", "MOTORCYCLE", "MOTORCYCLIST", "WHEELED_DEVICE", "WHEELED_RIDER"),
                    "cyclist"),
    **dict.fromkeys(("BOLLARD", "CONSTRUCTION_BARREL", "CONSTRUCTION_CONE", "SIGN", "STOP_SIGN",
                     "MOBILE_PEDESTRIAN_CROSSING_SIGN", "MESSAGE_BOARD_TRAILER", "TRAFFIC_LIGHT_TRAILER"), "static"),
}
ANNOTATIONS = "annotations.feather"
POSES = "city_SE3_egovehicle.feather"
LIDAR_DIR = Path("sensors") / "lidar"
MAP_GLOB = "map/log_map_archive_*.json"
CUBOID_COLUMNS = ("tx_m", "ty_m", "tz_m", "length_m", "width_m", "height_m", "qw", "qx", "qy", "qz")
POSE_COLUMNS = ("timestamp_ns", "qw", "qx", "qy", "qz", "tx_m", "ty_m", "tz_m")
POINT_COLUMNS = ("x", "y", "z", "intensity")
# Neighbouring annotations of a track further apart than this are not differenced: the track was
# lost in between, and a difference over the gap would smear whatever it did there.
MAX_DIFFERENCE_GAP_NS = 1_000_000_000
_CITY = re.compile(r"____([A-Z]+)_city_(\d+)\.json$")


def read(path: Path) -> list[ImportedLog]:
    """Read the AV2 sensor log at `path`, or every log in the directory `path`.

    Raises:
        BadInput: naming the file and the problem, for a missing, truncated or malformed file, a
            cuboid with NaN, or an unknown category.
    """
    path = Path(path)
    if path.name == ANNOTATIONS and path.is_file():
        path = path.parent
    if (path / ANNOTATIONS).is_file():
        return [_read_log(path)]
    logs = sorted(p.parent for p in path.glob(f"*/{ANNOTATIONS}")) if path.is_dir() else []
    if not logs:
        raise BadInput(f"{path / ANNOTATIONS}: missing; PATH must be an AV2 sensor log directory (holding "
                       f"{ANNOTATIONS}) or a directory of them")
    return [_read_log(log) for log in logs]


def _read_log(log_dir: Path) -> ImportedLog:
    annotations = log_dir / ANNOTATIONS
    table = _read_table(annotations, ("timestamp_ns", "track_uuid", "category", *CUBOID_COLUMNS))
    if table.num_rows == 0:
        raise BadInput(f"{annotations}: no cuboids; an AV2 log needs at least one annotated timestamp")
    stamps_ns = table.column("timestamp_ns").to_numpy().astype(np.int64)
    cuboid = {name: table.column(name).to_numpy().astype(np.float64) for name in CUBOID_COLUMNS}
    require_finite(annotations, "cuboid columns", np.column_stack(list(cuboid.values())))
    categories = np.asarray(table.column("category").to_pylist(), dtype=object)
    track_ids = np.asarray(table.column("track_uuid").to_pylist(), dtype=object)
    unknown = sorted(set(categories.tolist()) - set(CLASS_MAP))
    if unknown:
        raise BadInput(f"{annotations}: unknown AV2 categories {unknown}; known categories are {sorted(CLASS_MAP)}")

    frame_stamps_ns, frame_of_row = np.unique(stamps_ns, return_inverse=True)
    translation, rotation = _poses_at(log_dir / POSES, frame_stamps_ns)
    centre = np.column_stack([cuboid["tx_m"], cuboid["ty_m"], cuboid["tz_m"]])
    yaw = yaw_from_quaternion(cuboid["qw"], cuboid["qx"], cuboid["qy"], cuboid["qz"])
    boxes = np.column_stack([centre, cuboid["length_m"], cuboid["width_m"], cuboid["height_m"], yaw])
    velocities = _velocities(centre, stamps_ns, track_ids, frame_of_row, translation, rotation)
    ego_yaw = wrap_angle(np.arctan2(rotation[:, 1, 0], rotation[:, 0, 0]))
    sweeps = _sweeps(log_dir / LIDAR_DIR)

    order = np.argsort(frame_of_row, kind="stable")
    bounds = np.searchsorted(frame_of_row[order], np.arange(len(frame_stamps_ns) + 1))
    frames = []
    for k, stamp in enumerate(frame_stamps_ns.tolist()):
        rows = order[bounds[k]:bounds[k + 1]]
        sweep = sweeps.get(stamp)
        frames.append(Frame(
            timestamp_ns=stamp,
            ego_pose=(*(float(v) for v in translation[k]), float(ego_yaw[k])),
            boxes=boxes[rows], classes=[CLASS_MAP[c] for c in categories[rows]],
            track_ids=[str(t) for t in track_ids[rows]], velocities_mps=velocities[rows],
            points=None if sweep is None else _read_points(sweep),
        ))
    road_map, map_file = _read_map(log_dir)
    city = _CITY.search(map_file.name) if map_file else None
    names, counts = np.unique(categories.astype(str), return_counts=True)
    meta = {"dataset": "Argoverse 2 sensor", "log_id": log_dir.name, "city": city.group(1) if city else None,
            "map_file": map_file.name if map_file else None, "n_sweeps": len(sweeps),
            "n_frames_with_points": sum(f.points is not None for f in frames), "intensity": "0-255",
            "av2_categories": {str(n): int(c) for n, c in zip(names, counts, strict=True)}}
    return ImportedLog(source=NAME, name=log_dir.name, frames=frames, road_map=road_map, meta=meta)


def _read_table(path: Path, columns: tuple[str, ...]) -> pa.Table:
    """A feather file's columns, refusing a missing or unreadable file, missing columns and nulls."""
    require_file(path, "AV2 file")
    try:
        table = feather.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BadInput(f"{path}: not a readable feather file ({exc}); check it is complete") from exc
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise BadInput(f"{path}: missing columns {missing}; expected {list(columns)}")
    nulls = [c for c in columns if table.column(c).null_count]
    if nulls:
        raise BadInput(f"{path}: columns {nulls} hold nulls")
    return table.select(list(columns))


def _quaternion_matrices(qw: np.ndarray, qx: np.ndarray, qy: np.ndarray, qz: np.ndarray) -> np.ndarray:
    """(K, 3, 3) rotation matrices of (normalised) quaternions."""
    norm = np.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
    w, x, y, z = qw / norm, qx / norm, qy / norm, qz / norm
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1),
    ], axis=-2)


def _poses_at(path: Path, stamps_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """City-frame ego translation (K, 3) and rotation (K, 3, 3) at each timestamp."""
    table = _read_table(path, POSE_COLUMNS)
    values = {name: table.column(name).to_numpy() for name in POSE_COLUMNS}
    pose_ns = values.pop("timestamp_ns").astype(np.int64)
    pose = np.column_stack([values[c].astype(np.float64) for c in ("tx_m", "ty_m", "tz_m", "qw", "qx", "qy", "qz")])
    require_finite(path, "pose columns", pose)
    if len(pose_ns) == 0 or stamps_ns[0] < pose_ns.min() or stamps_ns[-1] > pose_ns.max():
        raise BadInput(f"{path}: ego poses span [{pose_ns.min(initial=0)}, {pose_ns.max(initial=0)}] ns but the "
                       f"annotations span [{stamps_ns[0]}, {stamps_ns[-1]}] ns; the pose file does not cover the log")
    order = np.argsort(pose_ns, kind="stable")
    pose_ns, pose = pose_ns[order], pose[order]
    after = np.clip(np.searchsorted(pose_ns, stamps_ns, side="left"), 0, len(pose_ns) - 1)
    before = np.maximum(after - 1, 0)
    span = (pose_ns[after] - pose_ns[before]).astype(np.float64)
    exact = pose_ns[after] == stamps_ns
    weight = np.where(exact | (span == 0), 1.0, (stamps_ns - pose_ns[before]) / np.where(span == 0, 1.0, span))
    q0, q1 = pose[before, 3:], pose[after, 3:]
    q1 = np.where(np.sum(q0 * q1, axis=1, keepdims=True) < 0, -q1, q1)  # the shorter way round
    quat = (1 - weight)[:, None] * q0 + weight[:, None] * q1
    translation = (1 - weight)[:, None] * pose[before, :3] + weight[:, None] * pose[after, :3]
    return translation, _quaternion_matrices(*quat.T)


def _velocities(centre: np.ndarray, stamps_ns: np.ndarray, track_ids: np.ndarray, frame_of_row: np.ndarray,
                translation: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(R, 2) ground velocities [m/s] of every cuboid row in its frame's ego axes; NaN where unknown."""
    city = np.einsum("rij,rj->ri", rotation[frame_of_row], centre) + translation[frame_of_row]
    _, track = np.unique(track_ids.astype(str), return_inverse=True)
    order = np.lexsort((stamps_ns, track))
    t, tr, pos = stamps_ns[order], track[order], city[order]
    near = (tr[1:] == tr[:-1]) & (t[1:] - t[:-1] <= MAX_DIFFERENCE_GAP_NS)  # row i and i+1 pair up
    has_prev = np.concatenate([[False], near])
    has_next = np.concatenate([near, [False]])
    index = np.arange(len(t))
    prev, nxt = np.where(has_prev, index - 1, index), np.where(has_next, index + 1, index)
    dt_s = (t[nxt] - t[prev]) / 1e9
    velocity_city = np.full_like(pos, np.nan)
    moving = nxt != prev
    velocity_city[moving] = (pos[nxt[moving]] - pos[prev[moving]]) / dt_s[moving, None]
    velocity = np.empty_like(velocity_city)
    velocity[order] = velocity_city
    # City to ego axes: the transpose of each frame's ego-to-city rotation.
    return np.einsum("rji,rj->ri", rotation[frame_of_row], velocity)[:, :2]


def _sweeps(lidar_dir: Path) -> dict[int, Path]:
    if not lidar_dir.is_dir():
        return {}
    return {int(p.stem): p for p in lidar_dir.glob("*.feather") if p.stem.isdigit()}


def _read_points(path: Path) -> np.ndarray:
    table = _read_table(path, POINT_COLUMNS)
    points = np.column_stack([table.column(c).to_numpy().astype(np.float32) for c in POINT_COLUMNS])
    return require_finite(path, "lidar points", points)


def _read_map(log_dir: Path) -> tuple[RoadMap | None, Path | None]:
    archives = sorted(log_dir.glob(MAP_GLOB))
    if not archives:
        return None, None
    return read_av2_map(archives[0]), archives[0]
