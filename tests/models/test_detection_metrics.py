"""nuScenes detection AP: hand-worked golden cases and agreement with a plain-loop reference.

The reference below follows the nuScenes devkit's structure (accumulate, then calc_ap / calc_tp),
written from DESIGN.md's definition with plain Python loops over predictions and ground truth. The
vectorised matcher must agree with it to 1e-6 on random scenes, including scenes built on a grid so
that distances tie, scores tie and distances fall exactly on thresholds.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from andon.errors import BadInput
from andon.models.detection_metrics import (
    DetectionSet,
    ap_from_matches,
    evaluate_detection,
    match_detections,
    recall_within,
)

GOLDEN = Path(__file__).parent / "golden" / "detection_hand_cases.json"
THRESHOLDS_M = (0.5, 1.0, 2.0, 4.0)
TOL = 1e-6


# ---------------------------------------------------------------------------------------------
# Reference: plain loops, devkit structure (accumulate -> calc_ap / calc_tp).
# ---------------------------------------------------------------------------------------------

def _ref_cummean(values: list[float]) -> list[float] | None:
    """Running mean that skips NaN; None when every value is NaN (the error is undefined)."""
    if all(math.isnan(v) for v in values):
        return None
    total, count, out = 0.0, 0, []
    for v in values:
        if not math.isnan(v):
            total += v
            count += 1
        out.append(total / count if count else 0.0)
    return out


def _ref_scale_error(gt_box: list[float], pred_box: list[float]) -> float:
    inter = volume_gt = volume_pred = 1.0
    for i in (3, 4, 5):
        inter *= min(gt_box[i], pred_box[i])
        volume_gt *= gt_box[i]
        volume_pred *= pred_box[i]
    return 1.0 - inter / (volume_gt + volume_pred - inter)


def _ref_yaw_error(a: float, b: float) -> float:
    diff = (a - b) % (2 * math.pi)
    return min(diff, 2 * math.pi - diff)


def reference_accumulate(gt_doc: dict, pred_doc: dict, cls: str, dist_th: float) -> dict[str, Any] | None:
    """Match and accumulate one class at one threshold; None when nothing matched (devkit's no_predictions)."""
    gt_by_frame: dict[str, list[tuple[list[float], list[float] | None]]] = {}
    npos = 0
    for frame in gt_doc["frames"]:
        velocities = frame.get("velocities")
        pairs = enumerate(zip(frame["boxes"], frame["classes"], strict=True))
        gt_by_frame[frame["frame_id"]] = [(box, velocities[i] if velocities else None)
                                          for i, (box, c) in pairs if c == cls]
        npos += len(gt_by_frame[frame["frame_id"]])
    preds = []
    for frame in pred_doc["frames"]:
        velocities = frame.get("velocities")
        for i, (box, c, score) in enumerate(zip(frame["boxes"], frame["classes"], frame["scores"], strict=True)):
            if c == cls:
                preds.append((frame["frame_id"], box, score, velocities[i] if velocities else None))
    ranked = sorted(preds, key=lambda p: -p[2])  # Python's sort is stable: ties keep input order
    taken: set[tuple[str, int]] = set()
    tp: list[int] = []
    fp: list[int] = []
    conf: list[float] = []
    errors: dict[str, list[float]] = {"trans_err_m": [], "scale_err": [], "orient_err_rad": [], "vel_err_mps": []}
    tp_conf: list[float] = []
    for frame_id, box, score, velocity in ranked:
        min_dist, best = math.inf, -1
        for j, (gt_box, _) in enumerate(gt_by_frame[frame_id]):
            if (frame_id, j) in taken:
                continue
            dx, dy = box[0] - gt_box[0], box[1] - gt_box[1]
            dist = math.sqrt(dx * dx + dy * dy)
            if dist < min_dist:
                min_dist, best = dist, j
        if min_dist < dist_th:
            taken.add((frame_id, best))
            tp.append(1)
            fp.append(0)
            gt_box, gt_velocity = gt_by_frame[frame_id][best]
            errors["trans_err_m"].append(min_dist)
            errors["scale_err"].append(_ref_scale_error(gt_box, box))
            errors["orient_err_rad"].append(_ref_yaw_error(box[6], gt_box[6]))
            if velocity is not None and gt_velocity is not None:
                errors["vel_err_mps"].append(math.hypot(velocity[0] - gt_velocity[0], velocity[1] - gt_velocity[1]))
            else:
                errors["vel_err_mps"].append(math.nan)
            tp_conf.append(score)
        else:
            tp.append(0)
            fp.append(1)
        conf.append(score)
    if not tp_conf:
        return None
    precision, recall, ctp, cfp = [], [], 0, 0
    for t, f in zip(tp, fp, strict=True):
        ctp += t
        cfp += f
        precision.append(ctp / (ctp + cfp))
        recall.append(ctp / npos)
    recall_points = np.linspace(0.0, 1.0, 101)
    md: dict[str, Any] = {"precision": np.interp(recall_points, recall, precision, right=0),
                          "confidence": np.interp(recall_points, recall, conf, right=0)}
    for key, values in errors.items():
        running = _ref_cummean(values)
        md[key] = None if running is None else np.interp(
            md["confidence"][::-1], tp_conf[::-1], running[::-1])[::-1]
    return md


def reference_calc_ap(md: dict[str, Any] | None) -> float:
    if md is None:
        return 0.0
    kept = [max(p - 0.1, 0.0) for p in md["precision"][11:]]
    return sum(kept) / len(kept) / 0.9


def reference_calc_tp(md: dict[str, Any] | None, key: str) -> float | None:
    if md is None:
        return 1.0
    if md[key] is None:
        return None
    last = 0
    for i, c in enumerate(md["confidence"]):
        if c != 0:
            last = i
    if last < 11:
        return 1.0
    values = md[key][11:last + 1]
    return sum(values) / len(values)


def reference_evaluate(gt_doc: dict, pred_doc: dict, thresholds_m: tuple[float, ...] = THRESHOLDS_M) -> dict:
    """mAP, AP per class and threshold, and TP errors at 2 m, for the classes in the ground truth."""
    classes = sorted({c for frame in gt_doc["frames"] for c in frame["classes"]})
    has_velocities = (any(f.get("velocities") for f in gt_doc["frames"])
                      and any(f.get("velocities") for f in pred_doc["frames"]))
    ap, tp_errors = {}, {}
    for cls in classes:
        ap[cls] = {str(t): reference_calc_ap(reference_accumulate(gt_doc, pred_doc, cls, t)) for t in thresholds_m}
        md = reference_accumulate(gt_doc, pred_doc, cls, 2.0)
        tp_errors[cls] = {key: reference_calc_tp(md, key) for key in ("trans_err_m", "scale_err", "orient_err_rad")}
        tp_errors[cls]["vel_err_mps"] = reference_calc_tp(md, "vel_err_mps") if has_velocities else None
    return {"mAP": sum(sum(v.values()) / len(v) for v in ap.values()) / len(ap), "ap": ap, "tp_errors": tp_errors}


# ---------------------------------------------------------------------------------------------
# Random scenes
# ---------------------------------------------------------------------------------------------

CLASSES3 = ("vehicle", "pedestrian", "cyclist")


def random_docs(seed: int, n_frames: int = 30, max_boxes: int = 12, spread_m: float = 8.0,
                velocities: bool = True) -> tuple[dict, dict]:
    """Dense random scenes: most boxes detected with noise, some missed, some false positives; no score ties."""
    rng = random.Random(seed)
    gt_frames, pred_frames = [], []
    for f in range(n_frames):
        gt_boxes, gt_classes, pred_boxes, pred_classes = [], [], [], []
        for _ in range(rng.randint(0, max_boxes)):
            box = [rng.uniform(-spread_m, spread_m), rng.uniform(-spread_m, spread_m), rng.uniform(0, 1),
                   rng.uniform(0.5, 5), rng.uniform(0.5, 2.5), rng.uniform(1, 2), rng.uniform(-math.pi, math.pi)]
            cls = rng.choice(CLASSES3)
            gt_boxes.append(box)
            gt_classes.append(cls)
            if rng.random() < 0.75:
                noisy = [box[0] + rng.gauss(0, 1.2), box[1] + rng.gauss(0, 1.2), box[2],
                         box[3] * rng.uniform(0.7, 1.3), box[4] * rng.uniform(0.7, 1.3), box[5],
                         box[6] + rng.gauss(0, 0.5)]
                pred_boxes.append(noisy)
                pred_classes.append(cls if rng.random() < 0.9 else rng.choice(CLASSES3))
        for _ in range(rng.randint(0, 4)):
            pred_boxes.append([rng.uniform(-spread_m, spread_m), rng.uniform(-spread_m, spread_m), 0.5,
                               rng.uniform(0.5, 5), rng.uniform(0.5, 2.5), 1.5, rng.uniform(-math.pi, math.pi)])
            pred_classes.append(rng.choice(CLASSES3))
        order = list(range(len(pred_boxes)))
        rng.shuffle(order)  # the file's box order must not matter beyond tie-breaking
        gt_frame = {"frame_id": f"frame-{f:03d}", "boxes": gt_boxes, "classes": gt_classes}
        pred_frame = {"frame_id": f"frame-{f:03d}", "boxes": [pred_boxes[i] for i in order],
                      "classes": [pred_classes[i] for i in order], "scores": [rng.random() for _ in order]}
        if velocities:
            gt_frame["velocities"] = [[rng.gauss(0, 3), rng.gauss(0, 3)] for _ in gt_boxes]
            pred_frame["velocities"] = [[rng.gauss(0, 3), rng.gauss(0, 3)] for _ in order]
        gt_frames.append(gt_frame)
        pred_frames.append(pred_frame)
    rng.shuffle(pred_frames)  # frames are joined by id, not position
    return {"frames": gt_frames}, {"frames": pred_frames}


def _sets(gt_doc: dict, pred_doc: dict) -> tuple[DetectionSet, DetectionSet]:
    return DetectionSet.from_json(gt_doc, predictions=False), DetectionSet.from_json(pred_doc, predictions=True)


def _assert_agrees(result: dict, expected: dict) -> None:
    assert result["ap"].keys() == expected["ap"].keys()
    assert result["mAP"] == pytest.approx(expected["mAP"], abs=TOL)
    for cls, per_threshold in expected["ap"].items():
        for key, value in per_threshold.items():
            assert result["ap"][cls][key] == pytest.approx(value, abs=TOL), (cls, key)
        for key, value in expected["tp_errors"][cls].items():
            got = result["tp_errors"][cls][key]
            assert (got is None and value is None) or got == pytest.approx(value, abs=TOL), (cls, key)


# ---------------------------------------------------------------------------------------------
# Hand-worked cases (golden file: inputs, expected outputs and the derivation of each)
# ---------------------------------------------------------------------------------------------

GOLDEN_CASES = json.loads(GOLDEN.read_text())["cases"]


def test_hand_worked_ap_from_tp_flags() -> None:
    # Perfect: 1 GT, 1 TP. Recall [1], precision [1]; np.interp holds 1 at every recall point, so
    # each of the 90 kept points (recall 0.11..1.00) is (1 - 0.1) / 0.9 = 1: AP 1.
    assert ap_from_matches([0.9], [True], 1) == pytest.approx(1.0, abs=1e-12)
    # FP ranked first: TP = [0, 1], precision [0, 1/2] at recall [0, 1], so precision(r) = r / 2. A kept
    # point i (recall i/100) scores max(i/200 - 0.1, 0) = (i - 20)/200 for i >= 20; the sum over
    # i = 20..100 is 3240/200 = 16.2, the mean over 90 points 0.18, divided by 0.9: AP 0.2.
    assert ap_from_matches([0.9, 0.8], [False, True], 1) == pytest.approx(0.2, abs=1e-12)
    # Two GT, the best-ranked prediction a TP, then an FP: recall [1/2, 1/2], precision [1, 1/2].
    # Points 11..49 lie left of recall 1/2: precision 1 (0.9 each); point 50 is exactly 1/2, where
    # np.interp takes the last value, 1/2 (0.4); beyond: 0. (39 * 0.9 + 0.4) / 90 / 0.9 = 35.5/81.
    assert ap_from_matches([0.9, 0.8], [True, False], 2) == pytest.approx(35.5 / 81, abs=1e-12)
    # Same flags with a third, never-detected GT: recall [1/3, 1/3]; points 11..33 (23 of them) have
    # precision 1, the rest 0: 23 * 0.9 / 90 / 0.9 = 23/90.
    assert ap_from_matches([0.9, 0.8], [True, False], 3) == pytest.approx(23 / 90, abs=1e-12)


@pytest.mark.parametrize("case", GOLDEN_CASES, ids=[c["name"] for c in GOLDEN_CASES])
def test_golden_hand_cases(case: dict) -> None:
    gt, pred = _sets(case["gt"], case["pred"])
    result = evaluate_detection(gt, pred)
    expected = case["expected"]
    if "ap" in expected:
        assert result["ap"].keys() == expected["ap"].keys()
        for cls, per_threshold in expected["ap"].items():
            assert result["ap"][cls] == pytest.approx(per_threshold, abs=1e-12), cls
        assert result["mAP"] == pytest.approx(expected["mAP"], abs=1e-12)
    if "classes_without_gt" in expected:
        assert result["classes_without_gt"] == expected["classes_without_gt"]
    if "tp_errors" in expected:
        for cls, errors in expected["tp_errors"].items():
            assert result["tp_errors"][cls] == pytest.approx(errors, abs=1e-12), cls
    # The reference agrees with every hand case too: the cases pin the reference as well.
    _assert_agrees(result, reference_evaluate(case["gt"], case["pred"]))


def test_perfect_detector_over_many_frames_has_ap_one() -> None:
    gt_doc, _ = random_docs(seed=3, velocities=False)
    pred_doc = {"frames": [{**f, "scores": [0.5 + 0.001 * i for i in range(len(f["boxes"]))]}
                           for f in gt_doc["frames"]]}
    result = evaluate_detection(*_sets(gt_doc, pred_doc))
    assert result["mAP"] == pytest.approx(1.0, abs=1e-12)  # (1 - 0.1) / 0.9 rounds a hair above 1, as in the devkit
    assert all(e["trans_err_m"] == 0.0 and e["scale_err"] == 0.0 for e in result["tp_errors"].values())


def test_no_true_positive_at_all_scores_worst_tp_errors() -> None:
    gt_doc = {"frames": [{"frame_id": "f", "boxes": [[0, 0, 0, 4, 2, 1.5, 0]], "classes": ["vehicle"]}]}
    pred_doc = {"frames": [{"frame_id": "f", "boxes": [[9, 0, 0, 4, 2, 1.5, 0]], "classes": ["vehicle"],
                            "scores": [0.9]}]}
    result = evaluate_detection(*_sets(gt_doc, pred_doc))
    assert result["tp_errors"]["vehicle"] == {"trans_err_m": 1.0, "scale_err": 1.0, "orient_err_rad": 1.0,
                                              "vel_err_mps": None, "n_tp": 0}


def test_classes_filter_and_counts() -> None:
    gt, pred = _sets(*random_docs(seed=5))
    full = evaluate_detection(gt, pred)
    only = evaluate_detection(gt, pred, classes=["pedestrian"])
    assert list(only["ap"]) == ["pedestrian"] and only["ap"]["pedestrian"] == full["ap"]["pedestrian"]
    assert only["mAP"] == pytest.approx(full["ap_mean"]["pedestrian"])
    assert sum(full["n_gt"].values()) == len(gt) and sum(full["n_pred"].values()) == len(pred)
    with pytest.raises(BadInput, match="unknown class 'truck'"):
        evaluate_detection(gt, pred, classes=["truck"])
    with pytest.raises(BadInput, match="mAP is undefined"):
        evaluate_detection(gt, pred, classes=["static"])


def test_frames_must_agree_and_predictions_need_scores() -> None:
    gt_doc, pred_doc = random_docs(seed=1, n_frames=3)
    gt, pred = _sets(gt_doc, pred_doc)
    fewer = DetectionSet.from_json({"frames": pred_doc["frames"][:2]}, predictions=True)
    with pytest.raises(BadInput, match="no predictions for 1 ground-truth frame"):
        evaluate_detection(gt, fewer)
    extra = DetectionSet.from_json({"frames": [*pred_doc["frames"], {"frame_id": "x", "boxes": [], "classes": [],
                                                                     "scores": []}]}, predictions=True)
    with pytest.raises(BadInput, match="not in the ground truth, e.g. 'x'"):
        evaluate_detection(gt, extra)
    with pytest.raises(BadInput, match="no scores"):
        evaluate_detection(gt, gt)


def test_set_round_trips_through_json_and_arrays() -> None:
    gt_doc, pred_doc = random_docs(seed=2, n_frames=5)
    pred = DetectionSet.from_json(pred_doc, predictions=True)
    again = DetectionSet.from_json(pred.to_json(), predictions=True)
    assert again.frame_ids == pred.frame_ids
    np.testing.assert_array_equal(again.boxes, pred.boxes)
    np.testing.assert_array_equal(again.scores, pred.scores)
    np.testing.assert_array_equal(again.velocities_mps, pred.velocities_mps)
    from_frames = DetectionSet.from_frames(pred_doc["frames"])  # scores in the frames: read as predictions
    np.testing.assert_array_equal(from_frames.scores, pred.scores)
    assert DetectionSet.from_frames(gt_doc["frames"]).scores is None
    arrays = DetectionSet.from_arrays(pred.frame_ids, pred.frame_index, pred.boxes,
                                      [["vehicle", "pedestrian", "cyclist", "static"][c] for c in pred.class_index],
                                      pred.scores)
    np.testing.assert_array_equal(arrays.class_index, pred.class_index)
    with pytest.raises(BadInput, match="sizes"):
        DetectionSet.from_arrays(["f"], [0], [[0, 0, 0, 0, 1, 1, 0]], ["vehicle"])


# ---------------------------------------------------------------------------------------------
# Agreement with the reference
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_reference_on_random_scenes(seed: int) -> None:
    gt_doc, pred_doc = random_docs(seed, velocities=seed % 2 == 0)
    _assert_agrees(evaluate_detection(*_sets(gt_doc, pred_doc)), reference_evaluate(gt_doc, pred_doc))


def test_agrees_with_reference_on_crowded_frames() -> None:
    # Many boxes per frame in a small area: long greedy chains, many blocks of the padded matcher.
    gt_doc, pred_doc = random_docs(seed=11, n_frames=8, max_boxes=60, spread_m=5.0)
    _assert_agrees(evaluate_detection(*_sets(gt_doc, pred_doc)), reference_evaluate(gt_doc, pred_doc))


_grid = st.sampled_from([i * 0.5 for i in range(-6, 7)])  # exact distances: ties and on-threshold matches
_box = st.tuples(_grid, _grid, st.sampled_from(CLASSES3[:2]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(st.tuples(st.lists(_box, max_size=6),
                                 st.lists(st.tuples(_box, st.sampled_from([0.2, 0.4, 0.6, 0.8])), max_size=8)),
                       min_size=1, max_size=4))
def test_agrees_with_reference_on_grid_scenes_with_ties(frames: list) -> None:
    def box(x: float, y: float) -> list[float]:
        return [x, y, 0.5, 4.0, 2.0, 1.5, 0.0]

    gt_doc = {"frames": [{"frame_id": f"f{i}", "boxes": [box(x, y) for x, y, _ in g], "classes": [c for *_, c in g]}
                         for i, (g, _) in enumerate(frames)]}
    pred_doc = {"frames": [{"frame_id": f"f{i}", "boxes": [box(x, y) for (x, y, _), _ in p],
                            "classes": [c for (*_, c), _ in p], "scores": [s for _, s in p]}
                           for i, (_, p) in enumerate(frames)]}
    if not any(f["boxes"] for f in gt_doc["frames"]):
        with pytest.raises(BadInput, match="mAP is undefined"):
            evaluate_detection(*_sets(gt_doc, pred_doc))
        return
    _assert_agrees(evaluate_detection(*_sets(gt_doc, pred_doc)), reference_evaluate(gt_doc, pred_doc))


# ---------------------------------------------------------------------------------------------
# Match once, re-accumulate (the gate's paired bootstrap)
# ---------------------------------------------------------------------------------------------

def test_matches_reaccumulate_to_the_same_ap_and_per_frame_subsets() -> None:
    gt_doc, pred_doc = random_docs(seed=7, n_frames=40)
    gt, pred = _sets(gt_doc, pred_doc)
    full = evaluate_detection(gt, pred)
    matches = match_detections(gt, pred, 2.0)
    for cls in full["ap"]:
        assert matches.ap(cls) == pytest.approx(full["ap"][cls]["2.0"], abs=1e-12)
    # A resample of frames re-accumulates from the same matches: matching never crosses frames.
    chosen = np.arange(0, 40, 3)
    keep_pred = np.isin(matches.frame, chosen)
    counts = matches.gt_count_per_frame()[chosen].sum(axis=0)
    subset_ids = {gt.frame_ids[i] for i in chosen}
    sub_gt = {"frames": [f for f in gt_doc["frames"] if f["frame_id"] in subset_ids]}
    sub_pred = {"frames": [f for f in pred_doc["frames"] if f["frame_id"] in subset_ids]}
    subset = evaluate_detection(*_sets(sub_gt, sub_pred))
    for code, cls in enumerate(("vehicle", "pedestrian", "cyclist")):
        if cls in subset["ap"]:
            mask = keep_pred & (matches.class_index == code)
            got = ap_from_matches(matches.score[mask], matches.is_tp[mask], int(counts[code]))
            assert got == pytest.approx(subset["ap"][cls]["2.0"], abs=1e-12)
    tp = matches.is_tp
    assert np.all(matches.dist_m[tp] < 2.0) and np.all(np.isnan(matches.dist_m[~tp]))
    assert len(set(matches.gt_index[tp].tolist())) == int(tp.sum())  # each GT box matched at most once


def test_ap_from_matches_checks_its_inputs() -> None:
    assert ap_from_matches([0.9, 0.8], [False, True], 1) == pytest.approx(0.2)
    with pytest.raises(BadInput, match="undefined without ground truth"):
        ap_from_matches([0.9], [True], 0)
    with pytest.raises(BadInput, match="2 scores but 1"):
        ap_from_matches([0.9, 0.1], [True], 1)


# ---------------------------------------------------------------------------------------------
# Recall within range (suite check "pedestrians within 30 m are detected")
# ---------------------------------------------------------------------------------------------

def test_recall_within_range() -> None:
    def ped(x: float, y: float) -> list[float]:
        return [x, y, 0.9, 0.6, 0.6, 1.7, 0.0]

    # Pedestrians at 10 m (detected), 25 m (missed), 40 m (detected, out of range), 30 m exactly (in range,
    # detected only by a low-scoring box).
    gt = DetectionSet.from_json({"frames": [{"frame_id": "f",
                                             "boxes": [ped(10, 0), ped(0, 25), ped(40, 0), ped(0, -30)],
                                             "classes": ["pedestrian"] * 4}]}, predictions=False)
    pred = DetectionSet.from_json({"frames": [{"frame_id": "f",
                                               "boxes": [ped(10.5, 0), ped(40, 0.5), ped(0, -30.2), ped(0, 25)],
                                               "classes": ["pedestrian", "pedestrian", "pedestrian", "vehicle"],
                                               "scores": [0.9, 0.9, 0.1, 0.9]}]}, predictions=True)
    assert recall_within(gt, pred, "pedestrian", max_range_m=30.0) == pytest.approx(2 / 3)
    assert recall_within(gt, pred, "pedestrian", max_range_m=30.0, min_score=0.5) == pytest.approx(1 / 3)
    assert recall_within(gt, pred, "pedestrian", max_range_m=30.0, threshold_m=0.5) == pytest.approx(1 / 3)
    assert math.isnan(recall_within(gt, pred, "pedestrian", max_range_m=5.0))
    assert math.isnan(recall_within(gt, pred, "cyclist"))
