"""Importer of KITTI 3D-object frames as indexed by mmdetection3d (format "kitti").

Input: a directory holding mmdetection3d info pickles (`*.pkl`, each a `data_list` of samples) and the
velodyne files they name (`*.bin`: float32 records x, y, z, reflectance), or one `.bin` file with its
info pickle beside it under the same stem. Each sample becomes one ImportedLog with one frame at
timestamp 0 and ego pose (0, 0, 0, 0), named by the velodyne file's stem.

Frames: KITTI's velodyne frame (x forward, y left, z up) is taken as the ego frame, so its origin is
the lidar, about 1.73 m above the road, not the ground. Points keep KITTI's reflectance in [0, 1] as
intensity. Boxes come as `[x, y, z_bottom, l, h, w, rot_y]` in the rectified camera frame (x right,
y down, z forward) and are moved with the inverse of the sample's `lidar2cam`: the centre is the
bottom centre raised by h/2 (camera y points down), sizes become (l, w, h), and the heading is the
box's length axis carried through the same rotation, which is `-rot_y - pi/2` up to the small
rotation of the calibration. No velocities (one frame).

Class map (mmdetection3d label index -> KITTI class -> andon class): Car, Van, Truck, Tram -> vehicle;
Pedestrian, Person_sitting -> pedestrian; Cyclist -> cyclist; Misc -> static. Label -1 (DontCare:
regions too far or too occluded to label) is dropped. Any other label is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.scenarios.importers.common import load_pickle, read_float32_records, require_finite
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import Frame, wrap_angle

NAME = "kitti"
VERSION = "1"
CLASS_MAP: dict[str, str] = {
    "Car": "vehicle", "Van": "vehicle", "Truck": "vehicle", "Tram": "vehicle",
    "Pedestrian": "pedestrian", "Person_sitting": "pedestrian",
    "Cyclist": "cyclist",
    "Misc": "static",
}
# mmdetection3d's KittiDataset label order (METAINFO["classes"]); -1 marks DontCare.
LABELS: tuple[str, ...] = ("Pedestrian", "Cyclist", "Car", "Van", "Truck", "Person_sitting", "Tram", "Misc")
DONT_CARE = -1
POINT_COLUMNS = 4  # x, y, z [m], reflectance


def read(path: Path) -> list[ImportedLog]:
    """Read every sample of the info pickles under `path` (or the one sample of a `.bin` file).

    Raises:
        BadInput: naming the file and the problem, for a missing, truncated or malformed file, a box
            with NaN, or a label outside mmdetection3d's KITTI classes.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".bin":
        info = path.with_suffix(".pkl")
        logs = [_read_sample(info, s) for s in _samples(info) if _lidar_name(info, s) == path.name]
        if not logs:
            raise BadInput(f"{info}: no sample names {path.name}; give the directory to read every sample")
        return logs
    if not path.is_dir():
        raise BadInput(f"{path}: not a directory or a .bin file; give the KITTI sample directory "
                       f"(info .pkl files and velodyne .bin files)")
    infos = sorted(path.glob("*.pkl"))
    if not infos:
        raise BadInput(f"{path}: no mmdetection3d info pickle (*.pkl) in this directory")
    return [_read_sample(info, sample) for info in infos for sample in _samples(info)]


def _samples(info: Path) -> list[dict[str, Any]]:
    data = load_pickle(info, "mmdetection3d KITTI info pickle")
    samples = data.get("data_list") if isinstance(data, dict) else None
    if not isinstance(samples, list) or not all(isinstance(s, dict) for s in samples):
        raise BadInput(f"{info}: expected a dict with a `data_list` of samples (mmdetection3d >= 1.0 info format)")
    return samples


def _lidar_name(info: Path, sample: dict[str, Any]) -> str:
    try:
        return Path(str(sample["lidar_points"]["lidar_path"])).name
    except (KeyError, TypeError) as exc:
        raise BadInput(f"{info}: a sample lacks lidar_points.lidar_path ({exc})") from exc


def _read_sample(info: Path, sample: dict[str, Any]) -> ImportedLog:
    lidar = info.parent / _lidar_name(info, sample)
    points = read_float32_records(lidar, POINT_COLUMNS, "KITTI velodyne file (float32 x, y, z, reflectance)")
    try:
        lidar2cam = np.asarray(sample["images"]["CAM2"]["lidar2cam"], dtype=np.float64)
        instances = list(sample["instances"])
        raw = _rows([inst["bbox_3d"] for inst in instances], 7)
        labels = np.asarray([inst["bbox_label_3d"] for inst in instances], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{info}: sample for {lidar.name} is not an mmdetection3d KITTI sample: "
                       f"bad or missing {exc}") from exc
    if raw.shape[1:] != (7,):
        raise BadInput(f"{info}: bbox_3d of {lidar.name} must hold 7 numbers [x, y, z, l, h, w, rot_y], "
                       f"got {raw.shape[1]}")
    if lidar2cam.shape != (4, 4):
        raise BadInput(f"{info}: lidar2cam of {lidar.name} must be 4x4, got shape {lidar2cam.shape}")
    require_finite(info, f"lidar2cam of {lidar.name}", lidar2cam)
    keep = labels != DONT_CARE
    unknown = sorted(set(labels[keep & ((labels < 0) | (labels >= len(LABELS)))].tolist()))
    if unknown:
        raise BadInput(f"{info}: unknown label indices {unknown} for {lidar.name}; KITTI labels are "
                       f"0..{len(LABELS) - 1} ({', '.join(LABELS)}) or -1 (DontCare)")
    raw, labels = raw[keep], labels[keep]
    require_finite(info, f"3D boxes of {lidar.name}", raw)
    boxes = camera_boxes_to_lidar(raw, lidar2cam)
    frame = Frame(
        timestamp_ns=0, ego_pose=(0.0, 0.0, 0.0, 0.0), boxes=boxes,
        classes=[CLASS_MAP[LABELS[label]] for label in labels.tolist()],
        track_ids=[str(i) for i in np.flatnonzero(keep).tolist()],
        points=points.astype(np.float32, copy=False),
    )
    sample_idx = sample.get("sample_idx")
    meta = {"dataset": "KITTI", "sample_idx": None if sample_idx is None else int(sample_idx), "info_file": info.name,
            "lidar_file": lidar.name, "ego_frame": "velodyne", "intensity": "reflectance [0, 1]",
            "kitti_classes": [LABELS[label] for label in labels.tolist()]}
    return ImportedLog(source=NAME, name=lidar.stem, frames=[frame], meta=meta)


def camera_boxes_to_lidar(boxes_cam: np.ndarray, lidar2cam: np.ndarray) -> np.ndarray:
    """Move KITTI boxes `[x, y, z_bottom, l, h, w, rot_y]` from the rectified camera frame to the lidar.

    Args:
        boxes_cam: (N, 7) boxes in the rectified camera frame (x right, y down, z forward) [m, rad].
        lidar2cam: (4, 4) homogeneous transform from the lidar frame to that camera frame.

    Returns:
        (N, 7) boxes (x, y, z_centre, l, w, h, yaw) in the lidar frame.
    """
    cam2lidar = np.linalg.inv(lidar2cam)
    rotation, translation = cam2lidar[:3, :3], cam2lidar[:3, 3]
    x, y_bottom, z, length, height, width, rot_y = boxes_cam.T
    centre_cam = np.stack([x, y_bottom - 0.5 * height, z], axis=1)  # camera y points down
    centre = centre_cam @ rotation.T + translation
    # KITTI's length axis at rot_y is (cos, 0, -sin) in the camera frame (rotation about camera y).
    heading_cam = np.stack([np.cos(rot_y), np.zeros_like(rot_y), -np.sin(rot_y)], axis=1)
    heading = heading_cam @ rotation.T
    yaw = wrap_angle(np.arctan2(heading[:, 1], heading[:, 0]))
    return np.column_stack([centre, length, width, height, yaw]).astype(np.float64)


def _rows(values: list[Any], width: int) -> np.ndarray:
    """Stack per-instance lists as (N, k) float64 (k checked by the caller); (0, width) when empty."""
    return np.asarray(values, dtype=np.float64).reshape(len(values), -1) if values else np.zeros((0, width))
