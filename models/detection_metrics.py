"""nuScenes detection metrics: AP at centre-distance thresholds, true-positive errors, recall in range.

The definition is nuScenes' (DESIGN.md, "Evaluation files"), restated so it can be checked:

1. Per class, the predictions of all frames are ranked by score, descending. Ties keep input order
   (frame order of the file, then box order): a stable sort. The nuScenes devkit sorts
   `(score, index)` ascending and reverses, which puts tied predictions in *reverse* input order; we
   choose input order so a detector that emits boxes in its own rank order is read as it meant.
2. In rank order, each prediction is matched greedily to the nearest not yet matched ground-truth box
   of the same class in its own frame, by BEV centre distance `sqrt(dx*dx + dy*dy)`; among equally
   near boxes, the first in input order. It is a true positive only if that distance is strictly
   below the threshold, else a false positive.
3. Cumulative TP and FP give raw precision TP/(TP+FP) and recall TP/n_gt (no precision envelope).
   Precision is linearly interpolated at the 101 recall points `linspace(0, 1, 101)` with 0 beyond
   the highest recall reached (`np.interp(rec_interp, rec, prec, right=0)`).
4. AP drops the points at recall <= 0.1 (keeps indices 11..100), subtracts 0.1 from precision,
   clips at 0, and divides the mean by 0.9.
5. mAP is the mean, over the classes present in the ground truth, of the mean AP over the
   thresholds 0.5, 1, 2 and 4 m. A class with ground truth but no predictions has AP 0; a class
   predicted but absent from the ground truth is reported and left out of mAP.

True-positive errors follow the devkit at the 2 m threshold: per TP the translation error (BEV
centre distance, m), the scale error (1 - IoU of the two boxes aligned on centre and yaw), the
orientation error (smallest yaw difference, rad, in [0, pi]) and the velocity error (L2 of
(vx, vy), m/s, when both files give velocities). Each error's running mean over the ranked TPs is
read at the recall points through the interpolated confidence, and averaged over the points with
recall > 0.1 up to the highest recall reached; a class that never gets there scores 1.0 (the
devkit's worst value). No range filtering or lidar-point filtering is applied: the contract has none.

Matching is vectorised: predictions and ground truth are grouped by (frame, class); a loop over the
rank *within* a group matches the k-th prediction of every group at once against its group's padded
ground truth, for every threshold. It runs max(predictions per group) times, not once per prediction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.models.eval_io import class_code, detection_columns, load_json
from andon.scenarios.records import BOX_DIM, CLASSES

THRESHOLDS_M: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
TP_THRESHOLD_M = 2.0
MIN_RECALL = 0.1
MIN_PRECISION = 0.1
N_RECALL_POINTS = 101
RECALL_POINTS = np.linspace(0.0, 1.0, N_RECALL_POINTS)
FIRST_POINT = round(100 * MIN_RECALL) + 1  # index 11: the first recall point kept (recall > 0.1)
# Elements of one padded (groups x ground truth) block in the matcher: bounds its memory (8 MB).
_BLOCK_ELEMENTS = 1 << 20


@dataclass(frozen=True, slots=True, eq=False)
class DetectionSet:
    """The frames of a detection file, columnar: one row per box, across all frames.

    Attributes:
        frame_ids: one id per frame, unique.
        frame_index: (N,) int64, the frame of each box (index into frame_ids).
        boxes: (N, 7) float64: x, y, z_centre, length, width, height [m], yaw [rad], ego frame.
        class_index: (N,) int64 index into andon's CLASSES.
        scores: (N,) float64 confidence of predictions; None for ground truth.
        velocities_mps: (N, 2) float64 (vx, vy) [m/s], NaN where unknown; None when not given.
    """

    frame_ids: tuple[str, ...]
    frame_index: np.ndarray
    boxes: np.ndarray
    class_index: np.ndarray
    scores: np.ndarray | None = None
    velocities_mps: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if len(set(self.frame_ids)) != len(self.frame_ids):
            raise BadInput("DetectionSet: duplicate frame ids; each frame must appear once")
        if self.boxes.ndim != 2 or self.boxes.shape[1] != BOX_DIM:
            raise BadInput(f"DetectionSet: boxes must be (N, {BOX_DIM}), got {self.boxes.shape}")
        for name, array, shape in (("frame_index", self.frame_index, (n,)), ("class_index", self.class_index, (n,)),
                                   ("scores", self.scores, (n,)), ("velocities_mps", self.velocities_mps, (n, 2))):
            if array is not None and array.shape != shape:
                raise BadInput(f"DetectionSet: {name} must have shape {shape}, got {array.shape}")
        if n and (self.frame_index.min() < 0 or self.frame_index.max() >= len(self.frame_ids)):
            raise BadInput("DetectionSet: frame_index points outside frame_ids")
        if n and (self.class_index.min() < 0 or self.class_index.max() >= len(CLASSES)):
            raise BadInput(f"DetectionSet: class_index outside 0..{len(CLASSES) - 1} ({', '.join(CLASSES)})")
        if not np.isfinite(self.boxes).all() or (self.scores is not None and not np.isfinite(self.scores).all()):
            raise BadInput("DetectionSet: boxes and scores must be finite numbers")
        if (self.boxes[:, 3:6] <= 0).any():
            raise BadInput("DetectionSet: box sizes (length, width, height) must be > 0 m")

    @classmethod
    def from_arrays(cls, frame_ids: Sequence[str], frame_index: Any, boxes: Any, classes: Any,
                    scores: Any = None, velocities_mps: Any = None) -> DetectionSet:
        """Build from flat arrays; `classes` are names or indices into CLASSES."""
        classes = np.asarray(classes)
        if classes.dtype.kind in "iu":
            class_index = classes.astype(np.int64)
        else:
            class_index = np.array([class_code(c, "DetectionSet") for c in classes.tolist()], dtype=np.int64)
        return cls(tuple(frame_ids), np.asarray(frame_index, dtype=np.int64).reshape(-1),
                   np.asarray(boxes, dtype=np.float64).reshape(-1, BOX_DIM), class_index,
                   None if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1),
                   None if velocities_mps is None else np.asarray(velocities_mps, dtype=np.float64).reshape(-1, 2))

    @classmethod
    def from_frames(cls, frames: Iterable[Mapping[str, Any]], predictions: bool | None = None,
                    source: str = "detections") -> DetectionSet:
        """Build from frames shaped like the file's: {"frame_id", "boxes", "classes", "scores"?, "velocities"?}.

        Args:
            frames: the frames.
            predictions: True requires scores, False ignores them; None (default) decides by whether
                the first frame has scores.
            source: what to name in error messages.
        """
        frames = list(frames)
        if predictions is None:
            predictions = bool(frames) and isinstance(frames[0], Mapping) and "scores" in frames[0]
        return cls.from_json({"frames": frames}, predictions=predictions, source=source)

    @classmethod
    def from_json(cls, doc: Any, predictions: bool | None = None, source: str = "detections") -> DetectionSet:
        """Build from a parsed detection document (DESIGN.md, "Evaluation files"); BadInput if malformed."""
        if predictions is None:
            frames = doc.get("frames") if isinstance(doc, dict) else None
            predictions = bool(frames) and isinstance(frames[0], dict) and "scores" in frames[0]
        columns = detection_columns(doc, source, predictions)
        return cls(columns.frame_ids, columns.frame_index, columns.boxes, columns.class_index,
                   columns.scores, columns.velocities_mps)

    @classmethod
    def from_file(cls, path: str | Path, predictions: bool) -> DetectionSet:
        """Read and validate a detection file; BadInput names the file, the frame and the problem."""
        return cls.from_json(load_json(path), predictions=predictions, source=str(path))

    def to_json(self) -> dict[str, Any]:
        """The file form (frames in order, boxes in order)."""
        order = np.argsort(self.frame_index, kind="stable")
        starts = np.searchsorted(self.frame_index[order], np.arange(len(self.frame_ids) + 1))
        frames = []
        for f, frame_id in enumerate(self.frame_ids):
            rows = order[starts[f]:starts[f + 1]]
            frame: dict[str, Any] = {"frame_id": frame_id, "boxes": self.boxes[rows].tolist(),
                                     "classes": [CLASSES[c] for c in self.class_index[rows]]}
            if self.scores is not None:
                frame["scores"] = self.scores[rows].tolist()
            if self.velocities_mps is not None:
                frame["velocities"] = self.velocities_mps[rows].tolist()
            frames.append(frame)
        return {"frames": frames}

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True, slots=True, eq=False)
class DetectionMatches:
    """Every prediction's match at one threshold: match once, re-accumulate AP per resample.

    Per prediction (input order of the predictions): `frame` (index into `frame_ids`, the ground
    truth's frames), `class_index`, `score`, `is_tp`, `gt_index` (matched ground-truth box, -1 for a
    false positive) and `dist_m` (BEV distance to it, NaN for a false positive). Per ground-truth
    box: `gt_frame` and `gt_class_index`, so a bootstrap over frames can count n_gt per resample.
    """

    threshold_m: float
    frame_ids: tuple[str, ...]
    frame: np.ndarray
    class_index: np.ndarray
    score: np.ndarray
    is_tp: np.ndarray
    gt_index: np.ndarray
    dist_m: np.ndarray
    gt_frame: np.ndarray
    gt_class_index: np.ndarray

    def n_gt(self, cls: str) -> int:
        """Ground-truth boxes of class `cls`."""
        return int(np.count_nonzero(self.gt_class_index == class_code(cls, "n_gt")))

    def gt_count_per_frame(self) -> np.ndarray:
        """(frames, len(CLASSES)) int64: ground-truth boxes per frame and class."""
        counts = np.zeros((len(self.frame_ids), len(CLASSES)), dtype=np.int64)
        np.add.at(counts, (self.gt_frame, self.gt_class_index), 1)
        return counts

    def ap(self, cls: str) -> float:
        """AP of class `cls` at this threshold."""
        mask = self.class_index == class_code(cls, "ap")
        return ap_from_matches(self.score[mask], self.is_tp[mask], self.n_gt(cls))


def _pred_frames_in_gt(gt: DetectionSet, pred: DetectionSet) -> np.ndarray:
    """Each prediction's frame as an index into the ground truth's frames; the frame sets must agree."""
    if pred.scores is None:
        raise BadInput("predictions have no scores; give one score per predicted box")
    gt_pos = {frame_id: i for i, frame_id in enumerate(gt.frame_ids)}
    unknown = [f for f in pred.frame_ids if f not in gt_pos]
    if unknown:
        raise BadInput(f"predictions for {len(unknown)} frame(s) not in the ground truth, e.g. {unknown[0]!r}; "
                       f"evaluate predictions against the ground truth of the same frames")
    missing = sorted(set(gt.frame_ids) - set(pred.frame_ids))
    if missing:
        # Fail closed, as the devkit does: a frame absent from the predictions is more likely lost on
        # the way than a frame where nothing was detected (which lists the frame with no boxes).
        raise BadInput(f"no predictions for {len(missing)} ground-truth frame(s), e.g. {missing[0]!r}; list every "
                       f"frame in the predictions (with empty boxes if the detector found nothing)")
    mapping = np.array([gt_pos[f] for f in pred.frame_ids], dtype=np.int64)
    return mapping[pred.frame_index] if len(pred) else np.zeros(0, dtype=np.int64)


def _greedy_match(gt_xy: np.ndarray, gt_key: np.ndarray, pred_xy: np.ndarray, pred_key: np.ndarray,
                  pred_score: np.ndarray, thresholds_m: Sequence[float]) -> np.ndarray:
    """Greedy nuScenes matching within groups (frame x class) at several thresholds at once.

    Args:
        gt_xy, pred_xy: (G, 2) and (P, 2) BEV centres [m].
        gt_key, pred_key: (G,) and (P,) int64 group of each box; only equal keys can match.
        pred_score: (P,) ranking score; ties keep input order.
        thresholds_m: match only if the distance is strictly below.

    Returns:
        (len(thresholds_m), P) int64: index of the matched ground-truth box, -1 for a false positive.
    """
    n_thr, n_pred = len(thresholds_m), len(pred_key)
    match = np.full((n_thr, n_pred), -1, dtype=np.int64)
    if n_pred == 0 or len(gt_key) == 0:
        return match
    # Ground truth by group, input order inside a group, so argmin's first minimum is the devkit's
    # "first box at the smallest distance".
    g_order = np.argsort(gt_key, kind="stable")
    g_keys, g_start, g_count = np.unique(gt_key[g_order], return_index=True, return_counts=True)
    # Predictions by group, ranked by score inside it; ties by input order.
    p_order = np.lexsort((np.arange(n_pred), -pred_score, pred_key))
    p_keys, p_start, p_count = np.unique(pred_key[p_order], return_index=True, return_counts=True)
    _, gi, pi = np.intersect1d(g_keys, p_keys, assume_unique=True, return_indices=True)
    if len(gi) == 0:
        return match
    gx, gy = gt_xy[g_order, 0], gt_xy[g_order, 1]
    px, py = pred_xy[p_order, 0], pred_xy[p_order, 1]
    thresholds = np.asarray(thresholds_m, dtype=np.float64)
    # Blocks of groups with similar ground-truth counts keep the padding (and memory) small.
    by_count = np.argsort(g_count[gi], kind="stable")
    counts_sorted = g_count[gi[by_count]]
    start = 0
    while start < len(by_count):
        # The largest block within the element budget (its cost grows with its end: counts ascend).
        cost = np.arange(1, len(by_count) - start + 1) * counts_sorted[start:]
        end = start + max(1, int(np.count_nonzero(cost <= _BLOCK_ELEMENTS)))
        block = by_count[start:end]
        start = end
        _match_block(block, gi, pi, g_start, g_count, g_order, gx, gy, p_start, p_count, p_order, px, py,
                     thresholds, match)
    return match


def _match_block(block: np.ndarray, gi: np.ndarray, pi: np.ndarray, g_start: np.ndarray, g_count: np.ndarray,
                 g_order: np.ndarray, gx: np.ndarray, gy: np.ndarray, p_start: np.ndarray, p_count: np.ndarray,
                 p_order: np.ndarray, px: np.ndarray, py: np.ndarray, thresholds: np.ndarray,
                 match: np.ndarray) -> None:
    """Greedy matching of one block of groups, rank by rank; writes into `match` (see _greedy_match)."""
    # Most predictions first: the groups still matching at rank k are then a prefix.
    block = block[np.argsort(-p_count[pi[block]], kind="stable")]
    n_rank = p_count[pi[block]]
    n_gt = g_count[gi[block]]
    n_groups, width = len(block), int(n_gt.max())
    cols = np.arange(width)
    gpos = g_start[gi[block]][:, None] + np.minimum(cols[None, :], n_gt[:, None] - 1)
    bx, by, b_orig = gx[gpos], gy[gpos], g_order[gpos]
    # 0 where a box is free, inf once matched; padding starts at inf, so it is never the nearest.
    blocked = np.where(cols[None, :] >= n_gt[:, None], np.inf, 0.0)
    blocked = np.repeat(blocked[None], len(thresholds), axis=0)
    p0 = p_start[pi[block]]
    neg_rank = -n_rank  # ascending, for searchsorted
    dist_buf, work_buf = np.empty((n_groups, width)), np.empty((n_groups, width))
    rows_all = np.arange(n_groups)
    for k in range(int(n_rank[0])):
        m = int(np.searchsorted(neg_rank, -k, side="left"))  # groups with more than k predictions
        pos = p0[:m] + k
        dist, work, rows = dist_buf[:m], work_buf[:m], rows_all[:m]
        # sqrt(dx*dx + dy*dy), in place: the devkit's distance to the last bit, without temporaries.
        np.subtract(px[pos][:, None], bx[:m], out=dist)
        np.multiply(dist, dist, out=dist)
        np.subtract(py[pos][:, None], by[:m], out=work)
        np.multiply(work, work, out=work)
        np.add(dist, work, out=dist)
        np.sqrt(dist, out=dist)
        for t, threshold in enumerate(thresholds):
            np.add(dist, blocked[t, :m], out=work)
            j = work.argmin(axis=1)
            hit = np.flatnonzero(work[rows, j] < threshold)
            if hit.size:
                blocked[t, hit, j[hit]] = np.inf
                match[t, p_order[pos[hit]]] = b_orig[hit, j[hit]]


def _match(gt: DetectionSet, pred: DetectionSet, pred_frame: np.ndarray, thresholds_m: Sequence[float]) -> np.ndarray:
    n_cls = len(CLASSES)
    return _greedy_match(gt.boxes[:, :2], gt.frame_index * n_cls + gt.class_index, pred.boxes[:, :2],
                         pred_frame * n_cls + pred.class_index, pred.scores, thresholds_m)


def match_all(gt: DetectionSet, pred: DetectionSet, thresholds_m: Sequence[float]) -> np.ndarray:
    """(len(thresholds_m), len(pred)) index of each prediction's matched ground-truth box, -1 if none."""
    return _match(gt, pred, _pred_frames_in_gt(gt, pred), thresholds_m)


def match_detections(gt: DetectionSet, pred: DetectionSet, threshold_m: float) -> DetectionMatches:
    """Match every prediction at one threshold; the per-prediction arrays a paired bootstrap re-accumulates."""
    pred_frame = _pred_frames_in_gt(gt, pred)
    gt_index = _match(gt, pred, pred_frame, [threshold_m])[0]
    is_tp = gt_index >= 0
    dist = np.full(len(pred), np.nan)
    dist[is_tp] = _bev_distance(pred.boxes[is_tp], gt.boxes[gt_index[is_tp]])
    return DetectionMatches(float(threshold_m), gt.frame_ids, pred_frame, pred.class_index.copy(),
                            pred.scores.copy(), is_tp, gt_index, dist, gt.frame_index.copy(),
                            gt.class_index.copy())


def _bev_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dx, dy = a[:, 0] - b[:, 0], a[:, 1] - b[:, 1]
    return np.sqrt(dx * dx + dy * dy)


def _curves(ranked_tp: np.ndarray, ranked_score: np.ndarray, n_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and confidence at the 101 recall points, from TP flags in rank order (devkit accumulate)."""
    if not ranked_tp.any():
        # The devkit's "no predictions": zero precision and confidence everywhere.
        return np.zeros(N_RECALL_POINTS), np.zeros(N_RECALL_POINTS)
    tp = np.cumsum(ranked_tp, dtype=np.float64)
    fp = np.cumsum(~ranked_tp, dtype=np.float64)
    precision = tp / (tp + fp)
    recall = tp / float(n_gt)
    return (np.interp(RECALL_POINTS, recall, precision, right=0),
            np.interp(RECALL_POINTS, recall, ranked_score, right=0))


def _ap_from_curve(precision: np.ndarray) -> float:
    """The devkit's calc_ap on the 101-point precision."""
    kept = np.clip(precision[FIRST_POINT:] - MIN_PRECISION, 0.0, None)
    return float(np.mean(kept) / (1.0 - MIN_PRECISION))


def _rank(scores: np.ndarray) -> np.ndarray:
    """Descending by score; ties keep input order."""
    return np.argsort(-scores, kind="stable")


def ap_from_matches(scores: np.ndarray, is_tp: np.ndarray, n_gt: int) -> float:
    """nuScenes AP of one class at one threshold from per-prediction scores and TP flags.

    Predictions are ranked by score (descending, ties in the given order); `n_gt` counts the
    class's ground-truth boxes in the same frames. Rematching is not needed to resample frames.

    Raises:
        BadInput: if n_gt < 1 (AP is undefined without ground truth) or the arrays differ in length.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    is_tp = np.asarray(is_tp, dtype=bool).reshape(-1)
    if len(scores) != len(is_tp):
        raise BadInput(f"ap_from_matches: {len(scores)} scores but {len(is_tp)} TP flags")
    if n_gt < 1:
        raise BadInput(f"ap_from_matches: n_gt={n_gt}; AP is undefined without ground truth")
    if int(is_tp.sum()) > n_gt:
        raise BadInput(f"ap_from_matches: {int(is_tp.sum())} true positives but only {n_gt} ground-truth boxes")
    order = _rank(scores)
    precision, _ = _curves(is_tp[order], scores[order], n_gt)
    return _ap_from_curve(precision)


def _tp_error(confidence: np.ndarray, tp_score: np.ndarray, tp_error: np.ndarray) -> float | None:
    """The devkit's calc_tp: running mean of a TP error read at the recall points via confidence."""
    known = ~np.isnan(tp_error)
    if not known.any():
        return None
    # NaN-aware running mean (the devkit's cummean): unknown values neither add nor count; 0 before the first.
    running = np.cumsum(np.where(known, tp_error, 0.0)) / np.maximum(np.cumsum(known), 1)
    curve = np.interp(confidence[::-1], tp_score[::-1], running[::-1])[::-1]
    nonzero = np.flatnonzero(confidence)
    last = int(nonzero[-1]) if len(nonzero) else 0
    if last < FIRST_POINT:
        return 1.0
    return float(np.mean(curve[FIRST_POINT:last + 1]))


def _scale_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - IoU of boxes aligned on centre and yaw: the size overlap only."""
    inter = np.prod(np.minimum(a[:, 3:6], b[:, 3:6]), axis=1)
    union = np.prod(a[:, 3:6], axis=1) + np.prod(b[:, 3:6], axis=1) - inter
    return 1.0 - inter / union


def _yaw_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest absolute yaw difference [rad], in [0, pi]."""
    return np.abs(np.mod(a - b + np.pi, 2 * np.pi) - np.pi)


def _tp_errors(gt: DetectionSet, pred: DetectionSet, ranked: np.ndarray, gt_index: np.ndarray,
               confidence: np.ndarray) -> dict[str, Any]:
    """TP errors of one class: `ranked` are its predictions in rank order, `gt_index` their matches."""
    tp = ranked[gt_index[ranked] >= 0]
    matched = gt_index[tp]
    if len(tp) == 0:
        return {"trans_err_m": 1.0, "scale_err": 1.0, "orient_err_rad": 1.0,
                "vel_err_mps": 1.0 if gt.velocities_mps is not None and pred.velocities_mps is not None else None,
                "n_tp": 0}
    p, g = pred.boxes[tp], gt.boxes[matched]
    score = pred.scores[tp]
    errors: dict[str, Any] = {
        "trans_err_m": _tp_error(confidence, score, _bev_distance(p, g)),
        "scale_err": _tp_error(confidence, score, _scale_error(g, p)),
        "orient_err_rad": _tp_error(confidence, score, _yaw_error(p[:, 6], g[:, 6])),
        "vel_err_mps": None,
        "n_tp": len(tp),
    }
    if gt.velocities_mps is not None and pred.velocities_mps is not None:
        dv = pred.velocities_mps[tp] - gt.velocities_mps[matched]
        errors["vel_err_mps"] = _tp_error(confidence, score, np.sqrt(dv[:, 0] * dv[:, 0] + dv[:, 1] * dv[:, 1]))
    return errors


def _class_list(classes: Sequence[str] | None) -> list[int]:
    if classes is None:
        return list(range(len(CLASSES)))
    codes = sorted({class_code(c, "classes") for c in classes})
    if not codes:
        raise BadInput(f"no classes to evaluate; choose from {', '.join(CLASSES)}")
    return codes


def threshold_key(threshold_m: float) -> str:
    """The JSON key of a threshold: "0.5", "1.0", "2.0", "4.0"."""
    return str(float(threshold_m))


def evaluate_detection(gt: DetectionSet, pred: DetectionSet, classes: Sequence[str] | None = None,
                       thresholds_m: Sequence[float] = THRESHOLDS_M,
                       tp_threshold_m: float = TP_THRESHOLD_M) -> dict[str, Any]:
    """nuScenes detection metrics of `pred` against `gt` (the module docstring gives the definition).

    Args:
        gt: ground truth; its frames define the evaluation.
        pred: predictions with scores, for exactly the ground truth's frames.
        classes: restrict to these classes (default: all of andon's classes).
        thresholds_m: centre-distance thresholds of AP.
        tp_threshold_m: threshold at which true-positive errors are measured.

    Returns:
        {"mAP": float, "ap": {class: {"0.5": AP, ...}}, "ap_mean": {class: float},
        "tp_errors": {class: {"trans_err_m", "scale_err", "orient_err_rad", "vel_err_mps", "n_tp"}},
        "n_gt": {class: int}, "n_pred": {class: int}, "classes_without_gt": [class, ...],
        "n_frames": int, "thresholds_m": [...], "tp_threshold_m": float}. Classes in "ap" and
        "tp_errors" are those with ground truth (they make mAP).

    Raises:
        BadInput: predictions without scores, frame sets that differ, unknown classes, or no ground
            truth in the evaluated classes (mAP would be undefined).
    """
    pred_frame = _pred_frames_in_gt(gt, pred)
    codes = _class_list(classes)
    thresholds = [float(t) for t in thresholds_m]
    if not thresholds or any(not np.isfinite(t) or t <= 0 for t in thresholds):
        raise BadInput(f"thresholds must be positive metres, got {list(thresholds_m)}")
    all_thresholds = list(dict.fromkeys([*thresholds, float(tp_threshold_m)]))
    n_gt = np.bincount(gt.class_index, minlength=len(CLASSES))
    n_pred = np.bincount(pred.class_index, minlength=len(CLASSES))
    present = [c for c in codes if n_gt[c] > 0]
    if not present:
        raise BadInput(f"the ground truth has no boxes of {', '.join(CLASSES[c] for c in codes)}; "
                       f"mAP is undefined")
    match = _match(gt, pred, pred_frame, all_thresholds)
    ap: dict[str, dict[str, float]] = {}
    tp_errors: dict[str, dict[str, Any]] = {}
    for c in present:
        members = np.flatnonzero(pred.class_index == c)
        ranked = members[_rank(pred.scores[members])]
        ranked_score = pred.scores[ranked]
        ap[CLASSES[c]] = {}
        for t_index, threshold in enumerate(all_thresholds):
            precision, confidence = _curves(match[t_index, ranked] >= 0, ranked_score, int(n_gt[c]))
            if threshold in thresholds:
                ap[CLASSES[c]][threshold_key(threshold)] = _ap_from_curve(precision)
            if threshold == float(tp_threshold_m):
                tp_errors[CLASSES[c]] = _tp_errors(gt, pred, ranked, match[t_index], confidence)
    ap_mean = {name: float(np.mean(list(per_threshold.values()))) for name, per_threshold in ap.items()}
    return {
        "mAP": float(np.mean(list(ap_mean.values()))),
        "ap": ap,
        "ap_mean": ap_mean,
        "tp_errors": tp_errors,
        "n_gt": {CLASSES[c]: int(n_gt[c]) for c in codes if n_gt[c] or n_pred[c]},
        "n_pred": {CLASSES[c]: int(n_pred[c]) for c in codes if n_gt[c] or n_pred[c]},
        "classes_without_gt": [CLASSES[c] for c in codes if n_gt[c] == 0 and n_pred[c] > 0],
        "n_frames": len(gt.frame_ids),
        "thresholds_m": thresholds,
        "tp_threshold_m": float(tp_threshold_m),
    }


def recall_within(gt: DetectionSet, pred: DetectionSet, cls: str, max_range_m: float = 30.0,
                  threshold_m: float = 2.0, min_score: float = 0.0) -> float:
    """Share of ground-truth boxes of `cls` within `max_range_m` of the ego that are detected.

    Range is the BEV distance of the box centre from the ego at the origin, inclusive (<= max_range_m).
    Predictions of `cls` scoring at least `min_score` are matched greedily as for AP, over all
    ranges (a prediction just outside the range may detect a box just inside it).

    Returns:
        The recall in [0, 1]; NaN when no ground-truth box of `cls` lies in range (nothing to detect:
        the caller decides whether that passes).
    """
    code = class_code(cls, "recall_within")
    pred_frame = _pred_frames_in_gt(gt, pred)  # rejects predictions without scores and mismatched frames
    keep = (pred.class_index == code) & (pred.scores >= min_score)
    kept = DetectionSet(pred.frame_ids, pred.frame_index[keep], pred.boxes[keep], pred.class_index[keep],
                        pred.scores[keep])
    in_range = (gt.class_index == code) & (np.hypot(gt.boxes[:, 0], gt.boxes[:, 1]) <= max_range_m)
    if not in_range.any():
        return float("nan")
    match = _match(gt, kept, pred_frame[keep], [threshold_m])[0]
    detected = np.zeros(len(gt), dtype=bool)
    detected[match[match >= 0]] = True
    return float(np.count_nonzero(detected & in_range) / np.count_nonzero(in_range))
