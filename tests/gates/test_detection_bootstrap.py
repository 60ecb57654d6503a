"""Detection mAP bootstrap: exact agreement with detection_metrics, exact AP of resampled sets, slices."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from andon.errors import BadInput
from andon.gates import detection_bootstrap
from andon.gates.bootstrap import resample_counts
from andon.gates.detection_bootstrap import bootstrap_map, match_detections, weighted_map
from andon.models.detection_metrics import DetectionSet, evaluate_detection

TOL = 1e-9


def make_scene(n_scenarios: int, frames_per_scenario: int, max_gt: int, max_pred: int, seed: int,
               grid: bool = False, n_classes: int = 3) -> tuple[DetectionSet, DetectionSet, dict[str, str]]:
    """Random frames grouped in scenarios; most predictions near a ground-truth box of their class.

    `grid` puts centres on a 0.5 m grid and scores on quarters, so distances fall exactly on
    thresholds, boxes are equally near and scores tie (detection_metrics' tie rules are exercised).
    """
    rng = np.random.default_rng(seed)
    frame_ids = [f"s{s}-f{f}" for s in range(n_scenarios) for f in range(frames_per_scenario)]
    scenario_of_frame = {fid: fid.split("-")[0].replace("s", "scenario-") for fid in frame_ids}
    n_frames = len(frame_ids)
    gt_frame = np.repeat(np.arange(n_frames), rng.integers(0, max_gt + 1, n_frames))
    pred_frame = np.repeat(np.arange(n_frames), rng.integers(0, max_pred + 1, n_frames))

    def boxes(m: int) -> np.ndarray:
        xy = rng.integers(-8, 9, (m, 2)) * 0.5 if grid else rng.uniform(-30.0, 30.0, (m, 2))
        return np.column_stack([xy, np.zeros(m), np.ones((m, 3)), np.zeros(m)])

    gt_boxes, gt_classes = boxes(len(gt_frame)), rng.integers(0, n_classes, len(gt_frame))
    pred_boxes, pred_classes = boxes(len(pred_frame)), rng.integers(0, n_classes, len(pred_frame))
    for i, frame in enumerate(pred_frame):
        candidates = np.flatnonzero(gt_frame == frame)
        if candidates.size and rng.random() < 0.75:
            j = rng.choice(candidates)
            offset = rng.integers(-3, 4, 2) * 0.5 if grid else rng.normal(0.0, 1.2, 2)
            pred_boxes[i, :2] = gt_boxes[j, :2] + offset
            pred_classes[i] = gt_classes[j]
    scores = rng.integers(0, 5, len(pred_frame)) / 4 if grid else rng.random(len(pred_frame))
    gt = DetectionSet.from_arrays(frame_ids, gt_frame, gt_boxes, gt_classes)
    pred = DetectionSet.from_arrays(frame_ids, pred_frame, pred_boxes, pred_classes, scores=scores)
    return gt, pred, scenario_of_frame


def duplicated(gt: DetectionSet, pred: DetectionSet, scenario_of_frame: dict[str, str],
               multiplicity: dict[str, int]) -> tuple[DetectionSet, DetectionSet]:
    """The evaluation set with each scenario's frames repeated `multiplicity[scenario]` times."""
    gt_frames, pred_frames = [], []
    for g, p in zip(gt.to_json()["frames"], pred.to_json()["frames"], strict=True):
        for copy in range(multiplicity[scenario_of_frame[g["frame_id"]]]):
            gt_frames.append(dict(g, frame_id=f"{g['frame_id']}#{copy}"))
            pred_frames.append(dict(p, frame_id=f"{p['frame_id']}#{copy}"))
    return DetectionSet.from_frames(gt_frames, predictions=False), DetectionSet.from_frames(pred_frames, predictions=True)


def reference(gt: DetectionSet, pred: DetectionSet, **kwargs: Any) -> dict[str, Any]:
    return evaluate_detection(gt, pred, **kwargs)


# ---------------------------------------------------------------------------------------------
# Agreement with detection_metrics
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(12))
def test_all_weights_one_reproduce_detection_metrics(seed: int) -> None:
    gt, pred, scenarios = make_scene(6, 3, 7, 9, seed, grid=seed % 2 == 0)
    matched = match_detections(gt, pred, scenarios)
    mean_ap, class_ap = weighted_map(matched, np.ones(matched.n_scenarios, dtype=np.int64))
    expected = reference(gt, pred)
    assert abs(mean_ap[0] - expected["mAP"]) < TOL
    for c, name in enumerate(matched.classes):
        if name in expected["ap_mean"]:
            assert abs(class_ap[0, c] - expected["ap_mean"][name]) < TOL
        else:
            assert np.isnan(class_ap[0, c])


@pytest.mark.parametrize("seed", range(3))
def test_bootstrap_point_estimate_is_detection_metrics_map(seed: int) -> None:
    gt, pred, scenarios = make_scene(8, 2, 6, 8, 100 + seed, grid=seed == 1)
    thresholds = (0.5, 1.5, 3.0)
    matched = match_detections(gt, pred, scenarios, classes=["vehicle", "cyclist"], thresholds_m=thresholds)
    result = bootstrap_map(matched, 50, 0, 0.95)
    expected = reference(gt, pred, classes=["vehicle", "cyclist"], thresholds_m=thresholds)
    assert abs(result.mean_ap.estimate - expected["mAP"]) < TOL
    assert set(result.ap) == set(expected["ap_mean"])
    for name, value in expected["ap_mean"].items():
        assert abs(result.ap[name].estimate - value) < TOL


@pytest.mark.parametrize("seed", range(8))
def test_weighted_ap_is_the_ap_of_the_duplicated_scenarios(seed: int) -> None:
    # With untied scores the copies of a prediction rank together, so re-weighing is exact.
    gt, pred, scenarios = make_scene(7, 2, 6, 9, 200 + seed)
    matched = match_detections(gt, pred, scenarios)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        weights = rng.integers(0, 4, matched.n_scenarios)
        multiplicity = dict(zip(matched.scenario_ids, weights.tolist(), strict=True))
        if not (weights @ matched.gt_count).any():
            continue
        mean_ap, class_ap = weighted_map(matched, weights)
        expected = reference(*duplicated(gt, pred, scenarios, multiplicity))
        assert abs(mean_ap[0] - expected["mAP"]) < TOL
        for c, name in enumerate(matched.classes):
            if name in expected["ap_mean"]:
                assert abs(class_ap[0, c] - expected["ap_mean"][name]) < TOL


@pytest.mark.parametrize("block", [4, 8, 256])
def test_block_size_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    gt, pred, scenarios = make_scene(20, 3, 8, 12, 7)
    matched = match_detections(gt, pred, scenarios)
    counts = resample_counts(matched.n_scenarios, 3, 0, 40)
    expected = weighted_map(matched, counts)
    monkeypatch.setattr(detection_bootstrap, "_block_size", lambda n_pred: block)
    mean_ap, class_ap = weighted_map(matched, counts)
    assert np.array_equal(mean_ap, expected[0], equal_nan=True)
    assert np.array_equal(class_ap, expected[1], equal_nan=True)


def test_replicate_r_is_the_weighted_map_of_resample_r() -> None:
    gt, pred, scenarios = make_scene(15, 2, 6, 8, 11)
    matched = match_detections(gt, pred, scenarios)
    result = bootstrap_map(matched, 30, 5, 0.9)
    counts = resample_counts(matched.n_scenarios, 5, 0, 30)
    mean_ap, class_ap = weighted_map(matched, counts)
    assert np.array_equal(result.mean_ap.replicates, mean_ap, equal_nan=True)
    assert set(result.ap) == {"vehicle", "pedestrian", "cyclist"}  # "static" has no ground truth
    for name, ap in result.ap.items():
        assert np.array_equal(ap.replicates, class_ap[:, matched.classes.index(name)], equal_nan=True)
    assert result.mean_ap.low == np.quantile(mean_ap, 0.1) and result.mean_ap.high == np.quantile(mean_ap, 0.9)


def test_deterministic_whatever_the_threads_and_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    gt, pred, scenarios = make_scene(12, 2, 6, 8, 12)
    matched = match_detections(gt, pred, scenarios)
    one = bootstrap_map(matched, 40, 2, 0.95, workers=1)
    monkeypatch.setattr(detection_bootstrap, "chunk_rows", lambda bytes_per_row: 3)
    chunked = bootstrap_map(matched, 40, 2, 0.95, workers=3)
    assert np.array_equal(one.mean_ap.replicates, chunked.mean_ap.replicates)
    assert one.to_dict() == chunked.to_dict()
    assert bootstrap_map(matched, 40, 3, 0.95).to_dict() != one.to_dict()


# ---------------------------------------------------------------------------------------------
# Paired candidate - baseline
# ---------------------------------------------------------------------------------------------

def test_paired_difference_of_identical_models_is_zero() -> None:
    gt, pred, scenarios = make_scene(10, 2, 6, 8, 13)
    matched = match_detections(gt, pred, scenarios)
    result = bootstrap_map(matched, 60, 0, 0.95, baseline_matched=matched)
    diff = result.mean_ap_difference
    assert diff is not None and diff.estimate == diff.low == diff.high == 0.0
    assert set(result.ap_difference) == set(result.ap)
    assert result.baseline_mean_ap == result.mean_ap


def test_paired_difference_against_a_worse_baseline() -> None:
    gt, pred, scenarios = make_scene(40, 2, 6, 8, 14)
    rng = np.random.default_rng(0)
    worse = DetectionSet(pred.frame_ids, pred.frame_index, pred.boxes + np.r_[rng.normal(0, 1.0, (len(pred), 2)).T,
                                                                              np.zeros((5, len(pred)))].T,
                         pred.class_index, pred.scores)
    candidate = match_detections(gt, pred, scenarios)
    baseline = match_detections(gt, worse, scenarios)
    result = bootstrap_map(candidate, 300, 1, 0.95, baseline_matched=baseline)
    expected = reference(gt, pred)["mAP"] - reference(gt, worse)["mAP"]
    assert abs(result.mean_ap_difference.estimate - expected) < TOL
    assert result.mean_ap_difference.low > 0.0  # the noisier baseline is clearly worse
    # Paired: the difference's replicates are the differences of the two models' replicates.
    assert np.allclose(result.mean_ap_difference.replicates,
                       result.mean_ap.replicates - result.baseline_mean_ap.replicates, atol=1e-15)


def test_baseline_must_share_scenarios_classes_and_thresholds() -> None:
    gt, pred, scenarios = make_scene(6, 2, 5, 6, 15)
    matched = match_detections(gt, pred, scenarios)
    fewer = matched.subset(matched.scenario_ids[:4])
    with pytest.raises(BadInput, match="other scenarios than the candidate"):
        bootstrap_map(matched, 10, 0, 0.95, baseline_matched=fewer)
    other_classes = match_detections(gt, pred, scenarios, classes=["vehicle"])
    with pytest.raises(BadInput, match="same slice"):
        bootstrap_map(matched, 10, 0, 0.95, baseline_matched=other_classes)


# ---------------------------------------------------------------------------------------------
# Edge cases
# ---------------------------------------------------------------------------------------------

def test_no_predictions_gives_zero_ap() -> None:
    gt, pred, scenarios = make_scene(5, 2, 5, 0, 16)
    matched = match_detections(gt, pred, scenarios)
    result = bootstrap_map(matched, 20, 0, 0.95)
    assert result.mean_ap.estimate == result.mean_ap.low == result.mean_ap.high == 0.0
    assert reference(gt, pred)["mAP"] == 0.0


def test_a_predicted_class_without_ground_truth_is_left_out() -> None:
    frames = [f"f{i}" for i in range(4)]
    box = [[1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]]
    gt = DetectionSet.from_arrays(frames, [0, 1, 2, 3], box * 4, ["vehicle"] * 4)
    pred = DetectionSet.from_arrays(frames, [0, 1, 2, 3, 3], box * 5, ["vehicle"] * 3 + ["static", "pedestrian"],
                                    scores=[0.9, 0.8, 0.7, 0.6, 0.5])
    matched = match_detections(gt, pred, {f: f"scenario-{i // 2}" for i, f in enumerate(frames)})
    result = bootstrap_map(matched, 30, 0, 0.95)
    assert set(result.ap) == {"vehicle"}
    assert abs(result.mean_ap.estimate - reference(gt, pred)["mAP"]) < TOL


def test_a_class_in_one_scenario_is_undefined_where_that_scenario_is_not_drawn() -> None:
    frames = [f"f{i}" for i in range(6)]
    boxes = [[float(i), 0.0, 0.0, 1.0, 1.0, 1.0, 0.0] for i in range(6)]
    classes = ["vehicle"] * 5 + ["cyclist"]
    gt = DetectionSet.from_arrays(frames, range(6), boxes, classes)
    pred = DetectionSet.from_arrays(frames, range(6), boxes, classes, scores=np.linspace(0.9, 0.4, 6))
    scenario_of_frame = [f"scenario-{i // 2}" for i in range(6)]  # a sequence in frame order works too
    matched = match_detections(gt, pred, scenario_of_frame)
    result = bootstrap_map(matched, 200, 3, 0.95)
    counts = resample_counts(3, 3, 0, 200)
    not_drawn = int((counts[:, 2] == 0).sum())
    assert 0 < not_drawn < 200
    assert result.ap["cyclist"].undefined == not_drawn and result.ap["vehicle"].undefined == 0
    assert result.mean_ap.undefined == 0
    # Perfect detections: AP is 1 in every resample that has the class.
    assert result.ap["cyclist"].low == result.ap["cyclist"].high == pytest.approx(1.0, abs=1e-12)


def test_one_scenario_gives_a_degenerate_interval() -> None:
    gt, pred, _ = make_scene(1, 4, 6, 8, 17)
    matched = match_detections(gt, pred, {f: "only" for f in gt.frame_ids})
    result = bootstrap_map(matched, 25, 0, 0.95)
    assert result.mean_ap.low == result.mean_ap.high == result.mean_ap.estimate
    assert abs(result.mean_ap.estimate - reference(gt, pred)["mAP"]) < TOL


def test_no_ground_truth_makes_map_undefined() -> None:
    gt, pred, scenarios = make_scene(3, 2, 0, 5, 18)
    matched = match_detections(gt, pred, scenarios)
    with pytest.raises(BadInput, match="mAP is undefined"):
        bootstrap_map(matched, 10, 0, 0.95)


# ---------------------------------------------------------------------------------------------
# Slices
# ---------------------------------------------------------------------------------------------

def _kept(boxes: DetectionSet, keep: np.ndarray) -> DetectionSet:
    return DetectionSet(boxes.frame_ids, boxes.frame_index[keep], boxes.boxes[keep], boxes.class_index[keep],
                        None if boxes.scores is None else boxes.scores[keep])


def test_range_band_filters_both_sides_before_matching() -> None:
    gt, pred, scenarios = make_scene(10, 2, 8, 10, 19)
    matched = match_detections(gt, pred, scenarios, min_range_m=10.0, max_range_m=25.0)

    def band(boxes: DetectionSet) -> np.ndarray:
        r = np.hypot(boxes.boxes[:, 0], boxes.boxes[:, 1])
        return (r >= 10.0) & (r < 25.0)

    expected = reference(_kept(gt, band(gt)), _kept(pred, band(pred)))
    assert abs(bootstrap_map(matched, 5, 0, 0.95).mean_ap.estimate - expected["mAP"]) < TOL


def test_box_masks_filter_before_matching() -> None:
    gt, pred, scenarios = make_scene(10, 2, 8, 10, 20)
    rng = np.random.default_rng(1)
    gt_mask, pred_mask = rng.random(len(gt)) < 0.7, rng.random(len(pred)) < 0.8
    matched = match_detections(gt, pred, scenarios, gt_mask=gt_mask, pred_mask=pred_mask)
    expected = reference(_kept(gt, gt_mask), _kept(pred, pred_mask))
    assert abs(weighted_map(matched, np.ones(matched.n_scenarios))[0][0] - expected["mAP"]) < TOL


def test_subset_is_the_tag_slice_without_rematching() -> None:
    gt, pred, scenarios = make_scene(9, 2, 6, 8, 21)
    matched = match_detections(gt, pred, scenarios)
    chosen = ["scenario-1", "scenario-4", "scenario-8"]
    sliced = matched.subset(chosen)
    frames = [f for f in gt.frame_ids if scenarios[f] in chosen]
    keep_frame = np.isin(np.array(gt.frame_ids), frames)
    gt_s = DetectionSet.from_frames([f for f, k in zip(gt.to_json()["frames"], keep_frame, strict=True) if k], False)
    pred_s = DetectionSet.from_frames([f for f, k in zip(pred.to_json()["frames"], keep_frame, strict=True) if k],
                                      True)
    direct = match_detections(gt_s, pred_s, scenarios)
    assert sliced.scenario_ids == direct.scenario_ids == tuple(chosen)
    assert np.array_equal(sliced.gt_count, direct.gt_count)
    assert np.array_equal(sliced.class_start, direct.class_start)
    assert np.array_equal(sliced.is_tp, direct.is_tp) and np.array_equal(sliced.pred_score, direct.pred_score)
    assert sliced.n_frames == direct.n_frames == 6
    assert abs(weighted_map(sliced, np.ones(3))[0][0] - reference(gt_s, pred_s)["mAP"]) < TOL
    with pytest.raises(BadInput, match="not in the matched set"):
        matched.subset(["scenario-99"])
    with pytest.raises(BadInput, match="no scenarios selected"):
        matched.subset([])


def test_frames_in_file_form_are_accepted() -> None:
    gt, pred, scenarios = make_scene(4, 2, 5, 6, 22)
    from_sets = match_detections(gt, pred, scenarios)
    from_frames = match_detections(gt.to_json()["frames"], pred.to_json()["frames"], scenarios)
    assert np.array_equal(from_sets.is_tp, from_frames.is_tp)
    assert from_sets.n_gt() == from_frames.n_gt() and from_sets.n_frames == 8


@pytest.mark.parametrize("kwargs, match", [
    ({"scenario_of_frame": {}}, "have no scenario"),
    ({"scenario_of_frame": ["a"]}, "1 scenario ids for 4 ground-truth frames"),
    ({"scenario_of_frame": ["a", "b", "", "c"]}, "non-empty strings"),
    ({"classes": "vehicle"}, "give a list of class names"),
    ({"classes": ["truck"]}, "truck"),
    ({"classes": []}, "no classes"),
    ({"thresholds_m": (0.0, 1.0)}, "thresholds must be positive"),
    ({"min_range_m": 5.0, "max_range_m": 5.0}, "range band"),
    ({"gt_mask": np.ones(1000, dtype=bool)}, "gt_mask: give a boolean mask"),
    ({"pred_mask": np.ones(1)}, "pred_mask: give a boolean mask"),
])
def test_match_detections_rejects_bad_input(kwargs, match) -> None:
    gt, pred, scenarios = make_scene(2, 2, 3, 3, 23)
    args = {"gt_frames": gt, "pred_frames": pred, "scenario_of_frame": scenarios} | kwargs
    with pytest.raises(BadInput, match=match):
        match_detections(**args)


def test_predictions_for_other_frames_are_rejected() -> None:
    gt, pred, scenarios = make_scene(2, 2, 3, 3, 24)
    other = DetectionSet(("elsewhere",) + pred.frame_ids[1:], pred.frame_index, pred.boxes, pred.class_index,
                         pred.scores)
    with pytest.raises(BadInput, match="not in the ground truth"):
        match_detections(gt, other, scenarios)


def test_weights_are_validated() -> None:
    gt, pred, scenarios = make_scene(3, 1, 3, 3, 25)
    matched = match_detections(gt, pred, scenarios)
    for weights, match in (([1, 1], "need \\(rows, 3\\)"), ([1.5, 1, 1], "whole numbers"),
                           ([1, -1, 1], ">= 0"), ([np.nan, 1, 1], "whole numbers")):
        with pytest.raises(BadInput, match=match):
            weighted_map(matched, weights)


def test_to_dict_is_json_ready_and_sorted() -> None:
    gt, pred, scenarios = make_scene(6, 2, 6, 8, 26)
    matched = match_detections(gt, pred, scenarios)
    data = bootstrap_map(matched, 20, 0, 0.95, baseline_matched=matched).to_dict()
    assert list(data["ap"]) == sorted(data["ap"]) and data["mean_ap_difference"]["estimate"] == 0.0
    assert set(data) == {"mean_ap", "ap", "baseline_mean_ap", "baseline_ap", "mean_ap_difference", "ap_difference"}
