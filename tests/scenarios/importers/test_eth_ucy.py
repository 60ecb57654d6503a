"""ETH/UCY importer: real files from ../shared/data, crafted bad files, and the catalog end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from andon.errors import BadInput
from andon.scenarios.importers import eth_ucy
from tests.scenarios.importers._data import check_catalog_round_trip, data_dir

FILES = ("biwi_eth", "biwi_hotel", "crowds_zara01", "crowds_zara03", "students001", "students003", "uni_examples")


@pytest.fixture
def traj_data() -> Path:
    return data_dir() / "prediction" / "eth_ucy"


def _table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep=r"\s+", header=None, names=["frame", "ped", "x", "y"])


@pytest.mark.realdata
@pytest.mark.parametrize("stem", FILES)
def test_real_file_matches_its_rows(traj_data: Path, stem: str) -> None:
    path = traj_data / f"{stem}.txt"
    table = _table(path)
    (log,) = eth_ucy.read(path)
    assert log.name == stem and log.source == "eth-ucy"
    assert len(log.frames) == table["frame"].nunique()
    assert len({t for f in log.frames for t in f.track_ids}) == table["ped"].nunique() == log.meta["tracks"]
    assert sum(len(f.track_ids) for f in log.frames) == len(table)
    # The standard release steps frame numbers by 10 per 0.4 s: timestamps are frame / 10 * 0.4 s.
    stamps = np.array([f.timestamp_ns for f in log.frames])
    np.testing.assert_array_equal(stamps, np.unique(table["frame"]).astype(np.int64) * 40_000_000)
    assert all(f.ego_pose == (0.0, 0.0, 0.0, 0.0) for f in log.frames)
    frame = log.frames[len(log.frames) // 2]
    rows = table[table["frame"] * 40_000_000 == frame.timestamp_ns]
    rows = rows.set_index(rows["ped"].astype(int).astype(str)).loc[frame.track_ids]
    np.testing.assert_allclose(frame.boxes[:, :2], rows[["x", "y"]].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(frame.boxes[:, 2:6], np.tile([0.85, 0.5, 0.5, 1.7], (len(rows), 1)))
    assert set(frame.classes) == {"pedestrian"}
    speeds = np.hypot(*np.concatenate([f.velocities_mps for f in log.frames]).T)
    assert 0.2 < np.nanmedian(speeds) < 3.0  # walking pace in [m/s]: units are metres and seconds


@pytest.mark.realdata
def test_directory_gives_one_log_per_file(traj_data: Path) -> None:
    assert [log.name for log in eth_ucy.read(traj_data)] == sorted(FILES)


def test_velocity_heading_and_step_from_a_crafted_track(tmp_path: Path) -> None:
    path = tmp_path / "walk.txt"
    # Track 1 walks +y at 1 m per 0.4 s; track 2 stands still; track 3 is seen once. Frames step by 6.
    path.write_text("0 1 0.0 0.0\n0 2 5.0 5.0\n6 1 0.0 1.0\n6 2 5.0 5.0\n12 1 0.0 2.0\n12 3 1.0 1.0\n\n")
    (log,) = eth_ucy.read(path)
    assert [f.timestamp_ns for f in log.frames] == [0, 400_000_000, 800_000_000]
    assert log.meta["frame_step"] == 6
    middle = log.frames[1]
    assert middle.track_ids == ["1", "2"]
    np.testing.assert_allclose(middle.velocities_mps, [[0.0, 2.5], [0.0, 0.0]])
    np.testing.assert_allclose(middle.boxes[:, 6], [np.pi / 2, 0.0])
    last = log.frames[2]
    np.testing.assert_allclose(last.velocities_mps[0], [0.0, 2.5])  # one-sided at the track's end
    assert np.all(np.isnan(last.velocities_mps[1])) and last.boxes[1, 6] == 0.0


@pytest.mark.parametrize(("text", "expected"), [
    ("0 1 0.0 0.0\n10 1 0.5 zzz\n", "line 2: y_m is 'zzz'"),
    ("0 1 0.0 0.0\n10 1 0.5\n", "line 2: expected 4 columns"),
    ("0 1 0.0 0.0 7.0\n", "line 1: expected 4 columns"),
    ("0 1 0.0 0.0\n10 1 nan 1.0\n", "line 2: x_m is 'nan'"),
    ("0 1 0.0 0.0\n0 1 0.5 1.0\n", "pedestrian 1 appears more than once in frame 0"),
    ("0 1.5 0.0 0.0\n", "line 1: frame and ped_id must be whole numbers"),
    ("", "the file has no rows"),
    ("\n  \n", "the file has no rows"),
    ("\x00\xff garbage", "line 1"),
])
def test_bad_files_are_refused_naming_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(BadInput, match="bad.txt") as error:
        eth_ucy.read(path)
    assert expected in str(error.value)


def test_missing_file_and_empty_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="absent.txt: missing"):
        eth_ucy.read(tmp_path / "absent.txt")
    with pytest.raises(BadInput, match="no ETH/UCY .txt files"):
        eth_ucy.read(tmp_path)


@pytest.mark.realdata
def test_catalog_end_to_end(traj_data: Path, workspace) -> None:
    path = traj_data / "biwi_hotel.txt"
    (log,) = eth_ucy.read(path)
    check_catalog_round_trip(workspace, log, eth_ucy.NAME, eth_ucy.VERSION, str(path), frame_index=100)
