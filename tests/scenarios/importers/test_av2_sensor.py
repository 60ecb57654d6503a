"""AV2 sensor importer: the real log checked against its own labels, crafted bad copies, the catalog."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from andon.errors import BadInput
from andon.scenarios.geometry import count_points_in_boxes
from andon.scenarios.importers import av2_sensor
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import CLASSES, wrap_angle
from andon.workspace import Workspace
from tests.scenarios.importers._perception import check_round_trip

LOG_ID = "adcf7d18-0510-35b0-a2fa-b4cea13a6d76"
SWEEP_NS = 315973157959879000


@pytest.fixture
def log_dir(shared_data: Path) -> Path:
    return shared_data / "perception" / "av2_sensor" / LOG_ID


@pytest.fixture
def imported(log_dir: Path) -> ImportedLog:
    (log,) = av2_sensor.read(log_dir)
    return log


def writable_copy(source: Path, target: Path) -> Path:
    """Copy a read-only tree of the shared data so a test may break the copy."""
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def _sweep_frame(log: ImportedLog) -> int:
    (index,) = [i for i, f in enumerate(log.frames) if f.points is not None]
    return index


@pytest.mark.realdata
def test_frames_boxes_and_classes_follow_the_annotations(log_dir: Path, imported: ImportedLog) -> None:
    table = feather.read_table(log_dir / "annotations.feather").to_pandas()
    log = imported
    assert log.source == "av2" and log.name == LOG_ID and log.meta["city"] == "PIT"
    assert log.meta["av2_categories"] == table["category"].value_counts().to_dict()
    json.dumps(log.meta)  # the catalog stores meta as JSON
    stamps = np.array([f.timestamp_ns for f in log.frames])
    np.testing.assert_array_equal(stamps, np.unique(table["timestamp_ns"]))
    assert len(log.frames) == 156 and sum(len(f.classes) for f in log.frames) == len(table) == 12078
    frame = log.frames[80]
    rows = table[table["timestamp_ns"] == frame.timestamp_ns].set_index("track_uuid").loc[frame.track_ids]
    np.testing.assert_array_equal(frame.boxes[:, :6], rows[["tx_m", "ty_m", "tz_m", "length_m", "width_m",
                                                             "height_m"]].to_numpy())
    # The cuboids rotate about z only; the yaw is the quaternion's half angle doubled.
    np.testing.assert_allclose(wrap_angle(frame.boxes[:, 6] - 2 * np.arctan2(rows["qz"], rows["qw"])), 0, atol=1e-12)
    assert frame.classes == [av2_sensor.CLASS_MAP[c] for c in rows["category"]]
    assert set(av2_sensor.CLASS_MAP.values()) == set(CLASSES) and len(av2_sensor.CLASS_MAP) == 30


@pytest.mark.realdata
def test_points_in_boxes_equal_num_interior_pts(log_dir: Path, imported: ImportedLog) -> None:
    """The log's own labels count the sweep's points in every cuboid: our geometry must agree exactly."""
    frame = imported.frames[_sweep_frame(imported)]
    assert frame.timestamp_ns == SWEEP_NS
    table = feather.read_table(log_dir / "annotations.feather").to_pandas()
    rows = table[table["timestamp_ns"] == SWEEP_NS].set_index("track_uuid").loc[frame.track_ids]
    counts = count_points_in_boxes(frame.points, frame.boxes)
    assert len(counts) == 47 and rows["num_interior_pts"].sum() > 1000
    np.testing.assert_array_equal(counts, rows["num_interior_pts"].to_numpy())


@pytest.mark.realdata
def test_points_are_the_sweep_widened_to_float32(log_dir: Path, imported: ImportedLog) -> None:
    sweep = feather.read_table(log_dir / "sensors" / "lidar" / f"{SWEEP_NS}.feather").to_pandas()
    frame = imported.frames[_sweep_frame(imported)]
    assert frame.points.dtype == np.float32 and frame.points.shape == (len(sweep), 4) == (100660, 4)
    np.testing.assert_array_equal(frame.points, sweep[["x", "y", "z", "intensity"]].to_numpy(np.float32))
    assert sum(f.points is not None for f in imported.frames) == 1


@pytest.mark.realdata
def test_ego_poses_are_the_city_poses_at_each_frame(log_dir: Path, imported: ImportedLog) -> None:
    poses = feather.read_table(log_dir / "city_SE3_egovehicle.feather").to_pandas().set_index("timestamp_ns")
    for frame in (imported.frames[0], imported.frames[-1]):
        row = poses.loc[frame.timestamp_ns]
        yaw = np.arctan2(2 * (row.qw * row.qz + row.qx * row.qy), 1 - 2 * (row.qy ** 2 + row.qz ** 2))
        assert frame.ego_pose == pytest.approx((row.tx_m, row.ty_m, row.tz_m, yaw), abs=1e-9)


@pytest.mark.realdata
def test_velocities_are_over_the_ground_in_ego_axes(imported: ImportedLog) -> None:
    log = imported
    pose = np.array([f.ego_pose for f in log.frames])
    seconds = np.array([f.timestamp_ns for f in log.frames]) / 1e9
    ego_speed = np.hypot(*np.diff(pose[:, :2], axis=0).T) / np.diff(seconds)
    assert ego_speed.max() > 4.0  # [m/s] the ego drives off, so relative and ground velocity differ
    velocity = np.concatenate([f.velocities_mps for f in log.frames])
    classes = np.array([c for f in log.frames for c in f.classes])
    speed = np.hypot(*velocity.T)
    assert np.isnan(speed).sum() < 10
    # Bollards, cones and signs stand still over the ground however the ego moves.
    assert np.nanpercentile(speed[classes == "static"], 90) < 0.1
    assert 0.5 < np.nanmedian(speed[classes == "pedestrian"]) < 2.0
    # Ego axes: a static object's velocity is ~0 in every frame, so check one moving vehicle instead:
    # its velocity must point along its own heading (ego frame) when it drives forward.
    moving = (classes == "vehicle") & (speed > 3.0)
    yaw = np.concatenate([f.boxes[:, 6] for f in log.frames])[moving]
    direction = np.arctan2(velocity[moving, 1], velocity[moving, 0])
    assert np.median(np.abs(np.cos(wrap_angle(direction - yaw)))) > 0.95


@pytest.mark.realdata
def test_map_lanes_and_crosswalks(log_dir: Path, imported: ImportedLog) -> None:
    data = json.loads(next((log_dir / "map").glob("log_map_archive_*.json")).read_text())
    road_map = imported.road_map
    assert len(road_map.lanes) == len(data["lane_segments"]) == 199
    assert len(road_map.crosswalks) == len(data["pedestrian_crossings"]) == 11
    lanes = {lane.lane_id: lane for lane in road_map.lanes}
    assert sum(lane.is_intersection for lane in road_map.lanes) == sum(
        s["is_intersection"] for s in data["lane_segments"].values())
    for key, segment in list(data["lane_segments"].items())[:20]:
        left = np.array([[p["x"], p["y"]] for p in segment["left_lane_boundary"]])
        right = np.array([[p["x"], p["y"]] for p in segment["right_lane_boundary"]])
        centre = lanes[key].centerline_m
        assert len(centre) >= 10
        np.testing.assert_allclose(centre[0], (left[0] + right[0]) / 2, atol=1e-9)
        np.testing.assert_allclose(centre[-1], (left[-1] + right[-1]) / 2, atol=1e-9)
    crossing = next(iter(data["pedestrian_crossings"].values()))
    polygon = {c.crosswalk_id: c.polygon_m for c in road_map.crosswalks}[str(crossing["id"])]
    edge1 = [[p["x"], p["y"]] for p in crossing["edge1"]]
    edge2 = [[p["x"], p["y"]] for p in crossing["edge2"]]
    np.testing.assert_allclose(polygon, edge1 + edge2[::-1])
    # The ego drives through the map: its first pose is within 50 m of some lane.
    x, y = imported.frames[0].ego_pose[:2]
    assert min(np.hypot(*(lane.centerline_m - [x, y]).T).min() for lane in road_map.lanes) < 50


@pytest.mark.realdata
def test_a_directory_of_logs_gives_one_log_each(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "perception" / "av2_sensor" / LOG_ID
    for name in ("log_a", "log_b"):
        writable_copy(source, tmp_path / name)
    logs = av2_sensor.read(tmp_path)
    assert [log.name for log in logs] == ["log_a", "log_b"]
    assert [log.name for log in av2_sensor.read(tmp_path / "log_b" / "annotations.feather")] == ["log_b"]


@pytest.mark.realdata
def test_catalog_round_trip(workspace: Workspace, imported: ImportedLog) -> None:
    check_round_trip(workspace, imported, av2_sensor.NAME, av2_sensor.VERSION, LOG_ID, _sweep_frame(imported))


# ----- bad input: copies of the real log, broken one way each ---------------------------------------------


@pytest.fixture
def log_copy(log_dir: Path, tmp_path: Path) -> Path:
    return writable_copy(log_dir, tmp_path / LOG_ID)


def _edit_feather(path: Path, edit: Callable[[pa.Table], pa.Table]) -> None:
    table = feather.read_table(path)
    feather.write_feather(edit(table), path)


def _replace(table: pa.Table, name: str, values: list) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, pa.array(values, type=table.schema.field(name).type))


def _nan_first(table: pa.Table, name: str) -> pa.Table:
    values = table.column(name).to_pylist()
    return _replace(table, name, [float("nan"), *values[1:]])


BREAKAGES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "garbage annotations": (lambda d: (d / "annotations.feather").write_bytes(b"not a feather file" * 10),
                            "annotations.feather", "not a readable"),
    "truncated annotations": (lambda d: (d / "annotations.feather").write_bytes(
        (d / "annotations.feather").read_bytes()[:5000]), "annotations.feather", "not a readable"),
    "missing annotations": (lambda d: (d / "annotations.feather").unlink(), "annotations.feather", "missing"),
    "missing poses": (lambda d: (d / "city_SE3_egovehicle.feather").unlink(), "city_SE3_egovehicle.feather",
                      "missing"),
    "poses not covering the log": (lambda d: _edit_feather(d / "city_SE3_egovehicle.feather",
                                                           lambda t: t.slice(0, 100)),
                                   "city_SE3_egovehicle.feather", "does not cover"),
    "NaN in a box": (lambda d: _edit_feather(d / "annotations.feather", lambda t: _nan_first(t, "tx_m")),
                     "annotations.feather", "NaN"),
    "unknown category": (lambda d: _edit_feather(d / "annotations.feather", lambda t: _replace(
        t, "category", ["FLYING_SAUCER", *t.column("category").to_pylist()[1:]])),
        "annotations.feather", "FLYING_SAUCER"),
    "lidar without z": (lambda d: _edit_feather(d / "sensors" / "lidar" / f"{SWEEP_NS}.feather",
                                                lambda t: t.drop_columns(["z"])), f"{SWEEP_NS}.feather", "'z'"),
    "garbage map": (lambda d: next((d / "map").glob("log_map_archive_*.json")).write_text('{"lane_segments": [1]}'),
                    "log_map_archive_", "not an AV2 map archive"),
}


@pytest.mark.realdata
@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_bad_input_names_the_file(log_copy: Path, breakage: str) -> None:
    break_it, file_name, problem = BREAKAGES[breakage]
    break_it(log_copy)
    with pytest.raises(BadInput, match=problem) as caught:
        av2_sensor.read(log_copy)
    assert file_name in str(caught.value)


def test_a_directory_without_logs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="annotations.feather"):
        av2_sensor.read(tmp_path)
    with pytest.raises(BadInput, match="annotations.feather"):
        av2_sensor.read(tmp_path / "nowhere")
