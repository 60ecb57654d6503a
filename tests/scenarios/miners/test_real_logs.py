"""Every miner on the real samples in ../shared/data: AV2 sensor and forecasting, CommonRoad, ETH/UCY."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from andon.scenarios import Catalog, Provenance
from andon.scenarios.importers import importer
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.miners import MINERS, mine_catalog, mine_windows
from andon.scenarios.records import Log

pytestmark = pytest.mark.realdata
MAP_TAGS = ("intersection", "traffic_light", "pedestrian_crossing")


def _read(shared_data: Path, fmt: str, relative: str) -> list[ImportedLog]:
    return importer(fmt).read(shared_data / relative)


def _as_log(imported: ImportedLog) -> Log:
    return Log(log_id=imported.name, source=imported.source, frames=imported.frames, road_map=imported.road_map,
               meta=imported.meta)


def _seconds(log: ImportedLog, stamp_ns: int) -> float:
    return (stamp_ns - log.frames[0].timestamp_ns) / 1e9


def test_av2_sensor_log_through_the_catalog(shared_data: Path, workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    (imported,) = _read(shared_data, "av2", "perception/av2_sensor")
    catalog = Catalog(workspace)
    log_id, _ = catalog.add_log(imported, Provenance("import", "av2", "1"), "av2")
    counts = mine_catalog(catalog, progress=False)
    stored = catalog.log(log_id)
    monkeypatch.setattr(stored.frames, "_blobs", None)  # reading any lidar sweep would now fail
    # The streamed log mines exactly like the in-memory one.
    assert mine_windows(stored) == mine_windows(_as_log(imported))
    assert counts["intersection"] >= 1 and counts["high_speed"] == 0 and counts["night"] == 0
    (inside,) = mine_windows(stored, ["intersection"])["intersection"]
    lanes = imported.road_map.lanes
    # Independently: the densified centerline point nearest to the ego belongs to an intersection lane
    # inside the window, and to an ordinary lane well before it.
    dense = [np.linspace(c[:-1], c[1:], 20).reshape(-1, 2) for c in (lane.centerline_m for lane in lanes)]
    owner = np.repeat([lane.is_intersection for lane in lanes], [len(d) for d in dense])
    points = np.concatenate(dense)
    for frame in imported.frames:
        if inside.t_start_ns + 1e9 <= frame.timestamp_ns <= inside.t_end_ns or _seconds(imported, frame.timestamp_ns) < 5:
            nearest = np.argmin(np.hypot(*(points - np.asarray(frame.ego_pose[:2])).T))
            assert owner[nearest] == (frame.timestamp_ns >= inside.t_start_ns)
    (stop,) = catalog.search("tag:stationary")
    assert stop.t_start_ns == imported.frames[0].timestamp_ns  # the log starts with the ego waiting
    catalog.close()


def test_commonroad_map_tags_agree_with_the_files_tags(shared_data: Path) -> None:
    logs = {log.name: log for log in _read(shared_data, "commonroad", "scenarios/commonroad_ngsim")}
    for name, imported in logs.items():
        found = mine_windows(_as_log(imported))
        mined = {tag for tag in MAP_TAGS if found[tag]}
        assert mined <= imported.tags, f"{name}: mined {mined} but the file says {sorted(imported.tags)}"
        # The virtual ego at the obstacles' centroid never moves.
        (still,) = found["stationary"]
        assert (still.t_start_ns, still.t_end_ns) == (imported.frames[0].timestamp_ns, imported.frames[-1].timestamp_ns)
    (junction,) = mine_windows(_as_log(logs["USA_Peach-4_8_T-1"]))["intersection"]
    assert junction.duration_s == pytest.approx(6.0)


def test_eth_ucy_pedestrians_around_a_fixed_virtual_ego(shared_data: Path) -> None:
    logs = _read(shared_data, "eth-ucy", "prediction/eth_ucy")
    near = 0
    for imported in logs:
        found = mine_windows(_as_log(imported))
        assert not any(found[tag] for tag in (*MAP_TAGS, "cut_in", "dense_traffic", "high_speed", "night"))
        assert len(found["stationary"]) == 1
        near += len(found["vru_near"])
        assert all(set(w.track_ids) <= {t for f in imported.frames for t in f.track_ids} for w in found["vru_near"])
    assert near > 0


def test_av2_forecasting_scenario(shared_data: Path) -> None:
    (imported,) = _read(shared_data, "av2-forecasting", "prediction/av2_motion_forecasting")
    found = mine_windows(_as_log(imported))
    assert set(found) == set(MINERS)
    assert found["intersection"] and not found["high_speed"] and not found["night"]
