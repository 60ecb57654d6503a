"""Shape checks (dimension_change, class_flip, size_implausible, below_ground) on hand-made drives."""

from __future__ import annotations

import numpy as np
import pytest

from andon.scenarios.logstore import ImportedLog
from andon.scenarios.qa import QAConfig
from andon.scenarios.qa.shape_checks import below_ground, class_flip, dimension_change, size_implausible
from andon.scenarios.qa.table import build_table, group_median
from andon.scenarios.records import Frame
from tests.scenarios.qa._scenes import index_of, make_scene

FRAME = 10


def findings(result) -> list[tuple[int, str]]:
    return list(zip(result.frame_index.tolist(), result.track_ids.tolist(), strict=True))


def test_group_median_matches_numpy_per_group() -> None:
    rng = np.random.default_rng(0)
    values, group = rng.normal(size=101), rng.integers(0, 7, size=101)
    group[group == 3] = 4  # group 3 is empty
    expected = [np.median(values[group == g]) if np.any(group == g) else np.nan for g in range(8)]
    np.testing.assert_allclose(group_median(values, group, 8), expected)


@pytest.mark.parametrize("dim", [3, 4, 5])
def test_a_resized_box_differs_from_its_tracks_median(dim: int) -> None:
    scene = make_scene()
    scene.labels[FRAME, index_of(scene, "car"), dim] *= 1.3
    result = dimension_change(build_table(scene.log(with_points=False)), QAConfig())
    assert findings(result) == [(FRAME, "car")]
    assert result.value[0] == pytest.approx(0.3)


def test_small_size_noise_and_short_tracks_are_not_changes() -> None:
    scene = make_scene()
    scene.labels[FRAME, index_of(scene, "walker"), 3] *= 1.15  # 9 cm on a pedestrian: below 0.15 m
    scene.present[2:, index_of(scene, "cone")] = False  # two observations: no median to trust
    scene.labels[1, index_of(scene, "cone"), 3] *= 3.0
    assert len(dimension_change(build_table(scene.log(with_points=False)), QAConfig())) == 0


def test_a_flipped_class_is_the_odd_one_of_its_track() -> None:
    scene = make_scene()
    scene.classes[FRAME, index_of(scene, "car")] = "cyclist"
    result = class_flip(build_table(scene.log(with_points=False)), QAConfig())
    assert findings(result) == [(FRAME, "car")]
    assert result.value[0] == pytest.approx(29 / 30)


def test_a_4m_pedestrian_and_a_tiny_car_are_implausible() -> None:
    scene = make_scene()
    scene.labels[FRAME, index_of(scene, "walker"), 3] = 4.0
    scene.labels[FRAME + 1, index_of(scene, "car"), 3:6] = (0.5, 0.4, 0.3)
    result = size_implausible(build_table(scene.log(with_points=False)), QAConfig())
    assert findings(result) == [(FRAME, "walker"), (FRAME + 1, "car")]
    assert result.value[0] == pytest.approx(2.0)  # 4 m against a 2 m limit


def test_a_box_sunk_into_the_road_is_below_ground() -> None:
    scene = make_scene()
    scene.labels[FRAME, index_of(scene, "car"), 2] -= 2.5
    result = below_ground(build_table(scene.log(with_points=False)), QAConfig())
    assert findings(result) == [(FRAME, "car")]
    assert result.value[0] == pytest.approx(-2.5)


def _one_box_log(source: str, z_m: float, x_m: float = 10.0, meta: dict | None = None) -> ImportedLog:
    box = np.array([[x_m, 0.0, z_m, 4.5, 1.9, 1.6, 0.0]])
    frame = Frame(timestamp_ns=0, ego_pose=(0.0, 0.0, 0.0, 0.0), boxes=box, classes=["vehicle"], track_ids=["a"])
    return ImportedLog(source=source, name="one", frames=[frame], meta=meta or {})


def test_the_ground_follows_the_sources_frame_convention() -> None:
    """KITTI's origin is its lidar, 1.73 m up: a car standing on the road has z_centre ~ -0.93 m."""
    on_road_kitti = _one_box_log("kitti", -1.73 + 0.8)
    assert len(below_ground(build_table(on_road_kitti), QAConfig())) == 0
    assert len(below_ground(build_table(_one_box_log("synthetic", -1.73 + 0.8)), QAConfig())) == 1
    overridden = _one_box_log("synthetic", -1.73 + 0.8, meta={"ground_z_m": -1.73})
    assert len(below_ground(build_table(overridden), QAConfig())) == 0


def test_far_boxes_may_sit_lower_where_the_road_slopes() -> None:
    assert len(below_ground(build_table(_one_box_log("synthetic", 0.8 - 3.0, x_m=60.0)), QAConfig())) == 0
    assert len(below_ground(build_table(_one_box_log("synthetic", 0.8 - 3.0, x_m=10.0)), QAConfig())) == 1
