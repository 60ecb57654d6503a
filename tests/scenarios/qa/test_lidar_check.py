"""The point check: visible empty boxes are flagged, occluded ones and frames without points are not."""

from __future__ import annotations

import numpy as np
import pytest

from andon.errors import BadInput
from andon.scenarios.geometry import count_points_in_boxes
from andon.scenarios.qa import QAConfig
from andon.scenarios.qa.lidar_check import _candidates, _distance_to_footprint, empty_box
from andon.scenarios.qa.table import build_table
from tests.scenarios.qa._scenes import make_scene, shift_along_road

FRAME = 10
EVERY_SWEEP = QAConfig(lidar_period_s=0.0)
GHOST = np.array([10.0, 9.0, 0.8, 4.5, 1.9, 1.6, 0.0])  # ego frame: 13.5 m away, front-left, in the open


def findings(result) -> list[tuple[int, str]]:
    return list(zip(result.frame_index.tolist(), result.track_ids.tolist(), strict=True))


def test_a_box_on_nothing_at_13m_in_a_sweep_is_empty() -> None:
    scene = make_scene()
    scene.extra.append((FRAME, "ghost", "vehicle", GHOST))
    log = scene.log()
    result = empty_box(log.frames, build_table(log), EVERY_SWEEP)
    assert findings(result) == [(FRAME, "ghost")]
    assert result.value[0] == 0


def test_a_label_jumped_off_its_car_is_empty() -> None:
    scene = make_scene()
    shift_along_road(scene, FRAME, "car", 0.0, 3.0)
    log = scene.log()
    assert findings(empty_box(log.frames, build_table(log), EVERY_SWEEP)) == [(FRAME, "car")]


def test_an_occluded_agent_without_points_is_not_flagged() -> None:
    """The 'hidden' cyclist rides in the car's shadow: its true boxes hold no points in any sweep."""
    log = make_scene().log()
    table = build_table(log)
    hidden = table.track_ids == "hidden"
    frame = log.frames[FRAME]
    assert count_points_in_boxes(frame.points, frame.boxes)[np.array(frame.track_ids) == "hidden"] == 0
    assert hidden.sum() == len(log.frames)
    assert len(empty_box(log.frames, table, EVERY_SWEEP)) == 0


def test_frames_without_points_and_far_boxes_are_skipped() -> None:
    scene = make_scene()
    scene.extra.append((FRAME, "ghost", "vehicle", GHOST))
    far = GHOST.copy()
    far[:2] = (60.0, 30.0)
    scene.extra.append((FRAME + 1, "far-ghost", "vehicle", far))
    log = scene.log(with_points=False)
    assert len(empty_box(log.frames, build_table(log), EVERY_SWEEP)) == 0
    log = scene.log()
    assert findings(empty_box(log.frames, build_table(log), EVERY_SWEEP)) == [(FRAME, "ghost")]
    assert len(empty_box(None, build_table(log), EVERY_SWEEP)) == 0


def test_sweeps_are_sampled_once_per_period() -> None:
    """At 2 Hz from frame 0 the checked sweeps are frames 0, 5, 10, ...: a ghost at frame 12 is unseen."""
    scene = make_scene()
    scene.extra.append((12, "ghost-12", "vehicle", GHOST))
    scene.extra.append((FRAME, "ghost-10", "vehicle", GHOST))
    log = scene.log()
    assert findings(empty_box(log.frames, build_table(log), QAConfig(lidar_period_s=0.5))) == [(FRAME, "ghost-10")]


def test_the_candidate_cut_keeps_every_point_inside_a_box() -> None:
    rng = np.random.default_rng(3)
    points = rng.uniform(-40, 40, size=(20_000, 3)).astype(np.float32)
    points[:, 2] = rng.uniform(-1, 3, len(points))
    boxes = np.column_stack([rng.uniform(-35, 35, (30, 2)), rng.uniform(0, 1, 30), rng.uniform(0.3, 12, (30, 2)),
                             rng.uniform(0.5, 3, 30), rng.uniform(-np.pi, np.pi, 30)])
    points[0] = (1e6, -1e6, 0.0)  # a stray return far away costs no memory: it falls in the border cell
    cut = _candidates(points, boxes)
    assert len(cut) < len(points)
    np.testing.assert_array_equal(count_points_in_boxes(cut, boxes), count_points_in_boxes(points, boxes))
    points[1] = (np.nan, 0.0, 0.0)
    with pytest.raises(BadInput, match="NaN"):
        _candidates(points, boxes)


def test_distance_to_a_footprint_is_zero_inside_and_exact_outside() -> None:
    boxes = np.array([[0.0, 0.0, 0, 4, 2, 1, 0.3], [10.0, 0.0, 0, 4, 2, 1, 0.0], [0.0, -5.0, 0, 4, 2, 1, np.pi / 2],
                      [10.0, 10.0, 0, 2, 2, 1, 0.0]])
    np.testing.assert_allclose(_distance_to_footprint(boxes), [0.0, 8.0, 3.0, np.hypot(9.0, 9.0)])


def test_labels_sharing_space_are_not_judged_by_their_points() -> None:
    """Nested labels split the returns (the outer box takes them all): their emptiness proves nothing."""
    scene = make_scene()
    nested = GHOST.copy()
    nested[3:6] = (1.0, 1.0, 1.0)
    nested[2] = 0.5
    lone = GHOST.copy()
    lone[:2] = (-12.0, 9.0)
    scene.extra += [(FRAME, "ghost", "vehicle", GHOST), (FRAME, "nested", "static", nested),
                    (FRAME, "lone", "vehicle", lone)]
    log = scene.log()
    assert findings(empty_box(log.frames, build_table(log), EVERY_SWEEP)) == [(FRAME, "lone")]
