"""Importer of nuScenes LIDAR_TOP keyframes as indexed by mmdetection3d (format "nuscenes").

Input: a directory holding mmdetection3d (>= 1.0) info pickles (`*.pkl`, each a `data_list` of
keyframe samples) and the sweeps they name (`*.pcd.bin`: float32 records x, y, z, intensity, ring in
the lidar frame), or one info pickle. Each keyframe sample becomes one ImportedLog with one frame,
named by its lidar file (without `.pcd.bin`).

Frames: points and boxes come in the lidar frame and move to the ego frame (nuScenes' ego frame:
x forward, y left, z up, at the rear axle on the ground) with `lidar2ego`; a box's heading is its
length axis carried through the same rotation (the yaw plus the rotation's heading). Boxes are
`[x, y, z_centre, l, w, h, yaw]`: mmdetection3d stores nuScenes' geometric centres. Velocities are
the info's `velocity` (vx, vy in the lidar frame, over the ground) rotated into the ego frame; NaN
where nuScenes has none. The ego pose is `ego2global`'s translation and heading. The timestamp is the
info's `timestamp` (seconds, from nuScenes' microseconds) as nanoseconds. Intensity keeps nuScenes'
0-255 scale; the ring index is dropped.

Class map: car, truck, bus, trailer, construction_vehicle -> vehicle; pedestrian -> pedestrian;
bicycle, motorcycle -> cyclist; barrier, traffic_cone -> static. Label -1 (an annotation outside the
ten detection classes, e.g. an animal or a pushable object) is dropped. Boxes with no lidar or radar
points (`bbox_3d_isvalid` false) are kept: they are real, labelled objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.scenarios.importers.common import load_pickle, read_float32_records, require_finite
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import Frame, wrap_angle

NAME = "nuscenes"
VERSION = "1"
CLASS_MAP: dict[str, str] = {
    "car": "vehicle", "truck": "vehicle", "bus": "vehicle", "trailer": "vehicle", "construction_vehicle": "vehicle",
    "pedestrian": "pedestrian",
    "bicycle": "cyclist", "motorcycle": "cyclist",
    "barrier": "static", "traffic_cone": "static",
}
# mmdetection3d's NuScenesDataset label order, used when an info file carries no `categories` table.
LABELS: tuple[str, ...] = ("car", "truck", "trailer", "bus", "construction_vehicle", "bicycle", "motorcycle",
                           "pedestrian", "traffic_cone", "barrier")
IGNORED_LABEL = -1
POINT_COLUMNS = 5  # x, y, z [m], intensity, ring
LIDAR_SUFFIX = ".pcd.bin"


def read(path: Path) -> list[ImportedLog]:
    """Read every keyframe sample of the info pickle(s) at `path`.

    Raises:
        BadInput: naming the file and the problem, for a missing, truncated or malformed file, a box
            with NaN, or a class outside nuScenes' ten detection classes.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".pkl":
        infos = [path]
    elif path.is_dir():
        infos = sorted(path.glob("*.pkl"))
        if not infos:
            raise BadInput(f"{path}: no mmdetection3d info pickle (*.pkl) in this directory")
    else:
        raise BadInput(f"{path}: not a directory or an info .pkl file; give the nuScenes sample directory")
    return [log for info in infos for log in _read_info(info)]


def _read_info(info: Path) -> list[ImportedLog]:
    data = load_pickle(info, "mmdetection3d nuScenes info pickle")
    samples = data.get("data_list") if isinstance(data, dict) else None
    if not isinstance(samples, list) or not all(isinstance(s, dict) for s in samples):
        raise BadInput(f"{info}: expected a dict with a `data_list` of samples (mmdetection3d >= 1.0 info format)")
    try:
        categories = (data.get("metainfo") or {}).get("categories") or {name: i for i, name in enumerate(LABELS)}
        names = {int(index): str(name) for name, index in categories.items()}
    except (AttributeError, TypeError, ValueError) as exc:
        raise BadInput(f"{info}: metainfo.categories must map class names to label indices ({exc})") from exc
    return [_read_sample(info, sample, names) for sample in samples]


def _read_sample(info: Path, sample: dict[str, Any], names: dict[int, str]) -> ImportedLog:
    try:
        lidar = info.parent / Path(str(sample["lidar_points"]["lidar_path"])).name
        lidar2ego = np.asarray(sample["lidar_points"]["lidar2ego"], dtype=np.float64)
        ego2global = np.asarray(sample["ego2global"], dtype=np.float64)
        timestamp_s = float(sample["timestamp"])
        instances = list(sample["instances"])
        raw = _rows([inst["bbox_3d"] for inst in instances], 7)
        labels = np.asarray([inst["bbox_label_3d"] for inst in instances], dtype=np.int64)
        velocity = _rows([inst.get("velocity", [np.nan, np.nan]) for inst in instances], 2)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{info}: a sample is not an mmdetection3d nuScenes sample: bad or missing {exc}") from exc
    where = f"sample {sample.get('token', sample.get('sample_idx'))}"
    for name, matrix in (("lidar2ego", lidar2ego), ("ego2global", ego2global)):
        if matrix.shape != (4, 4):
            raise BadInput(f"{info}: {name} of {where} must be 4x4, got shape {matrix.shape}")
        require_finite(info, f"{name} of {where}", matrix)
    if raw.shape[1:] != (7,) or velocity.shape[1:] != (2,):
        raise BadInput(f"{info}: {where}: bbox_3d must hold 7 numbers [x, y, z, l, w, h, yaw] and velocity 2, "
                       f"got {raw.shape[1:]} and {velocity.shape[1:]}")
    if not np.isfinite(timestamp_s):
        raise BadInput(f"{info}: timestamp of {where} is {timestamp_s}")
    keep = labels != IGNORED_LABEL
    unknown = sorted(set(labels[keep].tolist()) - set(names))
    if unknown:
        raise BadInput(f"{info}: unknown label indices {unknown} in {where}; known: {names}")
    unmapped = sorted({names[label] for label in labels[keep].tolist()} - set(CLASS_MAP))
    if unmapped:
        raise BadInput(f"{info}: unknown nuScenes classes {unmapped} in {where}; known classes are {sorted(CLASS_MAP)}")
    raw, labels, velocity = raw[keep], labels[keep], velocity[keep]
    require_finite(info, f"3D boxes of {where}", raw)
    points = read_float32_records(lidar, POINT_COLUMNS, "nuScenes lidar sweep (float32 x, y, z, intensity, ring)")
    rotation, translation = lidar2ego[:3, :3], lidar2ego[:3, 3]
    xyz = points[:, :3].astype(np.float64) @ rotation.T + translation
    frame = Frame(
        timestamp_ns=int(round(timestamp_s * 1e6)) * 1000,  # nuScenes clocks tick in microseconds
        ego_pose=_pose(ego2global),
        boxes=lidar_boxes_to_ego(raw, lidar2ego),
        classes=[CLASS_MAP[names[label]] for label in labels.tolist()],
        track_ids=[str(i) for i in np.flatnonzero(keep).tolist()],
        points=np.column_stack([xyz, points[:, 3]]).astype(np.float32),
        velocities_mps=(np.column_stack([velocity, np.zeros(len(velocity))]) @ rotation.T)[:, :2],
    )
    token = sample.get("token")
    meta = {"dataset": "nuScenes", "token": None if token is None else str(token), "info_file": info.name,
            "lidar_file": lidar.name, "intensity": "0-255",
            "nuscenes_classes": [names[label] for label in labels.tolist()]}
    return ImportedLog(source=NAME, name=lidar.name.removesuffix(LIDAR_SUFFIX), frames=[frame], meta=meta)


def lidar_boxes_to_ego(boxes: np.ndarray, lidar2ego: np.ndarray) -> np.ndarray:
    """Move (N, 7) boxes (x, y, z_centre, l, w, h, yaw) from the lidar frame to the ego frame."""
    rotation, translation = lidar2ego[:3, :3], lidar2ego[:3, 3]
    centre = boxes[:, :3] @ rotation.T + translation
    heading = np.stack([np.cos(boxes[:, 6]), np.sin(boxes[:, 6]), np.zeros(len(boxes))], axis=1) @ rotation.T
    yaw = wrap_angle(np.arctan2(heading[:, 1], heading[:, 0]))
    return np.column_stack([centre, boxes[:, 3:6], yaw]).astype(np.float64)


def _pose(ego2global: np.ndarray) -> tuple[float, float, float, float]:
    x, y, z = ego2global[:3, 3]
    return float(x), float(y), float(z), float(wrap_angle(np.arctan2(ego2global[1, 0], ego2global[0, 0])))


def _rows(values: list[Any], width: int) -> np.ndarray:
    """Stack per-instance lists as (N, k) float64 (k checked by the caller); (0, width) when empty."""
    return np.asarray(values, dtype=np.float64).reshape(len(values), -1) if values else np.zeros((0, width))
