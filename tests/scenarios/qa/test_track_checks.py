"""Track checks (teleport, jitter, track_gap, heading_velocity) on hand-made drives."""

from __future__ import annotations

import numpy as np
import pytest

from andon.scenarios.qa import QAConfig, run_checks
from andon.scenarios.qa.checks import BOX_CHECKS
from andon.scenarios.qa.table import build_table
from andon.scenarios.qa.track_checks import gap_range_m, heading_velocity, jitter, teleport, track_gap
from tests.scenarios.qa._scenes import AGENTS, ROAD_YAW, Agent, index_of, make_scene, shift_along_road

FRAME = 10


def findings(result) -> list[tuple[int, str]]:
    return list(zip(result.frame_index.tolist(), result.track_ids.tolist(), strict=True))


def test_a_clean_drive_raises_no_flag_from_any_check() -> None:
    flags = run_checks(make_scene().log(), QAConfig(lidar_period_s=0.0))
    assert {r.name: len(r) for r in flags.results} == dict.fromkeys([r.name for r in flags.results], 0)


def test_a_vehicle_box_jumped_3m_sideways_is_off_its_path() -> None:
    scene = make_scene()
    shift_along_road(scene, FRAME, "car", 0.0, 3.0)
    table = build_table(scene.log(with_points=False))
    result = jitter(table, QAConfig())
    assert findings(result) == [(FRAME, "car")]  # the jumped box only, not its pulled neighbours
    assert result.value[0] == pytest.approx(3.0, abs=0.05)
    # 3 m in 0.1 s is 30 m/s: fast, but a car can do that, so it is not a teleport.
    assert len(teleport(table, QAConfig())) == 0


@pytest.mark.parametrize("jump_m", [0.5, 2.0])
def test_the_fleets_smallest_and_largest_jitter_are_found(jump_m: float) -> None:
    scene = make_scene()
    shift_along_road(scene, FRAME, "walker", jump_m, 0.0)
    assert findings(jitter(build_table(scene.log(with_points=False)), QAConfig())) == [(FRAME, "walker")]


def test_a_pedestrian_jumped_3m_teleports_and_only_the_jump_in_is_named() -> None:
    scene = make_scene()
    shift_along_road(scene, FRAME, "walker", 3.0, 0.0)
    result = teleport(build_table(scene.log(with_points=False)), QAConfig())
    assert findings(result) == [(FRAME, "walker")]  # the jump back out at frame 11 is not a second finding
    assert result.value[0] > 12.0 and "m/s" in result.unit


def test_a_vehicle_that_jumps_for_good_teleports_once() -> None:
    scene = make_scene()
    a = index_of(scene, "car")
    scene.labels[FRAME:, a, 0] += 15.0 * np.cos(ROAD_YAW)
    scene.labels[FRAME:, a, 1] += 15.0 * np.sin(ROAD_YAW)
    assert findings(teleport(build_table(scene.log(with_points=False)), QAConfig())) == [(FRAME, "car")]


def test_a_dropped_box_of_a_nearby_track_is_a_gap_at_that_frame() -> None:
    scene = make_scene()
    scene.present[FRAME, index_of(scene, "car")] = False
    log = scene.log(with_points=False)
    result = track_gap(build_table(log), QAConfig())
    assert findings(result) == [(FRAME, "car")]
    assert result.timestamp_ns[0] == log.frames[FRAME].timestamp_ns and result.box_row[0] == -1


def test_gaps_at_the_labelling_horizon_or_long_are_not_missing_boxes() -> None:
    """Labels reach ~75 m here (the far car): a track blinking out there may have crossed the horizon."""
    far_car = Agent("far", "vehicle", (75.0, 3.5), (10.0, 0.0), (4.5, 1.9, 1.6))
    scene = make_scene(agents=(*AGENTS, far_car))
    scene.present[FRAME, index_of(scene, "far")] = False
    scene.present[FRAME:FRAME + 8, index_of(scene, "car")] = False  # 8 frames: an occlusion
    scene.present[FRAME, index_of(scene, "walker")] = False  # ~15 m away: plainly missing
    table = build_table(scene.log(with_points=False))
    horizon_m = float(table.range_m.max())
    assert 75.0 < horizon_m < 76.0 and gap_range_m(table, QAConfig()) == pytest.approx(horizon_m - 2.0)
    assert findings(track_gap(table, QAConfig())) == [(FRAME, "walker")]
    assert findings(track_gap(table, QAConfig(gap_horizon_margin_m=0.0, near_range_m=80.0))) == [
        (FRAME, "walker"), (FRAME, "far")]


def test_two_missing_frames_give_two_findings_in_time_order() -> None:
    scene = make_scene()
    scene.present[[5, 6], index_of(scene, "car")] = False
    scene.present[FRAME, index_of(scene, "walker")] = False
    result = track_gap(build_table(scene.log(with_points=False)), QAConfig())
    assert findings(result) == [(5, "car"), (6, "car"), (FRAME, "walker")]
    assert np.all(np.diff(result.timestamp_ns) > 0)


def test_a_car_box_turned_sideways_to_its_motion_is_flagged() -> None:
    scene = make_scene()
    scene.labels[FRAME, index_of(scene, "car"), 6] += np.pi / 2
    result = heading_velocity(build_table(scene.log(with_points=False)), QAConfig())
    assert findings(result) == [(FRAME, "car")]
    assert result.value[0] == pytest.approx(90.0, abs=1.0)


def test_reversing_slowly_is_not_a_flipped_box_but_driving_fast_backwards_is() -> None:
    scene = make_scene()
    scene.labels[:, index_of(scene, "car"), 6] += np.pi  # the car drives "backwards" at 12 m/s
    fast = heading_velocity(build_table(scene.log(with_points=False)), QAConfig())
    assert set(fast.track_ids) == {"car"} and len(fast) == len(scene.ego)
    slow = heading_velocity(build_table(scene.log(with_points=False)), QAConfig(reverse_max_speed_mps=15.0))
    assert len(slow) == 0


def test_headings_of_pedestrians_and_unknown_velocities_fall_back_sensibly() -> None:
    scene = make_scene()
    scene.labels[FRAME, index_of(scene, "walker"), 6] += np.pi / 2  # people turn on the spot: not checked
    scene.labels[FRAME, index_of(scene, "car"), 6] += np.pi / 2
    log = scene.log(with_points=False)
    for frame in log.frames:
        frame.velocities_mps[:] = np.nan  # no velocities: motion comes from the track's neighbours
    assert findings(heading_velocity(build_table(log), QAConfig())) == [(FRAME, "car")]


def test_every_box_check_is_vectorised_over_an_empty_log() -> None:
    scene = make_scene()
    scene.present[:] = False
    table = build_table(scene.log(with_points=False))
    assert table.n_boxes == 0
    for _, check in BOX_CHECKS:
        assert len(check(table, QAConfig())) == 0
