"""Prediction metrics of batched arrays: PredictionDataModule futures and a model's modes, evaluated
with `andon.models.prediction_metrics.evaluate_prediction` (the definitions of DESIGN.md).

Displacement errors do not change under a rigid transform, so agent-frame arrays (as batches hold
them) give the same ADE/FDE as world-frame ones. A future's steps count up to its first unobserved
step (the metrics take a future as a prefix); agents without any observed future step are left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.models.prediction_metrics import MISS_THRESHOLD_M, FutureSet, PredictionSet, evaluate_prediction

METRIC_NAMES: tuple[str, ...] = ("ADE", "FDE", "minADE_k", "minFDE_k", "miss_rate")


def sets_from_arrays(modes_m: np.ndarray, probs: np.ndarray, future_m: np.ndarray,
                     future_mask: np.ndarray) -> tuple[FutureSet, PredictionSet]:
    """Ground truth and predictions of a batch of agents, ready for `evaluate_prediction`.

    Args:
        modes_m: (B, K, F, 2) predicted positions [m].
        probs: (B, K) mode probabilities (or any scores: only their order counts).
        future_m: (B, F, 2) true positions [m], in the same frame as the modes.
        future_mask: (B, F) bool, True where the true position is observed.

    Raises:
        BadInput: shapes that disagree, or no agent with an observed future.
    """
    modes = np.asarray(modes_m, dtype=np.float64)
    future = np.asarray(future_m, dtype=np.float64)
    mask = np.asarray(future_mask, dtype=bool)
    scores = np.asarray(probs, dtype=np.float64)
    if modes.ndim != 4 or future.shape != (modes.shape[0], modes.shape[2], 2) or mask.shape != future.shape[:2] \
            or scores.shape != modes.shape[:2]:
        raise BadInput(f"modes (B, K, F, 2) {modes.shape}, probs (B, K) {scores.shape}, future (B, F, 2) "
                       f"{future.shape} and future_mask (B, F) {mask.shape} disagree")
    n_steps = np.cumprod(mask, axis=1).sum(axis=1)  # observed prefix of each future
    keep = np.flatnonzero(n_steps > 0)
    if len(keep) == 0:
        raise BadInput("no agent of the batch has an observed future step: nothing to evaluate")
    ids = tuple(str(i) for i in keep)
    padded = np.where((np.arange(future.shape[1])[None, :] < n_steps[keep, None])[..., None], future[keep], np.nan)
    gt = FutureSet(ids, padded, n_steps[keep].astype(np.int64))
    pred = PredictionSet.from_arrays(ids, modes[keep], scores[keep])
    return gt, pred


def evaluate_arrays(modes_m: np.ndarray, probs: np.ndarray, future_m: np.ndarray, future_mask: np.ndarray,
                    miss_threshold_m: float = MISS_THRESHOLD_M) -> dict[str, Any]:
    """`evaluate_prediction` of batched arrays (see `sets_from_arrays` for the arguments)."""
    gt, pred = sets_from_arrays(modes_m, probs, future_m, future_mask)
    return evaluate_prediction(gt, pred, miss_threshold_m=miss_threshold_m)
