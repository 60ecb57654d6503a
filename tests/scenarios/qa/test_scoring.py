"""Scores of windows: in [0, 1], clean above corrupt, details naming frames and tracks."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from andon.errors import BadInput
from andon.scenarios.qa import CHECK_NAMES, WEIGHTS, QAConfig, run_checks, score_log, score_window
from andon.scenarios.qa.scoring import SCORE_SCALE
from tests.scenarios.qa._scenes import index_of, make_scene, shift_along_road


def _corrupt_scene():
    scene = make_scene(n_frames=40)
    shift_along_road(scene, 5, "car", 0.0, 3.0)  # first 2 s: jitter
    scene.labels[8, index_of(scene, "car"), 3] *= 1.5  # size change
    scene.classes[30, index_of(scene, "walker")] = "vehicle"  # last 2 s: class swap
    return scene


def _halves(log) -> list[tuple[str, int, int]]:
    t0, t1 = log.frames[0].timestamp_ns, log.frames[-1].timestamp_ns
    mid = log.frames[20].timestamp_ns
    return [("first", t0, mid - 1), ("second", mid, t1), ("whole", t0, t1)]


def test_clean_windows_score_one_and_corrupt_ones_less() -> None:
    clean = score_log(make_scene(n_frames=40).log(), _halves(make_scene(n_frames=40).log()))
    assert {sid: s for sid, (s, _) in clean.items()} == {"first": 1.0, "second": 1.0, "whole": 1.0}
    log = _corrupt_scene().log()
    scores = score_log(log, _halves(log))
    for sid, (score, _) in scores.items():
        assert 0.0 <= score < 1.0, sid
    # A rate: the whole window's weighted flags per box lie between its halves'.
    assert min(scores["first"][0], scores["second"][0]) <= scores["whole"][0] <= max(scores["first"][0],
                                                                                     scores["second"][0])


def test_the_score_is_the_exponential_of_the_weighted_flag_rate() -> None:
    log = _corrupt_scene().log()
    (score, details), = score_log(log, [_halves(log)[1]]).values()
    weighted = sum(details[name]["count"] * WEIGHTS[name] for name in CHECK_NAMES)
    assert weighted > 0
    assert score == pytest.approx(np.exp(-SCORE_SCALE * weighted / details["n_boxes"]))


def test_details_name_each_flagged_box_by_frame_time_and_track() -> None:
    log = _corrupt_scene().log()
    (score, details), = score_log(log, [_halves(log)[0]]).values()
    json.dumps(details, allow_nan=False)  # the catalog stores details as JSON
    assert details["n_boxes"] == 20 * 5 and details["qa_version"] == "1"
    assert set(CHECK_NAMES) <= set(details)
    assert details["jitter"]["items"] == [{"frame_index": 5, "timestamp_ns": log.frames[5].timestamp_ns,
                                           "track_id": "car", "value": pytest.approx(3.0, abs=0.05)}]
    assert details["dimension_change"]["items"][0]["frame_index"] == 8
    assert details["class_flip"]["count"] == 0  # the class swap is in the other half
    assert "median" in details["dimension_change"]["reason"]


def test_items_are_capped_but_counts_are_complete() -> None:
    scene = make_scene(n_frames=40)
    scene.labels[:, index_of(scene, "walker"), 3] = 4.0  # 40 implausible pedestrians
    log = scene.log(with_points=False)
    flags = run_checks(log)
    _, details = score_window(flags, (log.frames[0].timestamp_ns, log.frames[-1].timestamp_ns), max_items=20)
    assert details["size_implausible"]["count"] == 40 and len(details["size_implausible"]["items"]) == 20
    assert [i["frame_index"] for i in details["size_implausible"]["items"]] == list(range(20))


def test_score_window_and_score_log_agree_and_windows_include_both_ends() -> None:
    log = _corrupt_scene().log()
    flags = run_checks(log)
    t5 = log.frames[5].timestamp_ns
    score, details = score_window(flags, (t5, t5))  # one frame: the jittered one
    assert details["n_boxes"] == 5 and details["jitter"]["count"] == 1
    assert score_log(log, [("w", t5, t5)])["w"][0] == pytest.approx(score)
    between, details = score_window(flags, (t5 + 1, log.frames[6].timestamp_ns - 1))  # between two frames
    assert between == 1.0 and details["n_boxes"] == 0


def test_a_window_without_boxes_scores_one() -> None:
    log = _corrupt_scene().log()
    score, details = score_window(run_checks(log), (0, 10))
    assert score == 1.0 and details["n_boxes"] == 0


def test_weights_are_validated_and_zero_weight_ignores_a_check() -> None:
    scene = make_scene(n_frames=20)
    scene.classes[10, index_of(scene, "walker")] = "cyclist"  # a cyclist's size: only class_flip fires
    log = scene.log(with_points=False)
    window = [("w", log.frames[0].timestamp_ns, log.frames[-1].timestamp_ns)]
    assert score_log(log, window)["w"][0] < 1.0
    assert score_log(log, window, weights={"class_flip": 0.0})["w"][0] == 1.0
    with pytest.raises(BadInput, match="unknown QA check"):
        score_log(log, window, weights={"nope": 1.0})
    with pytest.raises(BadInput, match="finite number"):
        score_log(log, window, weights={"class_flip": -1.0})
    with pytest.raises(BadInput, match="before it starts"):
        score_log(log, [("w", 10, 5)])
    assert score_log(log, []) == {}


def test_the_config_reaches_the_checks() -> None:
    scene = make_scene(n_frames=20)
    scene.labels[10, index_of(scene, "car"), 3] *= 1.2
    log = scene.log(with_points=False)
    window = [("w", log.frames[0].timestamp_ns, log.frames[-1].timestamp_ns)]
    assert score_log(log, window)["w"][1]["dimension_change"]["count"] == 1
    assert score_log(log, window, QAConfig(dimension_rel_tol=0.3))["w"][1]["dimension_change"]["count"] == 0


@pytest.mark.parametrize("bad", [{"near_range_m": 0.0}, {"jitter_floor_m": -0.1}, {"lidar_period_s": float("nan")},
                                 {"heading_max_rad": 2.0}, {"gap_max_frames": 0}])
def test_bad_config_values_are_refused_by_name(bad: dict) -> None:
    with pytest.raises(BadInput, match=next(iter(bad))):
        QAConfig(**bad)


def test_logs_qa_cannot_judge_are_refused_with_the_reason() -> None:
    log = make_scene(n_frames=5).log(with_points=False)
    log.frames[3] = dataclasses.replace(log.frames[3], timestamp_ns=log.frames[1].timestamp_ns)
    with pytest.raises(BadInput, match="strictly increasing"):
        run_checks(log)
    log = make_scene(n_frames=5).log(with_points=False)
    log.frames[2] = dataclasses.replace(log.frames[2], classes=["truck", *log.frames[2].classes[1:]])
    with pytest.raises(BadInput, match="unknown classes"):
        run_checks(log)
    with pytest.raises(BadInput, match="at least one frame"):
        run_checks(dataclasses.replace(log, frames=[]))
