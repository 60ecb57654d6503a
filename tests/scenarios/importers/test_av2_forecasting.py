"""AV2 motion-forecasting importer: the real scenario, crafted bad copies, and the catalog end to end."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from andon.errors import BadInput
from andon.scenarios.importers import av2_forecasting
from andon.scenarios.records import wrap_angle
from tests.scenarios.importers._data import check_catalog_round_trip, data_dir, ego_to_world

SCENARIO_ID = "0a1e6f0a-1817-4a98-b02e-db8c9327d151"


@pytest.fixture
def traj_data() -> Path:
    return data_dir() / "prediction" / "av2_motion_forecasting"


@pytest.fixture
def scenario_dir(traj_data: Path) -> Path:
    return traj_data / SCENARIO_ID


def _parquet(folder: Path) -> Path:
    return folder / f"scenario_{SCENARIO_ID}.parquet"


@pytest.mark.realdata
def test_real_scenario_frames_tracks_and_units(scenario_dir: Path) -> None:
    table = pd.read_parquet(_parquet(scenario_dir))
    (log,) = av2_forecasting.read(scenario_dir)
    assert log.name == SCENARIO_ID and log.source == "av2-forecasting"
    assert log.tags == {"forecasting"}
    assert log.meta["focal_track_id"] == "138951" and log.meta["city"] == "austin"
    assert log.meta["observed_steps"] == 50
    assert len(log.frames) == 110
    assert np.all(np.diff([f.timestamp_ns for f in log.frames]) == 100_000_000)  # 10 Hz
    tracks = {t for f in log.frames for t in f.track_ids}
    assert "AV" not in tracks and len(tracks) == table["track_id"].nunique() - 1 == 57
    assert sum(len(f.track_ids) for f in log.frames) == len(table) - 110
    assert "138951" in log.frames[0].track_ids


@pytest.mark.realdata
@pytest.mark.parametrize("step", [0, 49, 109])
def test_boxes_transform_back_to_the_file(scenario_dir: Path, step: int) -> None:
    table = pd.read_parquet(_parquet(scenario_dir))
    rows = table[table["timestep"] == step].set_index("track_id")
    (log,) = av2_forecasting.read(_parquet(scenario_dir))
    frame = log.frames[step]
    ego = rows.loc["AV"]
    assert frame.ego_pose == pytest.approx((ego["position_x"], ego["position_y"], 0.0, ego["heading"]))
    expected = rows.loc[frame.track_ids]
    assert len(expected) == len(rows) - 1
    np.testing.assert_allclose(ego_to_world(frame.boxes[:, :2], frame.ego_pose),
                               expected[["position_x", "position_y"]].to_numpy(), atol=1e-6)
    heading_error = wrap_angle(frame.boxes[:, 6] + frame.ego_pose[3] - expected["heading"].to_numpy())
    np.testing.assert_allclose(heading_error, 0.0, atol=1e-9)
    world_velocity = ego_to_world(frame.velocities_mps, (0.0, 0.0, 0.0, frame.ego_pose[3]))
    np.testing.assert_allclose(world_velocity, expected[["velocity_x", "velocity_y"]].to_numpy(), atol=1e-9)
    sizes = {c: tuple(b) for c, b in zip(expected["object_type"], frame.boxes[:, 3:6], strict=True)}
    assert sizes.get("vehicle", (4.5, 2.0, 1.6)) == (4.5, 2.0, 1.6)
    np.testing.assert_allclose(frame.boxes[:, 2], frame.boxes[:, 5] / 2)


@pytest.mark.realdata
def test_map_lanes_and_crosswalks(scenario_dir: Path) -> None:
    data = json.loads(next(scenario_dir.glob("log_map_archive_*.json")).read_text())
    (log,) = av2_forecasting.read(scenario_dir)
    lanes = {lane.lane_id: lane for lane in log.road_map.lanes}
    assert set(lanes) == {str(k) for k in data["lane_segments"]}
    for key, lane in data["lane_segments"].items():
        assert lanes[str(key)].is_intersection == lane["is_intersection"]
        np.testing.assert_allclose(lanes[str(key)].centerline_m, [[p["x"], p["y"]] for p in lane["centerline"]])
    assert sum(lane.is_intersection for lane in lanes.values()) > 0
    assert len(log.road_map.crosswalks) == len(data["pedestrian_crossings"])
    assert all(c.polygon_m.shape == (4, 2) for c in log.road_map.crosswalks)


def _copy(scenario_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / SCENARIO_ID
    shutil.copytree(scenario_dir, target)
    for file in target.iterdir():
        file.chmod(0o644)
    return target


def _set(column: str, value: object, row: int = 0) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(table: pd.DataFrame) -> pd.DataFrame:
        table[column] = table[column].astype(object) if isinstance(value, str) else table[column]
        table.loc[table.index[row], column] = value
        return table
    return edit


@pytest.mark.realdata
@pytest.mark.parametrize(("edit", "expected"), [
    (lambda t: t.drop(columns=["heading"]), "missing columns ['heading']"),
    (_set("position_x", np.nan), "column position_x holds a non-finite value at row 0"),
    (_set("object_type", "spaceship"), "unknown object types ['spaceship']"),
    (lambda t: pd.concat([t, t.iloc[[0]]]), "has more than one row at timestep"),
    (lambda t: t[t["track_id"] != "AV"], "no ego track 'AV'"),
    (lambda t: t[~((t["track_id"] == "AV") & (t["timestep"] == 7))], "missing at timesteps [7]"),
    (lambda t: t.iloc[:0], "the scenario has no rows"),
])
def test_bad_tables_are_refused_naming_the_file(scenario_dir: Path, tmp_path: Path,
                                                 edit: Callable[[pd.DataFrame], pd.DataFrame], expected: str) -> None:
    folder = _copy(scenario_dir, tmp_path)
    edit(pd.read_parquet(_parquet(folder))).to_parquet(_parquet(folder))
    with pytest.raises(BadInput, match=f"scenario_{SCENARIO_ID}.parquet") as error:
        av2_forecasting.read(folder)
    assert expected in str(error.value)


@pytest.mark.realdata
def test_truncated_parquet_and_missing_files_are_refused(scenario_dir: Path, tmp_path: Path) -> None:
    folder = _copy(scenario_dir, tmp_path)
    parquet = _parquet(folder)
    parquet.write_bytes(parquet.read_bytes()[:5000])
    with pytest.raises(BadInput, match=re.escape(f"{parquet}: not a readable parquet file")):
        av2_forecasting.read(folder)
    shutil.copy(_parquet(scenario_dir), parquet)
    map_path = next(folder.glob("log_map_archive_*.json"))
    map_path.write_text('{"lane_segments": {"1": {"id": 1}}}')
    with pytest.raises(BadInput, match=re.escape(f"{map_path}: not an AV2 map archive")):
        av2_forecasting.read(folder)
    map_path.unlink()
    with pytest.raises(BadInput, match=re.escape(f"{map_path}: missing vector map")):
        av2_forecasting.read(folder)


def test_absent_path_and_empty_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="absent: no such file or folder"):
        av2_forecasting.read(tmp_path / "absent")
    with pytest.raises(BadInput, match=re.escape(f"{tmp_path}: no scenario_<id>.parquet")):
        av2_forecasting.read(tmp_path)


@pytest.mark.realdata
def test_catalog_end_to_end(scenario_dir: Path, workspace) -> None:
    (log,) = av2_forecasting.read(scenario_dir)
    check_catalog_round_trip(workspace, log, av2_forecasting.NAME, av2_forecasting.VERSION, str(scenario_dir),
                             frame_index=60)
