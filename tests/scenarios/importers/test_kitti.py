"""KITTI importer: the real frame's boxes hold its points, crafted bad copies, and the catalog."""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from andon.errors import BadInput
from andon.scenarios.geometry import count_points_in_boxes
from andon.scenarios.importers import kitti
from andon.scenarios.records import CLASSES, wrap_angle
from andon.workspace import Workspace
from tests.scenarios.importers._perception import check_round_trip


@pytest.fixture
def sample_dir(shared_data: Path) -> Path:
    return shared_data / "perception" / "kitti_000008"


def _info(sample_dir: Path) -> dict[str, Any]:
    with (sample_dir / "000008.pkl").open("rb") as handle:
        return pickle.load(handle)


@pytest.mark.realdata
def test_real_frame_cars_contain_their_points(sample_dir: Path) -> None:
    (log,) = kitti.read(sample_dir)
    assert log.source == "kitti" and log.name == "000008"
    (frame,) = log.frames
    assert frame.timestamp_ns == 0 and frame.ego_pose == (0.0, 0.0, 0.0, 0.0)
    np.testing.assert_array_equal(frame.points, np.fromfile(sample_dir / "000008.bin", np.float32).reshape(-1, 4))
    assert frame.points.shape == (17238, 4)
    assert frame.classes == ["vehicle"] * 6  # six cars; the four DontCare regions are dropped
    counts = count_points_in_boxes(frame.points, frame.boxes)
    assert np.all(counts > 0), counts
    # mmdetection3d counted points per box when it built the index; ours agree within 10 %.
    listed = np.array([i["num_lidar_pts"] for i in _info(sample_dir)["data_list"][0]["instances"]
                       if i["bbox_label_3d"] != -1])
    np.testing.assert_allclose(counts, listed, rtol=0.1)


@pytest.mark.realdata
def test_boxes_move_from_camera_to_lidar(sample_dir: Path) -> None:
    raw = np.array([i["bbox_3d"] for i in _info(sample_dir)["data_list"][0]["instances"] if i["bbox_label_3d"] == 2])
    (frame,) = kitti.read(sample_dir / "000008.bin")[0].frames
    np.testing.assert_array_equal(frame.boxes[:, 3:6], raw[:, [3, 5, 4]])  # (l, h, w) -> (l, w, h)
    np.testing.assert_allclose(wrap_angle(frame.boxes[:, 6] - (-raw[:, 6] - np.pi / 2)), 0, atol=0.01)
    # Camera z (forward) becomes lidar x, camera x (right) becomes -y, and the bottom (camera +y is
    # down) lies h/2 below the centre: the cars' bottoms sit on the road, 1.73 m below the lidar give
    # or take the road's slope (the far car is 33 m out).
    np.testing.assert_allclose(frame.boxes[:, 0], raw[:, 2] + 0.27, atol=0.1)
    np.testing.assert_allclose(frame.boxes[:, 1], -raw[:, 0], atol=0.1)
    bottoms = frame.boxes[:, 2] - frame.boxes[:, 5] / 2
    np.testing.assert_allclose(bottoms, -1.73, atol=0.4)


def test_camera_to_lidar_conversion_by_hand() -> None:
    # An identity-rotation calibration that only swaps axes: camera (x right, y down, z forward).
    lidar2cam = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0, 0, 0, 1.0]])
    boxes = np.array([[1.0, 2.0, 10.0, 4.0, 1.5, 2.0, 0.0],
                      [0.0, 0.0, 5.0, 4.0, 1.5, 2.0, np.pi / 2]])
    lidar = kitti.camera_boxes_to_lidar(boxes, lidar2cam)
    np.testing.assert_allclose(lidar[0], [10.0, -1.0, -1.25, 4.0, 2.0, 1.5, -np.pi / 2])
    np.testing.assert_allclose(lidar[1], [5.0, 0.0, 0.75, 4.0, 2.0, 1.5, np.pi], atol=1e-12)


def test_class_map_covers_every_label() -> None:
    assert set(kitti.LABELS) == set(kitti.CLASS_MAP) and set(kitti.CLASS_MAP.values()) == set(CLASSES)


@pytest.mark.realdata
def test_catalog_round_trip(workspace: Workspace, sample_dir: Path) -> None:
    (log,) = kitti.read(sample_dir)
    check_round_trip(workspace, log, kitti.NAME, kitti.VERSION, str(sample_dir), 0)


# ----- bad input: copies of the real sample, broken one way each -------------------------------------------


@pytest.fixture
def sample_copy(sample_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "kitti"
    target.mkdir()
    for name in ("000008.bin", "000008.pkl"):
        shutil.copyfile(sample_dir / name, target / name)
    return target


def _edit_info(folder: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    info = _info(folder)
    edit(info)
    (folder / "000008.pkl").write_bytes(pickle.dumps(info))


def _set_box(info: dict[str, Any], index: int, **fields: Any) -> None:
    info["data_list"][0]["instances"][index].update(fields)


class _Shell:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("a pickle must not run code",))


BREAKAGES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "garbage pickle": (lambda d: (d / "000008.pkl").write_bytes(b"\x00garbage" * 20), "000008.pkl", "not a readable"),
    "truncated pickle": (lambda d: (d / "000008.pkl").write_bytes((d / "000008.pkl").read_bytes()[:2000]),
                         "000008.pkl", "not a readable"),
    "pickle running code": (lambda d: (d / "000008.pkl").write_bytes(pickle.dumps({"data_list": [_Shell()]})),
                            "000008.pkl", "builtins.print"),
    "missing velodyne file": (lambda d: (d / "000008.bin").unlink(), "000008.bin", "missing"),
    "velodyne not whole records": (lambda d: (d / "000008.bin").write_bytes((d / "000008.bin").read_bytes()[:-6]),
                                   "000008.bin", "not a whole number"),
    "NaN in a box": (lambda d: _edit_info(d, lambda i: _set_box(i, 1, bbox_3d=[np.nan] * 7)), "000008.pkl", "NaN"),
    "box of six numbers": (lambda d: _edit_info(d, lambda i: [_set_box(i, k, bbox_3d=[1.0] * 6) for k in range(10)]),
                           "000008.pkl", "7 numbers"),
    "unknown label": (lambda d: _edit_info(d, lambda i: _set_box(i, 0, bbox_label_3d=12)), "000008.pkl", r"\[12\]"),
    "no data_list": (lambda d: _edit_info(d, lambda i: i.pop("data_list")), "000008.pkl", "data_list"),
    "no calibration": (lambda d: _edit_info(d, lambda i: i["data_list"][0]["images"].pop("CAM2")),
                       "000008.pkl", "CAM2"),
}


@pytest.mark.realdata
@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_bad_input_names_the_file(sample_copy: Path, breakage: str) -> None:
    break_it, file_name, problem = BREAKAGES[breakage]
    break_it(sample_copy)
    with pytest.raises(BadInput, match=problem) as caught:
        kitti.read(sample_copy)
    assert file_name in str(caught.value)


@pytest.mark.realdata
def test_a_bin_without_its_info_is_refused(sample_copy: Path) -> None:
    (sample_copy / "000008.pkl").unlink()
    with pytest.raises(BadInput, match="000008.pkl"):
        kitti.read(sample_copy / "000008.bin")
    with pytest.raises(BadInput, match=r"\*\.pkl"):
        kitti.read(sample_copy)
