"""How well label QA finds the synthetic fleet's injected label errors.

Each log is cut into fixed windows; a window is corrupt when some injected LabelError lies in it. The
QA score should rank corrupt windows below clean ones: the ROC AUC is the probability that a random
corrupt window scores lower than a random clean one (ties count half), computed from ranks (the
Mann-Whitney U statistic). Hit rates say, per error kind, which share of the injected errors some
check flags at the error's own frame and track.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from scipy.stats import rankdata

from andon.errors import BadInput
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.qa.checks import CHECK_NAMES, run_checks
from andon.scenarios.qa.config import QAConfig
from andon.scenarios.qa.scoring import MAX_ITEMS, resolve_weights, score_windows
from andon.scenarios.records import Log
from andon.simulation.ground_truth import LABEL_ERROR_KINDS, FleetGroundTruth


def roc_auc(badness: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of `badness` (higher = more likely positive) for boolean labels; NaN without both labels."""
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(badness, dtype=np.float64))  # average ranks: a tie counts half
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def qa_auc(logs: Iterable[Log | ImportedLog], window_s: float = 5.0, config: QAConfig | None = None,
           weights: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Score fixed windows of synthetic logs and compare with the injected label errors.

    Args:
        logs: synthetic logs whose meta holds the fleet's ground truth (consumed one at a time).
        window_s: window length [s]; the last window of a log may be shorter.
        config, weights: as for score_log.

    Returns:
        {"auc", "n_corrupt", "n_clean", "per_check_hit_rate": {kind: share of that kind's errors some
        check flags at its frame and track}, "hit_rate_by_check": {kind: {check: share}},
        "n_errors": {kind: count}, "scores_corrupt", "scores_clean": summary quantiles}.

    Raises:
        BadInput: a log has no fleet ground truth, or window_s is not positive.
    """
    if not (np.isfinite(window_s) and window_s > 0):
        raise BadInput(f"window_s must be a positive number of seconds, got {window_s!r}")
    resolved = resolve_weights(weights)
    window_ns = int(round(window_s * 1e9))
    scores: list[np.ndarray] = []
    corrupt: list[np.ndarray] = []
    n_errors = dict.fromkeys(LABEL_ERROR_KINDS, 0)
    hits = {kind: dict.fromkeys(CHECK_NAMES, 0) for kind in LABEL_ERROR_KINDS}
    hits_any = dict.fromkeys(LABEL_ERROR_KINDS, 0)
    for log in logs:
        truth = FleetGroundTruth.of(dict(log.meta))
        if truth is None:
            raise BadInput(f"log {log.name!r} ({log.source}) has no fleet ground truth in its meta: "
                           "qa_auc evaluates synthetic fleet logs only")
        t0, t1 = int(log.frames[0].timestamp_ns), int(log.frames[-1].timestamp_ns)
        starts = np.arange(t0, t1 + 1, window_ns, dtype=np.int64)
        ends = np.minimum(starts + window_ns - 1, t1)
        flags = run_checks(log, config)
        scores.append(np.array([s for s, _ in score_windows(flags, starts, ends, resolved, MAX_ITEMS)]))
        error_ns = np.sort(np.array([e.timestamp_ns for e in truth.label_errors], dtype=np.int64))
        corrupt.append(np.searchsorted(error_ns, ends, side="right") > np.searchsorted(error_ns, starts, side="left"))
        flagged = {r.name: set(zip(r.frame_index.tolist(), r.track_ids.tolist(), strict=True)) for r in flags.results}
        for error in truth.label_errors:  # a few dozen per log
            key = (error.frame_index, error.track_id)
            n_errors[error.kind] = n_errors.get(error.kind, 0) + 1
            found = [name for name, keys in flagged.items() if key in keys]
            for name in found:
                hits.setdefault(error.kind, dict.fromkeys(CHECK_NAMES, 0))[name] += 1
            hits_any[error.kind] = hits_any.get(error.kind, 0) + bool(found)
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    is_corrupt = np.concatenate(corrupt) if corrupt else np.zeros(0, dtype=bool)
    rate = {kind: (hits_any[kind] / n if n else float("nan")) for kind, n in n_errors.items()}
    by_check = {kind: {name: (count / n_errors[kind] if n_errors[kind] else float("nan"))
                       for name, count in per.items()} for kind, per in hits.items()}
    return {
        "auc": roc_auc(-all_scores, is_corrupt),
        "n_corrupt": int(is_corrupt.sum()), "n_clean": int((~is_corrupt).sum()),
        "per_check_hit_rate": rate, "hit_rate_by_check": by_check, "n_errors": n_errors,
        "scores_corrupt": _quantiles(all_scores[is_corrupt]), "scores_clean": _quantiles(all_scores[~is_corrupt]),
    }


def _quantiles(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {}
    q = np.quantile(values, [0.0, 0.1, 0.5, 0.9, 1.0])
    return dict(zip(("min", "p10", "median", "p90", "max"), (round(float(v), 4) for v in q), strict=True))
