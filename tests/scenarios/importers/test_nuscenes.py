"""nuScenes importer: the real keyframe against its own point counts, crafted bad copies, the catalog."""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from andon.errors import BadInput
from andon.scenarios.geometry import count_points_in_boxes, points_in_boxes
from andon.scenarios.importers import nuscenes
from andon.scenarios.records import CLASSES, wrap_angle
from andon.workspace import Workspace
from tests.scenarios.importers._perception import check_round_trip

INFO = "n015-2018-07-24-11-22-45+0800.pkl"
SWEEP = "n015-2018-07-24-11-22-45+0800__LIDAR_TOP__1532402927647951.pcd.bin"


@pytest.fixture
def sample_dir(shared_data: Path) -> Path:
    return shared_data / "perception" / "nuscenes_mini_sample"


def _info(folder: Path) -> dict[str, Any]:
    with (folder / INFO).open("rb") as handle:
        return pickle.load(handle)


def _labelled(folder: Path) -> list[dict[str, Any]]:
    return [i for i in _info(folder)["data_list"][0]["instances"] if i["bbox_label_3d"] != -1]


@pytest.mark.realdata
def test_real_keyframe_frame_classes_and_time(sample_dir: Path) -> None:
    (log,) = nuscenes.read(sample_dir)
    assert log.source == "nuscenes" and log.name == SWEEP.removesuffix(".pcd.bin")
    (frame,) = log.frames
    assert frame.timestamp_ns == 1532402927647951 * 1000  # the sweep's microsecond clock, in ns
    raw = np.fromfile(sample_dir / SWEEP, np.float32).reshape(-1, 5)
    assert frame.points.shape == (len(raw), 4) == (34688, 4)
    np.testing.assert_array_equal(frame.points[:, 3], raw[:, 3])
    names = {v: k for k, v in _info(sample_dir)["metainfo"]["categories"].items()}
    instances = _labelled(sample_dir)
    assert len(frame.boxes) == len(instances) == 68  # 69 minus one annotation outside the 10 classes
    assert frame.classes == [nuscenes.CLASS_MAP[names[i["bbox_label_3d"]]] for i in instances]
    assert {"vehicle", "pedestrian", "static", "cyclist"} == set(frame.classes)
    x, y, _, yaw = frame.ego_pose
    assert (x, y) == pytest.approx((411.3039, 1180.8904), abs=1e-3)
    assert -np.pi < yaw <= np.pi


@pytest.mark.realdata
def test_points_and_boxes_move_together_into_the_ego_frame(sample_dir: Path) -> None:
    (frame,) = nuscenes.read(sample_dir / INFO)[0].frames
    info = _info(sample_dir)["data_list"][0]
    lidar2ego = np.array(info["lidar_points"]["lidar2ego"])
    raw = np.fromfile(sample_dir / SWEEP, np.float32).reshape(-1, 5)
    np.testing.assert_allclose(frame.points[:, :3], raw[:, :3] @ lidar2ego[:3, :3].T + lidar2ego[:3, 3], atol=1e-4)
    boxes = np.array([i["bbox_3d"] for i in _labelled(sample_dir)])
    np.testing.assert_allclose(frame.boxes[:, :3], boxes[:, :3] @ lidar2ego[:3, :3].T + lidar2ego[:3, 3], atol=1e-9)
    # The lidar is turned a quarter turn to the left of the car's nose: ego yaw = lidar yaw - pi/2.
    np.testing.assert_allclose(wrap_angle(frame.boxes[:, 6] - boxes[:, 6] + np.pi / 2), 0, atol=0.01)
    np.testing.assert_array_equal(frame.boxes[:, 3:6], boxes[:, 3:6])
    velocity = np.array([i["velocity"] for i in _labelled(sample_dir)])
    speed = np.hypot(*velocity.T)
    known = np.isfinite(speed)
    assert 0 < known.sum() < len(speed)  # nuScenes has no velocity for some boxes: those stay NaN
    assert np.all(np.isnan(frame.velocities_mps[~known]))
    error = np.abs(frame.velocities_mps[known, 0] - velocity[known, 1])
    assert np.all(error <= 0.03 * speed[known] + 1e-9)  # ego vx = lidar vy
    np.testing.assert_allclose(np.hypot(*frame.velocities_mps[known].T), speed[known], rtol=1e-3)


@pytest.mark.realdata
def test_boxes_contain_their_listed_points(sample_dir: Path) -> None:
    (frame,) = nuscenes.read(sample_dir)[0].frames
    listed = np.array([i["num_lidar_pts"] for i in _labelled(sample_dir)])
    counts = count_points_in_boxes(frame.points, frame.boxes)
    assert np.all(counts[listed > 0] > 0)
    # nuScenes counted the same sweep's points when it labelled: nearly every box agrees exactly.
    assert np.mean(counts == listed) > 0.85
    np.testing.assert_allclose(counts, listed, rtol=0.05, atol=2)


@pytest.mark.realdata
def test_box_z_is_the_centre_not_the_bottom(sample_dir: Path) -> None:
    (frame,) = nuscenes.read(sample_dir)[0].frames
    boxes = frame.boxes
    tall = boxes.copy()
    tall[:, 5] *= 3  # three heights around z: points on and above the object, and ground below
    point_idx, box_idx = points_in_boxes(frame.points, tall)
    height = (frame.points[point_idx, 2] - boxes[box_idx, 2]) / boxes[box_idx, 5]
    assert np.mean(np.abs(height) <= 0.5) > 0.8  # most points lie within half a height of z
    assert np.mean(height > 0.5) < 0.05  # hardly any above the box
    as_bottom = boxes.copy()
    as_bottom[:, 2] += boxes[:, 5] / 2  # what z-as-bottom would mean
    assert count_points_in_boxes(frame.points, as_bottom).sum() < 0.7 * count_points_in_boxes(frame.points, boxes).sum()


def test_class_map_covers_every_label() -> None:
    assert set(nuscenes.LABELS) == set(nuscenes.CLASS_MAP) and set(nuscenes.CLASS_MAP.values()) == set(CLASSES)


@pytest.mark.realdata
def test_catalog_round_trip(workspace: Workspace, sample_dir: Path) -> None:
    (log,) = nuscenes.read(sample_dir)
    check_round_trip(workspace, log, nuscenes.NAME, nuscenes.VERSION, str(sample_dir), 0)


# ----- bad input: copies of the real sample, broken one way each -------------------------------------------


@pytest.fixture
def sample_copy(sample_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "nuscenes"
    target.mkdir()
    for name in (INFO, SWEEP):
        shutil.copyfile(sample_dir / name, target / name)
    return target


def _edit_info(folder: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    info = _info(folder)
    edit(info)
    (folder / INFO).write_bytes(pickle.dumps(info))


def _instance(info: dict[str, Any], index: int) -> dict[str, Any]:
    return info["data_list"][0]["instances"][index]


BREAKAGES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "garbage pickle": (lambda d: (d / INFO).write_bytes(b"\x80\x05garbage" * 20), INFO, "not a readable"),
    "truncated pickle": (lambda d: (d / INFO).write_bytes((d / INFO).read_bytes()[:3000]), INFO, "not a readable"),
    "missing sweep": (lambda d: (d / SWEEP).unlink(), SWEEP, "missing"),
    "sweep not whole records": (lambda d: (d / SWEEP).write_bytes((d / SWEEP).read_bytes()[:-8]), SWEEP,
                                "not a whole number"),
    "NaN in a box": (lambda d: _edit_info(d, lambda i: _instance(i, 3)["bbox_3d"].__setitem__(2, float("nan"))),
                     INFO, "NaN"),
    "unknown class": (lambda d: _edit_info(d, lambda i: i["metainfo"].update(categories={
        **{k: v for k, v in i["metainfo"]["categories"].items() if k != "car"}, "hovercraft": 0})), INFO, "hovercraft"),
    "unknown label": (lambda d: _edit_info(d, lambda i: _instance(i, 0).update(bbox_label_3d=42)), INFO, r"\[42\]"),
    "lidar2ego not 4x4": (lambda d: _edit_info(d, lambda i: i["data_list"][0]["lidar_points"].update(
        lidar2ego=[[1.0, 0.0], [0.0, 1.0]])), INFO, "4x4"),
    "no timestamp": (lambda d: _edit_info(d, lambda i: i["data_list"][0].pop("timestamp")), INFO, "timestamp"),
}


@pytest.mark.realdata
@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_bad_input_names_the_file(sample_copy: Path, breakage: str) -> None:
    break_it, file_name, problem = BREAKAGES[breakage]
    break_it(sample_copy)
    with pytest.raises(BadInput, match=problem) as caught:
        nuscenes.read(sample_copy)
    assert file_name in str(caught.value)


def test_a_directory_without_info_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"\*\.pkl"):
        nuscenes.read(tmp_path)
    with pytest.raises(BadInput, match="not a directory"):
        nuscenes.read(tmp_path / "nowhere")
