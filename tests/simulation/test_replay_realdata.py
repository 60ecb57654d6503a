"""Real logs replay: the Argoverse 2 sensor log and the CommonRoad NGSIM tracks from ../shared/data, through the
catalog (streamed frames), in open and closed loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from andon.scenarios import Catalog, Provenance
from andon.scenarios.importers import importer
from andon.scenarios.records import Frame
from andon.simulation.replay import ReplayConfig, replay_scenario
from andon.simulation.sensors import MOVED_SWEEP
from andon.simulation.stack import stand_in_stack
from andon.simulation.trace import CAUSES, CLOSED_LOOP, OPEN_LOOP
from andon.workspace import Workspace

pytestmark = pytest.mark.realdata


def _stored(workspace: Workspace, shared_data: Path, fmt: str, relative: str) -> tuple[Catalog, list[str]]:
    catalog = Catalog(workspace)
    log_ids = [catalog.add_log(imported, Provenance("import", fmt, "1"), fmt)[0]
               for imported in importer(fmt).read(shared_data / relative)]
    return catalog, log_ids


def _check_trace(trace: object, n_frames: int) -> None:
    assert len(trace.frames) == n_frames
    assert all(np.isfinite(f.ego_pose).all() and np.isfinite(f.ego_speed_mps) for f in trace.frames)
    assert all(e.cause in CAUSES for e in trace.events)
    assert [e.time_ns for e in trace.events] == sorted(e.time_ns for e in trace.events)


def test_the_av2_log_replays_in_open_and_closed_loop(workspace: Workspace, shared_data: Path) -> None:
    catalog, (log_id,) = _stored(workspace, shared_data, "av2", "perception/av2_sensor")
    log = catalog.log(log_id)
    (scenario,) = catalog.search(f"log:{log_id}")
    stack = stand_in_stack(seed=1)
    swept: list[Frame] = []
    oracle = stack.detect

    def reading(frame: Frame) -> object:  # the oracle, fed (and recording) what a lidar detector would read
        if frame.points is not None:
            swept.append(frame)
        return oracle(frame)

    stack.detect, stack.reads_points = reading, True
    opened = replay_scenario(log, scenario, stack, ReplayConfig(mode=OPEN_LOOP))
    _check_trace(opened, len(log.frames))
    assert opened.km == pytest.approx(opened.logged_km) and 0.03 < opened.logged_km < 0.05
    assert opened.collisions == 0 and opened.sensor_approximation == "" and opened.source == "av2"
    assert len(swept) == 1  # the sample has one sweep
    logged_sweep = swept[0]

    swept.clear()
    closed = replay_scenario(log, scenario, stack, ReplayConfig(mode=CLOSED_LOOP))
    _check_trace(closed, len(log.frames))
    assert closed.sensor_approximation == MOVED_SWEEP and closed.km > 0.0
    (moved,) = swept
    # The moved sweep is the logged one seen from the replayed pose: the same points in the world frame.
    def world(frame: Frame) -> np.ndarray:
        x, y, _, yaw = frame.ego_pose
        p = frame.points[:, :2].astype(np.float64)
        return np.column_stack([np.cos(yaw) * p[:, 0] - np.sin(yaw) * p[:, 1] + x,
                                np.sin(yaw) * p[:, 0] + np.cos(yaw) * p[:, 1] + y])
    np.testing.assert_allclose(world(moved), world(logged_sweep), atol=0.02)  # float32 points, city coordinates
    again = replay_scenario(log, scenario, stack, ReplayConfig(mode=CLOSED_LOOP))
    assert again.events == closed.events and again.km == closed.km
    catalog.close()


def test_the_commonroad_tracks_replay(workspace: Workspace, shared_data: Path) -> None:
    catalog, log_ids = _stored(workspace, shared_data, "commonroad", "scenarios/commonroad_ngsim")
    assert len(log_ids) == 3
    for log_id in log_ids:
        log = catalog.log(log_id)
        (scenario,) = catalog.search(f"log:{log_id}")
        for config in (ReplayConfig(mode=OPEN_LOOP), ReplayConfig(reactive=True), ReplayConfig(reactive=False)):
            trace = replay_scenario(log, scenario, stand_in_stack(), config)
            _check_trace(trace, len(log.frames))
            # CommonRoad records no ego: the importer's virtual ego stands at the tracks' centroid, so the
            # logged stop holds the replayed ego there too.
            assert trace.km == 0.0 and trace.logged_km == 0.0 and trace.sensor_approximation == ""
            assert max(len(f.gt_boxes) for f in trace.frames) > 0 and any(len(f.track_ids) for f in trace.frames)
    catalog.close()
