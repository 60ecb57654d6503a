"""Paired scenario bootstrap of nuScenes detection mAP: match once, re-accumulate per resample.

The statistic is `andon.models.detection_metrics`' mAP (DESIGN.md, "Evaluation files") of a
resampled evaluation set: scenarios are drawn with replacement (`andon.gates.bootstrap`'s resamples,
so the same seed draws the same scenarios as every other bootstrap), and a scenario drawn `m` times
counts `m` times. Matching is per frame, so it does not change when scenarios are duplicated: it is
done once (`match_detections`, by detection_metrics' own matcher), and each resample only re-weighs
the already matched predictions and the ground-truth counts by the scenario multiplicities.

Exactness. `weighted_map` computes the AP of the resampled set *exactly*, not an approximation by
weighted steps: the copies of a prediction drawn `m` times are ranked next to each other (they share
its score; ties between different predictions keep detection_metrics' order), so the explicit
precision/recall curve of the resampled set is known from the weighted cumulative TP and FP counts:
its points at recall level k/n_gt (k true positives) are the last prediction before the (k+1)-th
true-positive copy and that copy itself. For each of the 90 recall points kept by AP (recall > 0.1)
the level is found by exact floating-point comparison with `k / n_gt`, and the value is what
`np.interp(recall_points, recall, precision, right=0)` returns on the explicit curve, with its
arithmetic (equal recall: the last point's precision; otherwise the chord to the next point; before
the first point: its precision; beyond the last: 0). With every weight 1 this reproduces
`evaluate_detection`'s mAP to the last bits (tested to 1e-9); with weights it equals
`evaluate_detection` on the explicitly duplicated frames when scores do not tie.

Vectorised over resamples, in chunks of resamples with bounded memory (64 MB per thread). Per class
and chunk, the cumulative weights are needed only where the 90 recall points cross them, so they
are computed at two levels: the class's ranked predictions are cut into blocks of ~16; block sums
for every resample come from one sparse (blocks x scenarios) count matrix times the chunk's
scenario weights; one cumulative sum over blocks and one `np.searchsorted` for all resamples (the
rows laid end to end form one ascending array) find the block of each crossing; only that block is
scanned prediction by prediction. The work per resample is about (predictions + true positives per
threshold) multiply-adds plus 90 x block per threshold, with no per-prediction cumulative sum.

mAP of a resample averages the classes with ground truth in that resample (weighted count > 0),
as the definition averages the classes present in the ground truth; per-class AP of a resample
without that class's ground truth, and mAP of one without any, are undefined and left out of the
quantiles (`BootstrapResult.undefined`).

Slices (the evaluator builds one `MatchedDetections` per slice and bootstraps it):
- class: `classes=[...]`; mAP then averages those classes.
- range band: `min_range_m <= r < max_range_m`, r the BEV distance of the box centre from the ego;
  ground truth *and* predictions outside the band are removed before matching (the nuScenes
  devkit's class-range filter), so a box is never matched across the band edge.
- any other box mask: `gt_mask` / `pred_mask` over the boxes (DetectionSet order), also before matching.
- tag: `MatchedDetections.subset(scenario_ids)` keeps the scenarios with the tag; no rematching.
Candidate and baseline must be matched with the same slice and scenarios for a paired comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from andon.errors import BadInput
from andon.gates.bootstrap import (
    BootstrapResult,
    check_resampling,
    chunk_rows,
    map_resample_blocks,
    resample_counts,
    summarise,
)
from andon.models.detection_metrics import (
    FIRST_POINT,
    MIN_PRECISION,
    RECALL_POINTS,
    THRESHOLDS_M,
    DetectionSet,
    match_all,
)
from andon.models.eval_io import class_code
from andon.scenarios.records import CLASSES

# The recall points AP keeps (recall > 0.1), as detection_metrics computes them.
_RECALL_KEPT = RECALL_POINTS[FIRST_POINT:]


@dataclass(frozen=True, slots=True, eq=False)
class MatchedDetections:
    """Predictions matched once, grouped for re-accumulation under scenario weights.

    Predictions are stored class by class (in `classes` order), each class's ranked by score
    descending with ties in input order (detection_metrics' ranking).

    Attributes:
        scenario_ids: the resampling units, sorted.
        classes: evaluated class names, in andon's CLASSES order.
        thresholds_m: the centre-distance thresholds of AP [m].
        pred_scenario: (P,) int64 scenario (index into scenario_ids) of each prediction.
        pred_score: (P,) float64 score of each prediction.
        is_tp: (T, P) bool: prediction is a true positive at threshold t.
        class_start: (C + 1,) int64: the predictions of class c are rows class_start[c]:class_start[c+1].
        gt_count: (S, C) int64 ground-truth boxes per scenario and class.
        scenario_frames: (S,) int64 frames per scenario.
    """

    scenario_ids: tuple[str, ...]
    classes: tuple[str, ...]
    thresholds_m: tuple[float, ...]
    pred_scenario: np.ndarray
    pred_score: np.ndarray
    is_tp: np.ndarray
    class_start: np.ndarray
    gt_count: np.ndarray
    scenario_frames: np.ndarray

    @property
    def n_scenarios(self) -> int:
        """Scenarios (resampling units)."""
        return len(self.scenario_ids)

    @property
    def n_frames(self) -> int:
        """Frames evaluated."""
        return int(self.scenario_frames.sum())

    def n_gt(self) -> dict[str, int]:
        """Ground-truth boxes per class over all scenarios."""
        return {name: int(total) for name, total in zip(self.classes, self.gt_count.sum(axis=0), strict=True)}

    def subset(self, scenario_ids: Iterable[str]) -> MatchedDetections:
        """The same matches restricted to some scenarios (a tag slice); no rematching is needed.

        Raises:
            BadInput: a scenario id that is not in this set, or none given.
        """
        wanted = sorted(set(scenario_ids))
        position = {sid: i for i, sid in enumerate(self.scenario_ids)}
        unknown = [sid for sid in wanted if sid not in position]
        if unknown:
            raise BadInput(f"subset: {len(unknown)} scenario(s) not in the matched set, e.g. {unknown[0]!r}; "
                           f"choose among the evaluated scenarios")
        if not wanted:
            raise BadInput("subset: no scenarios selected; a slice needs at least one scenario")
        old = np.array([position[sid] for sid in wanted], dtype=np.int64)
        new_index = np.full(len(self.scenario_ids), -1, dtype=np.int64)
        new_index[old] = np.arange(len(old))
        keep = new_index[self.pred_scenario] >= 0
        kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
        class_start = kept_before[self.class_start]
        return MatchedDetections(tuple(wanted), self.classes, self.thresholds_m, new_index[self.pred_scenario[keep]],
                                 self.pred_score[keep], self.is_tp[:, keep], class_start, self.gt_count[old],
                                 self.scenario_frames[old])


@dataclass(frozen=True, slots=True)
class DetectionBootstrap:
    """Bootstrap bounds of mAP and per-class AP (mean over thresholds), and of their paired differences.

    Attributes:
        mean_ap: the candidate's mAP.
        ap: the candidate's AP per class with ground truth (mean over the thresholds).
        baseline_mean_ap: the baseline's mAP (None without a baseline).
        baseline_ap: the baseline's AP per class.
        mean_ap_difference: candidate mAP - baseline mAP, scenarios resampled jointly.
        ap_difference: candidate - baseline AP per class with ground truth in both.
    """

    mean_ap: BootstrapResult
    ap: dict[str, BootstrapResult]
    baseline_mean_ap: BootstrapResult | None = None
    baseline_ap: dict[str, BootstrapResult] = field(default_factory=dict)
    mean_ap_difference: BootstrapResult | None = None
    ap_difference: dict[str, BootstrapResult] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (replicates left out; classes sorted)."""
        return {
            "mean_ap": self.mean_ap.to_dict(),
            "ap": {name: self.ap[name].to_dict() for name in sorted(self.ap)},
            "baseline_mean_ap": None if self.baseline_mean_ap is None else self.baseline_mean_ap.to_dict(),
            "baseline_ap": {name: self.baseline_ap[name].to_dict() for name in sorted(self.baseline_ap)},
            "mean_ap_difference": None if self.mean_ap_difference is None else self.mean_ap_difference.to_dict(),
            "ap_difference": {name: self.ap_difference[name].to_dict() for name in sorted(self.ap_difference)},
        }


# ---------------------------------------------------------------------------------------------
# Matching once
# ---------------------------------------------------------------------------------------------

def _as_set(frames: DetectionSet | Iterable[Mapping[str, Any]], predictions: bool, source: str) -> DetectionSet:
    if isinstance(frames, DetectionSet):
        return frames
    return DetectionSet.from_frames(frames, predictions=predictions, source=source)


def _class_codes(classes: Sequence[str] | None) -> list[int]:
    if classes is None:
        return list(range(len(CLASSES)))
    if isinstance(classes, str):
        raise BadInput(f"classes={classes!r}: give a list of class names, e.g. [{classes!r}]")
    codes = sorted({class_code(c, "classes") for c in classes})
    if not codes:
        raise BadInput(f"no classes to evaluate; choose from {', '.join(CLASSES)}")
    return codes


def _box_mask(mask: Any, n: int, name: str) -> np.ndarray:
    if mask is None:
        return np.ones(n, dtype=bool)
    array = np.asarray(mask)
    if array.dtype != bool or array.shape != (n,):
        raise BadInput(f"{name}: give a boolean mask with one entry per box ({n}), got dtype {array.dtype} "
                       f"and shape {array.shape}")
    return array


def _select(boxes: DetectionSet, keep: np.ndarray) -> DetectionSet:
    return DetectionSet(boxes.frame_ids, boxes.frame_index[keep], boxes.boxes[keep], boxes.class_index[keep],
                        None if boxes.scores is None else boxes.scores[keep])


def _frame_scenarios(frame_ids: tuple[str, ...],
                     scenario_of_frame: Mapping[str, str] | Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """(sorted scenario ids, (frames,) scenario index of each ground-truth frame)."""
    if isinstance(scenario_of_frame, Mapping):
        missing = [f for f in frame_ids if f not in scenario_of_frame]
        if missing:
            raise BadInput(f"scenario_of_frame: {len(missing)} ground-truth frame(s) have no scenario, e.g. "
                           f"{missing[0]!r}; map every frame id to its scenario id")
        names = [scenario_of_frame[f] for f in frame_ids]
    else:
        names = list(scenario_of_frame)
        if len(names) != len(frame_ids):
            raise BadInput(f"scenario_of_frame: {len(names)} scenario ids for {len(frame_ids)} ground-truth frames; "
                           f"give one per frame in the ground truth's frame order, or a mapping frame id -> id")
    if any(not isinstance(s, str) or not s for s in names):
        raise BadInput("scenario_of_frame: scenario ids must be non-empty strings")
    scenario_ids = tuple(sorted(set(names)))
    position = {sid: i for i, sid in enumerate(scenario_ids)}
    return scenario_ids, np.array([position[s] for s in names], dtype=np.int64)


def match_detections(gt_frames: DetectionSet | Iterable[Mapping[str, Any]],
                     pred_frames: DetectionSet | Iterable[Mapping[str, Any]],
                     scenario_of_frame: Mapping[str, str] | Sequence[str],
                     classes: Sequence[str] | None = None,
                     thresholds_m: Sequence[float] = THRESHOLDS_M, *,
                     min_range_m: float = 0.0, max_range_m: float = float("inf"),
                     gt_mask: Any = None, pred_mask: Any = None) -> MatchedDetections:
    """Match predictions to ground truth once (detection_metrics' greedy matcher), for resampling.

    Args:
        gt_frames: ground truth: a DetectionSet or frames as in the evaluation file.
        pred_frames: predictions with scores, for exactly the ground truth's frames.
        scenario_of_frame: the scenario of each ground-truth frame: a mapping frame id -> scenario
            id, or one scenario id per frame in the ground truth's frame order.
        classes: classes to evaluate (default: all of andon's classes); mAP averages those with
            ground truth.
        thresholds_m: centre-distance thresholds [m] (default 0.5, 1, 2, 4).
        min_range_m: keep boxes whose BEV centre distance from the ego r satisfies
            min_range_m <= r < max_range_m (ground truth and predictions, before matching).
        max_range_m: see min_range_m.
        gt_mask: optional (N_gt,) bool, ground-truth boxes to keep (DetectionSet order).
        pred_mask: optional (N_pred,) bool, predictions to keep.

    Returns:
        The matches, grouped by class and ranked, with ground-truth counts per scenario and class.

    Raises:
        BadInput: malformed detections, frame sets that differ, unknown classes, frames without a
            scenario, bad thresholds, range band or masks.
    """
    gt = _as_set(gt_frames, False, "ground truth")
    pred = _as_set(pred_frames, True, "predictions")
    if pred.scores is None:
        raise BadInput("predictions have no scores; give one score per predicted box")
    codes = _class_codes(classes)
    thresholds = tuple(float(t) for t in thresholds_m)
    if not thresholds or any(not np.isfinite(t) or t <= 0 for t in thresholds):
        raise BadInput(f"thresholds must be positive metres, got {list(thresholds_m)}")
    min_range_m, max_range_m = float(min_range_m), float(max_range_m)
    if not (min_range_m >= 0 and max_range_m > min_range_m) or np.isnan(max_range_m):
        raise BadInput(f"range band [{min_range_m}, {max_range_m}) m: need 0 <= min_range_m < max_range_m")
    scenario_ids, frame_scenario = _frame_scenarios(gt.frame_ids, scenario_of_frame)

    def keep(boxes: DetectionSet, mask: Any, name: str) -> np.ndarray:
        distance = np.hypot(boxes.boxes[:, 0], boxes.boxes[:, 1])
        return (_box_mask(mask, len(boxes), name) & np.isin(boxes.class_index, codes)
                & (distance >= min_range_m) & (distance < max_range_m))

    gt = _select(gt, keep(gt, gt_mask, "gt_mask"))
    pred = _select(pred, keep(pred, pred_mask, "pred_mask"))
    match = match_all(gt, pred, thresholds)  # also checks that the frame sets agree
    gt_position = {frame_id: i for i, frame_id in enumerate(gt.frame_ids)}
    pred_gt_frame = np.array([gt_position[f] for f in pred.frame_ids], dtype=np.int64)[pred.frame_index] \
        if len(pred) else np.zeros(0, dtype=np.int64)
    order_parts, class_start = [], [0]
    for code in codes:
        members = np.flatnonzero(pred.class_index == code)
        order_parts.append(members[np.argsort(-pred.scores[members], kind="stable")])
        class_start.append(class_start[-1] + len(members))
    order = np.concatenate(order_parts) if order_parts else np.zeros(0, dtype=np.int64)
    column = np.full(len(CLASSES), -1, dtype=np.int64)
    column[codes] = np.arange(len(codes))
    gt_count = np.zeros((len(scenario_ids), len(codes)), dtype=np.int64)
    np.add.at(gt_count, (frame_scenario[gt.frame_index], column[gt.class_index]), 1)
    return MatchedDetections(scenario_ids, tuple(CLASSES[c] for c in codes), thresholds,
                             frame_scenario[pred_gt_frame[order]], pred.scores[order].copy(),
                             match[:, order] >= 0, np.asarray(class_start, dtype=np.int64), gt_count,
                             np.bincount(frame_scenario, minlength=len(scenario_ids)).astype(np.int64))


# ---------------------------------------------------------------------------------------------
# Re-accumulation under scenario weights
# ---------------------------------------------------------------------------------------------

def _interpolated_precision(level: np.ndarray, n_gt: np.ndarray, fp_before: np.ndarray, total_tp: np.ndarray,
                            total_fp: np.ndarray) -> np.ndarray:
    """np.interp(recall_points, recall, precision, right=0) on the explicit curve, per row and point.

    Counts are whole numbers (exact in float64); the arithmetic is np.interp's, so that with
    every weight 1 the result is detection_metrics' to the last bit.

    Args:
        level: (k, 90) int64 the largest L with L / n_gt <= x (float comparison), per recall point x.
        n_gt: (k, 1) weighted ground-truth count.
        fp_before: (k, 90) false-positive copies ranked before the (level + 1)-th true-positive copy
            (only read where level < total_tp).
        total_tp: (k, 1) true-positive copies; total_fp: (k, 1) false-positive copies.
    """
    x = _RECALL_KEPT[None, :]
    level_f = level.astype(np.float64)
    x0 = level_f / n_gt
    inside = level < total_tp
    f = np.where(inside, fp_before, total_fp).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = level_f / (level_f + f)  # precision of the last point at this recall level
        b = (level_f + 1.0) / (level_f + 1.0 + f)  # precision of the next true-positive copy
        slope = (b - a) / ((level_f + 1.0) / n_gt - x0)
        chord = slope * (x - x0) + a
    value = np.where(x0 == x, a, chord)
    # Before the first point (the first prediction is a TP): np.interp's left value, its precision 1.
    value = np.where((level == 0) & (f == 0), 1.0, value)
    # At the last recall level: its last point exactly, 0 beyond (right=0).
    return np.where(inside, value, np.where((level == total_tp) & (x0 == x), a, 0.0))


@dataclass(frozen=True, slots=True, eq=False)
class _ClassPlan:
    """One class's predictions cut into blocks of `block` consecutive ranks, for two-level sums.

    Cumulative weights are needed only where the 90 recall points cross: per row, block sums come
    from a sparse (blocks x scenarios) count matrix times the scenario weights (one multiply-add
    per prediction and resample, no dependency chain), a cumulative sum runs over the blocks only,
    and the one block holding each crossing is scanned prediction by prediction.

    Attributes:
        block: predictions per block (the last block is padded with weight-0 slots).
        slot_scenario: (blocks, block) scenario of each slot; S (a zero-weight column) for padding.
        all_counts: (blocks, S) CSR: predictions per block and scenario.
        tp_slots: per threshold, (blocks, block) bool true-positive slots (None: no true positive).
        tp_counts: per threshold, (blocks, S) CSR true positives per block and scenario (None: none).
    """

    block: int
    slot_scenario: np.ndarray
    all_counts: sparse.csr_matrix
    tp_slots: tuple[np.ndarray | None, ...]
    tp_counts: tuple[sparse.csr_matrix | None, ...]


def _block_size(n_pred: int) -> int:
    """A power of two near sqrt(n_pred / 360): balances the block sums against the in-block scans.

    The cost per resample is about n_pred / block (block sums) plus 90 * block * 4 (scans); 16 for
    50,000 predictions, the fastest measured. The result does not depend on it.
    """
    return int(np.clip(2 ** round(np.log2(max(1.0, np.sqrt(n_pred / (4 * len(_RECALL_KEPT)))))), 4, 256))


def _counts_matrix(block_of: np.ndarray, scenario: np.ndarray, n_blocks: int, n_scenarios: int) -> sparse.csr_matrix:
    matrix = sparse.csr_matrix((np.ones(len(block_of)), (block_of, scenario)), shape=(n_blocks, n_scenarios))
    matrix.sum_duplicates()
    return matrix


def _plans(matched: MatchedDetections) -> list[_ClassPlan | None]:
    """Per class, its block plan (None: no predictions)."""
    plans: list[_ClassPlan | None] = []
    n_scenarios = matched.n_scenarios
    for c in range(len(matched.classes)):
        lo, hi = int(matched.class_start[c]), int(matched.class_start[c + 1])
        n_pred = hi - lo
        if n_pred == 0:
            plans.append(None)
            continue
        block = _block_size(n_pred)
        n_blocks = -(-n_pred // block)
        padded = n_blocks * block
        scenario = matched.pred_scenario[lo:hi]
        block_of = np.arange(n_pred) // block
        slot_scenario = np.full(padded, n_scenarios, dtype=np.int64)
        slot_scenario[:n_pred] = scenario
        tp_slots, tp_counts = [], []
        for t in range(len(matched.thresholds_m)):
            flags = matched.is_tp[t, lo:hi]
            if not flags.any():
                tp_slots.append(None)
                tp_counts.append(None)
                continue
            slots = np.zeros(padded, dtype=bool)
            slots[:n_pred] = flags
            tp_slots.append(slots.reshape(n_blocks, block))
            tp_counts.append(_counts_matrix(block_of[flags], scenario[flags], n_blocks, n_scenarios))
        plans.append(_ClassPlan(block, slot_scenario.reshape(n_blocks, block),
                                _counts_matrix(block_of, scenario, n_blocks, n_scenarios), tuple(tp_slots),
                                tuple(tp_counts)))
    return plans


def _recall_levels(n_gt: np.ndarray) -> np.ndarray:
    """(k, 90) int64: per recall point x, the largest level L with L / n_gt <= x (float division)."""
    n = n_gt.astype(np.float64)[:, None]
    x = _RECALL_KEPT[None, :]
    level = np.floor(x * n).astype(np.int64)
    level = np.where((level + 1) / n <= x, level + 1, level)
    return np.where(level / n > x, level - 1, level)


def _row_cumsum(block_sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row inclusive cumulative sums of (blocks, k) block sums, laid end to end.

    Returns:
        ((k * blocks,) one ascending array, the rows' cumulative sums each shifted by `base`;
        (k, 1) base: the total of the rows before).
    """
    flat = np.cumsum(np.ascontiguousarray(block_sums.T).ravel())
    n_blocks = block_sums.shape[0]
    ends = flat[n_blocks - 1::n_blocks]
    return flat, np.concatenate([[0.0], ends[:-1]])[:, None]


def _class_ap_rows(plan: _ClassPlan | None, weights_t: np.ndarray, n_gt: np.ndarray, n_thresholds: int) -> np.ndarray:
    """(k, T) AP of one class per row of scenario weights; NaN where the row has no ground truth.

    Args:
        plan: the class's block plan (None: the class has no predictions).
        weights_t: (S + 1, k) float64 scenario multiplicities, transposed, with a last row of zeros
            (the padding slots' weight). Integer counts are exact in float64.
        n_gt: (k,) int64 weighted ground-truth count of the class per row.
        n_thresholds: T.
    """
    n_rows = weights_t.shape[1]
    ap = np.full((n_rows, n_thresholds), np.nan)
    rows = np.flatnonzero(n_gt > 0)
    if rows.size == 0:
        return ap
    ap[rows] = 0.0
    if plan is None:
        return ap  # no predictions: AP 0
    w_t = weights_t[:, rows] if rows.size < n_rows else weights_t
    k = len(rows)
    n_blocks, block = plan.slot_scenario.shape
    n = n_gt[rows].astype(np.float64)[:, None]
    level = _recall_levels(n_gt[rows])
    row_index = np.arange(k)[:, None]
    # Cumulative weight of all predictions at block ends, per row.
    all_flat, all_base = _row_cumsum(plan.all_counts @ w_t[:-1])
    total_w = all_flat[(row_index + 1) * n_blocks - 1] - all_base
    w_flat = np.ascontiguousarray(w_t).ravel()
    for t in range(n_thresholds):
        tp_counts, tp_slots = plan.tp_counts[t], plan.tp_slots[t]
        if tp_counts is None or tp_slots is None:
            continue  # no true positive: AP 0
        tp_flat, tp_base = _row_cumsum(tp_counts @ w_t[:-1])
        total_tp = tp_flat[(row_index + 1) * n_blocks - 1] - tp_base
        fp_before = np.zeros(level.shape)
        r_in, j_in = np.nonzero(level < total_tp)  # points below the highest recall: a TP copy follows
        if r_in.size:
            target = level[r_in, j_in] + 1
            tp_base_in = tp_base[r_in, 0]
            # The block holding true-positive copy `target`: the first block end with cumulative >= target.
            found = np.searchsorted(tp_flat, target + tp_base_in, side="left") - r_in * n_blocks
            before = found > 0
            prev = r_in * n_blocks + np.maximum(found - 1, 0)
            tp_before = np.where(before, tp_flat[prev] - tp_base_in, 0.0)
            w_before = np.where(before, all_flat[prev] - all_base[r_in, 0], 0.0)
            # Scan that block slot by slot, cumulating from the block's start.
            slot_weight = w_flat[plan.slot_scenario[found] * k + r_in[:, None]]  # (points, block)
            cum_all = np.cumsum(slot_weight, axis=1)
            cum_tp = np.cumsum(np.where(tp_slots[found], slot_weight, 0.0), axis=1)
            first = np.argmax(cum_tp + tp_before[:, None] >= target[:, None], axis=1)
            point = np.arange(r_in.size)
            fp_before[r_in, j_in] = (w_before + cum_all[point, first]) - (tp_before + cum_tp[point, first])
        precision = _interpolated_precision(level, n, fp_before, total_tp, total_w - total_tp)
        kept = np.clip(precision - MIN_PRECISION, 0.0, None)
        ap[rows, t] = np.mean(kept, axis=1) / (1.0 - MIN_PRECISION)
    return ap


def _weights(matched: MatchedDetections, weights: Any) -> np.ndarray:
    """(k, S) int64 multiplicities, validated."""
    w = np.asarray(weights)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.shape[1] != matched.n_scenarios:
        raise BadInput(f"weights: need (rows, {matched.n_scenarios}) scenario multiplicities, got {w.shape}")
    if w.dtype.kind not in "iu" and (w.dtype.kind not in "fb" or not np.all(np.isfinite(w))
                                     or not np.array_equal(w, np.round(w))):
        raise BadInput("weights: scenario multiplicities must be whole numbers")
    w = w.astype(np.int64)
    if (w < 0).any():
        raise BadInput("weights: scenario multiplicities must be >= 0")
    return w


def _weighted_map(matched: MatchedDetections, plans: list[_ClassPlan | None],
                  w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_gt = w @ matched.gt_count  # (k, C)
    weights_t = np.zeros((w.shape[1] + 1, w.shape[0]))
    weights_t[:-1] = w.T
    class_ap = np.empty((w.shape[0], len(matched.classes)))
    for c, plan in enumerate(plans):
        class_ap[:, c] = np.mean(_class_ap_rows(plan, weights_t, n_gt[:, c], len(matched.thresholds_m)), axis=1)
    present = ~np.isnan(class_ap)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_ap = np.where(present, class_ap, 0.0).sum(axis=1) / present.sum(axis=1)
    return mean_ap, class_ap


def weighted_map(matched: MatchedDetections, weights: Any) -> tuple[np.ndarray, np.ndarray]:
    """mAP and per-class AP of the evaluation set with scenarios counted by `weights`, per row.

    Args:
        matched: from match_detections.
        weights: (k, S) non-negative whole multiplicities per row (a resample), or (S,) for one row;
            all ones is the observed set.

    Returns:
        ((k,) mAP, (k, C) AP per class, mean over thresholds); NaN where a row has no ground truth
        of a class (AP) or of any class (mAP).

    Raises:
        BadInput: weights of the wrong shape, negative or not whole numbers.
    """
    return _weighted_map(matched, _plans(matched), _weights(matched, weights))


def _bytes_per_row(matched: MatchedDetections, plans: list[_ClassPlan | None]) -> int:
    """Memory of one resample row in _weighted_map: the largest class's working arrays."""
    blocks = max((plan.slot_scenario.shape[0] for plan in plans if plan is not None), default=0)
    block = max((plan.block for plan in plans if plan is not None), default=0)
    # ~8 eight-byte (90, block) scan arrays; ~6 float64 arrays of block sums; ~24 (90,) arrays of
    # the interpolation; the scenario weights (int32 counts; int64, float64 and row-subset copies).
    return 8 * (8 * 90 * block + 6 * blocks + 24 * 90) + 28 * matched.n_scenarios


def _check_pair(matched: MatchedDetections, baseline: MatchedDetections) -> None:
    if baseline.scenario_ids != matched.scenario_ids:
        differ = sorted(set(matched.scenario_ids) ^ set(baseline.scenario_ids))
        raise BadInput(f"baseline: evaluated on other scenarios than the candidate ({len(differ)} differ, e.g. "
                       f"{differ[0]!r}); a paired comparison needs the same frozen evaluation set" if differ else
                       "baseline: scenario order differs from the candidate's")
    if baseline.classes != matched.classes or baseline.thresholds_m != matched.thresholds_m:
        raise BadInput(f"baseline: matched for classes {list(baseline.classes)} at {list(baseline.thresholds_m)} m, "
                       f"the candidate for {list(matched.classes)} at {list(matched.thresholds_m)} m; match both "
                       f"with the same slice")


def bootstrap_map(matched: MatchedDetections, resamples: int, seed: int, confidence: float,
                  baseline_matched: MatchedDetections | None = None, *,
                  workers: int | None = None) -> DetectionBootstrap:
    """Paired scenario bootstrap of mAP and per-class AP (and of candidate - baseline).

    Args:
        matched: the candidate's matches (match_detections).
        resamples: bootstrap resamples (>= 1).
        seed: seed (>= 0); the same resamples as `paired_mean_bootstrap` with this seed.
        confidence: one-sided confidence of each bound, in (0.5, 1).
        baseline_matched: the baseline's matches on the same scenarios, classes and thresholds; its
            resamples are the candidate's (paired).
        workers: threads (default: available CPUs, at most 8); the result does not depend on it.

    Returns:
        Estimates (every scenario once: detection_metrics' mAP) with one-sided bounds.

    Raises:
        BadInput: no ground truth in the evaluated classes (mAP undefined), a baseline on other
            scenarios, classes or thresholds, or bad resampling settings.
    """
    check_resampling(resamples, confidence, seed)
    models = [matched] if baseline_matched is None else [matched, baseline_matched]
    if baseline_matched is not None:
        _check_pair(matched, baseline_matched)
    for which, m in zip(("candidate", "baseline"), models, strict=False):
        if not m.gt_count.any():
            raise BadInput(f"{which}: the ground truth has no boxes of {', '.join(m.classes)} in the evaluated "
                           f"slice; mAP is undefined")
    n_scenarios, n_classes = matched.n_scenarios, len(matched.classes)
    plans = [_plans(m) for m in models]
    ones = np.ones((1, n_scenarios), dtype=np.int64)
    estimates = [_weighted_map(m, p, ones) for m, p in zip(models, plans, strict=True)]

    def compute(start: int, stop: int) -> np.ndarray:
        counts = resample_counts(n_scenarios, seed, start, stop).astype(np.int64)
        parts = []
        for m, p in zip(models, plans, strict=True):
            mean_ap, class_ap = _weighted_map(m, p, counts)
            parts.extend([mean_ap[:, None], class_ap])
        return np.concatenate(parts, axis=1)

    rows = chunk_rows(max(_bytes_per_row(m, p) for m, p in zip(models, plans, strict=True)))
    replicates = map_resample_blocks(compute, resamples, block=rows, workers=workers)
    width = 1 + n_classes

    def result(estimate: float, column: np.ndarray) -> BootstrapResult:
        return summarise(estimate, column, resamples, float(confidence), int(seed), n_scenarios)

    def per_model(i: int) -> tuple[BootstrapResult, dict[str, BootstrapResult]]:
        mean_ap, class_ap = estimates[i]
        block = replicates[:, i * width:(i + 1) * width]
        ap = {name: result(float(class_ap[0, c]), block[:, 1 + c])
              for c, name in enumerate(matched.classes) if not np.isnan(class_ap[0, c])}
        return result(float(mean_ap[0]), block[:, 0]), ap

    mean_ap, ap = per_model(0)
    if baseline_matched is None:
        return DetectionBootstrap(mean_ap, ap)
    baseline_mean_ap, baseline_ap = per_model(1)
    difference = replicates[:, :width] - replicates[:, width:]
    ap_difference = {name: result(ap[name].estimate - baseline_ap[name].estimate, difference[:, 1 + c])
                     for c, name in enumerate(matched.classes) if name in ap and name in baseline_ap}
    return DetectionBootstrap(mean_ap, ap, baseline_mean_ap, baseline_ap,
                              result(mean_ap.estimate - baseline_mean_ap.estimate, difference[:, 0]), ap_difference)
