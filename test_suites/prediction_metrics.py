"""Prediction metrics of suites: the stack's predicted trajectories against the agents' logged futures.

The selected ground truth ("GT") is defined in andon.test_suites.selection.

- min_fde / min_ade / fde / miss_rate [pooled by samples]: a sample is (frame, selected GT agent)
  where a confirmed track lies within `match_distance_m` of the agent (one-to-one, Hungarian) and
  has predictions, and the agent's future is known over the horizon: its positions at t0 + step_s,
  ..., t0 + H step_s, linearly interpolated in time from the trace's later frames and, past the
  trace's end, the log's (open loop or non-reactive closed loop; a reactive replay's future is its
  own). H is the predictor's horizon, or `horizon_s` / step_s. minFDE_k / minADE_k: the smallest
  final / mean displacement over the k most probable modes (`k` 0: all); fde: the final displacement
  of the most probable mode; miss_rate: the share of samples whose minFDE_k exceeds
  `miss_threshold_m` (2 m). The value is the mean over samples, the worst sample the evidence. An
  agent with a known future that no track ever predicted fails the scenario (unscored).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from andon.errors import BadInput
from andon.simulation.trace import CLOSED_LOOP, ScenarioTrace
from andon.test_suites.log_context import LogContext
from andon.test_suites.matching import assign, bev_distance
from andon.test_suites.metric_records import MAX_EVIDENCE, MetricValue, not_applicable, unscored
from andon.test_suites.schema import Filters
from andon.test_suites.selection import as_boxes, as_strings, gt_selection, involvement


@dataclass(frozen=True, slots=True)
class _Samples:
    """Prediction samples of a trace: one row per (frame, matched GT agent) with a known future."""

    frame_index: np.ndarray  # (S,) trace frame index of t0
    track_ids: np.ndarray  # (S,) GT track ids
    min_ade_m: np.ndarray
    min_fde_m: np.ndarray
    ade_m: np.ndarray  # most probable mode
    fde_m: np.ndarray
    k: int
    horizon_s: float
    n_candidates: int  # (frame, selected agent) pairs with a known future, tracked or not


def _position_table(trace: ScenarioTrace, context: LogContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(timestamps_ns (F,), sorted GT track ids (I,), world positions (F, I, 2), NaN where absent).

    The trace's frames, then the log's frames after the trace's end (module docstring: not for a
    reactive closed-loop replay, whose agents' future is its own).
    """
    stamps = [f.timestamp_ns for f in trace.frames]
    ids_per = [as_strings(f.gt_track_ids) for f in trace.frames]
    xy_per = [as_boxes(f.gt_boxes)[:, :2] for f in trace.frames]
    last_ns = stamps[-1] if stamps else -1
    later = np.unique(context.timestamps_ns[context.timestamps_ns > last_ns])
    if not (trace.mode == CLOSED_LOOP and trace.reactive) and len(later):
        rows = np.flatnonzero(context.box_timestamps_ns > last_ns)
        rows = rows[np.argsort(context.box_timestamps_ns[rows], kind="stable")]
        cuts = np.searchsorted(context.box_timestamps_ns[rows], later[1:])
        for stamp, part in zip(later.tolist(), np.split(rows, cuts), strict=True):
            stamps.append(int(stamp))
            ids_per.append(context.box_track_ids[part])
            xy_per.append(context.box_xy_m[part])
    ids = np.unique(np.concatenate(ids_per)) if ids_per else np.zeros(0, dtype=str)
    table = np.full((len(stamps), len(ids), 2), np.nan)
    for i, (frame_ids, xy) in enumerate(zip(ids_per, xy_per, strict=True)):
        if len(frame_ids):
            table[i, np.searchsorted(ids, frame_ids)] = xy
    return np.asarray(stamps, dtype=np.int64), ids, table


def _interpolate(stamps: np.ndarray, table: np.ndarray, columns: np.ndarray, targets_ns: np.ndarray) -> np.ndarray:
    """(A, H, 2) positions of track columns (A,) at times (H,), linear in time; NaN outside the trace."""
    if len(stamps) < 2:
        out = np.full((len(columns), len(targets_ns), 2), np.nan)
        exact = np.flatnonzero(targets_ns == stamps[0]) if len(stamps) else np.zeros(0, dtype=np.int64)
        out[:, exact] = table[0, columns][:, None]
        return out
    hi = np.clip(np.searchsorted(stamps, targets_ns, side="left"), 1, len(stamps) - 1)
    lo = hi - 1
    weight = (targets_ns - stamps[lo]) / (stamps[hi] - stamps[lo])
    inside = (targets_ns >= stamps[0]) & (targets_ns <= stamps[-1])
    a, b = table[lo][:, columns], table[hi][:, columns]  # (H, A, 2)
    out = a + (b - a) * weight[:, None, None]
    out[~inside] = np.nan
    return np.transpose(out, (1, 0, 2))


def _horizon(trace: ScenarioTrace, params: Mapping[str, float]) -> tuple[float, int | None]:
    """(step_s, steps) the samples are scored over: the predictor's own horizon, or `horizon_s` of it.

    Steps is None when no frame has predictions and no horizon_s is given.
    """
    with_modes = [f for f in trace.frames if np.asarray(f.pred_modes_m).ndim == 4 and np.asarray(f.pred_modes_m).shape[0]]
    step_s = float(with_modes[0].pred_step_s if with_modes else (trace.frames[0].pred_step_s if trace.frames else 0.0))
    n_steps = int(np.asarray(with_modes[0].pred_modes_m).shape[2]) if with_modes else None
    wanted_s = float(params["horizon_s"])
    if wanted_s <= 0:
        return step_s, n_steps
    if not step_s > 0:
        return step_s, None
    wanted = int(math.floor(wanted_s / step_s + 1e-9))
    if wanted < 1 or (n_steps is not None and wanted > n_steps):
        raise BadInput(f"params.horizon_s {wanted_s} s: the predictions reach {n_steps} steps of {step_s} s; "
                       f"choose a horizon between {step_s} and {(n_steps or 0) * step_s:g} s")
    return step_s, wanted


def prediction_samples(trace: ScenarioTrace, context: LogContext, filters: Filters,
                       params: Mapping[str, float]) -> _Samples | MetricValue:
    """The samples the prediction metrics average (module docstring), or why there are none.

    Not applicable when no selected agent has a known future over the horizon; unscored (fails) when
    some has but none was tracked with predictions.
    """
    involved = involvement(context, filters)
    if isinstance(involved, MetricValue):
        return involved
    step_s, n_steps = _horizon(trace, params)
    if n_steps is None:
        if any(gt_selection(f, filters, involved).any() for f in trace.frames):
            return unscored("the stack predicted nothing: no confirmed track had predictions in any frame")
        return not_applicable("no selected ground-truth agent in any frame")
    stamps, ids, table = _position_table(trace, context)
    k_wanted = int(params["k"])
    offsets_ns = np.round(np.arange(1, n_steps + 1) * step_s * 1e9).astype(np.int64)
    rows: list[tuple[np.ndarray, ...]] = []
    n_candidates, k_used = 0, 0
    unscored_ids: dict[str, int] = {}
    for frame in trace.frames:
        selected = np.flatnonzero(gt_selection(frame, filters, involved))
        if not len(selected):
            continue
        agent_ids = as_strings(frame.gt_track_ids)[selected]
        future = _interpolate(stamps, table, np.searchsorted(ids, agent_ids), frame.timestamp_ns + offsets_ns)
        known = np.isfinite(future).all(axis=(1, 2))  # (A,)
        n_candidates += int(known.sum())
        if not known.any():
            continue
        modes = np.asarray(frame.pred_modes_m, dtype=np.float64)
        scored = np.zeros(len(selected), dtype=bool)
        if modes.ndim == 4 and modes.shape[0] and modes.shape[2] >= n_steps:
            track_xy = np.asarray(frame.track_xy_m, dtype=np.float64).reshape(-1, 2)
            gt_rows, track_rows = assign(bev_distance(as_boxes(frame.gt_boxes)[selected, :2], track_xy),
                                         params["match_distance_m"])
            keep = known[gt_rows]
            gt_rows, track_rows = gt_rows[keep], track_rows[keep]
            if len(gt_rows):
                scored[gt_rows] = True
                probs = np.asarray(frame.pred_probs, dtype=np.float64).reshape(modes.shape[0], -1)[track_rows]
                order = np.argsort(-probs, axis=1, kind="stable")
                k = order.shape[1] if k_wanted <= 0 else min(k_wanted, order.shape[1])
                ranked = np.take_along_axis(modes[track_rows, :, :n_steps], order[:, :, None, None], axis=1)
                delta = ranked - future[gt_rows][:, None]  # (A, K, H, 2)
                displacement = np.sqrt(delta[..., 0] ** 2 + delta[..., 1] ** 2)  # (A, K, H) [m]
                ade, final = displacement.mean(axis=2), displacement[..., -1]
                rows.append((np.full(len(gt_rows), frame.index), agent_ids[gt_rows], ade[:, :k].min(axis=1),
                             final[:, :k].min(axis=1), ade[:, 0], final[:, 0]))
                k_used = max(k_used, k)
        for track_id in agent_ids[known & ~scored].tolist():
            unscored_ids.setdefault(track_id, frame.index)
    if n_candidates == 0:
        return not_applicable("no selected agent has a known future over the horizon")
    if not rows:
        first = min(unscored_ids.items(), key=lambda item: item[1])
        return unscored(f"{len(unscored_ids)} selected agent(s) with a known future were never tracked with "
                        f"predictions", {"n_candidates": n_candidates, "unscored_track_ids": sorted(unscored_ids)},
                        first[1], (first[0],))
    columns = [np.concatenate(c) for c in zip(*rows, strict=True)]
    return _Samples(*columns, k=k_used, horizon_s=n_steps * step_s, n_candidates=n_candidates)


def _prediction_value(samples: _Samples | MetricValue, values: np.ndarray | None, name: str,
                      per_sample: np.ndarray | None = None, value: float | None = None) -> MetricValue:
    if isinstance(samples, MetricValue):
        return samples
    per_sample = values if per_sample is None else per_sample
    worst = int(np.argmax(per_sample))
    order = np.argsort(-per_sample, kind="stable")[:MAX_EVIDENCE]
    evidence = {"n_samples": len(per_sample), "n_candidates": samples.n_candidates,
                "coverage": round(len(per_sample) / samples.n_candidates, 4), "k": samples.k,
                "horizon_s": round(samples.horizon_s, 6),
                "n_agents": len(set(samples.track_ids.tolist())),
                "worst": {"track_id": str(samples.track_ids[worst]), "frame_index": int(samples.frame_index[worst]),
                          name: round(float(per_sample[worst]), 4)},
                "samples": [[str(samples.track_ids[i]), int(samples.frame_index[i]), round(float(per_sample[i]), 4)]
                            for i in order],
                "sample_fields": ["track_id", "frame_index", name]}
    result = float(np.mean(values)) if value is None else value
    return MetricValue(result, float(len(per_sample)), evidence, int(samples.frame_index[worst]),
                       (str(samples.track_ids[worst]),))


def min_fde(trace: ScenarioTrace, context: LogContext, filters: Filters, params: Mapping[str, float]) -> MetricValue:
    """Mean minFDE_k [m] over samples (module docstring)."""
    samples = prediction_samples(trace, context, filters, params)
    return _prediction_value(samples, None if isinstance(samples, MetricValue) else samples.min_fde_m, "min_fde_m")


def min_ade(trace: ScenarioTrace, context: LogContext, filters: Filters, params: Mapping[str, float]) -> MetricValue:
    """Mean minADE_k [m] over samples (module docstring)."""
    samples = prediction_samples(trace, context, filters, params)
    return _prediction_value(samples, None if isinstance(samples, MetricValue) else samples.min_ade_m, "min_ade_m")


def fde(trace: ScenarioTrace, context: LogContext, filters: Filters, params: Mapping[str, float]) -> MetricValue:
    """Mean FDE [m] of the most probable mode over samples (module docstring)."""
    samples = prediction_samples(trace, context, filters, params)
    return _prediction_value(samples, None if isinstance(samples, MetricValue) else samples.fde_m, "fde_m")


def miss_rate(trace: ScenarioTrace, context: LogContext, filters: Filters,
              params: Mapping[str, float]) -> MetricValue:
    """Share of samples whose minFDE_k exceeds miss_threshold_m (module docstring)."""
    samples = prediction_samples(trace, context, filters, params)
    if isinstance(samples, MetricValue):
        return samples
    missed = samples.min_fde_m > params["miss_threshold_m"]
    result = _prediction_value(samples, missed.astype(np.float64), "min_fde_m", per_sample=samples.min_fde_m)
    result.evidence.update(n_missed=int(missed.sum()), miss_threshold_m=float(params["miss_threshold_m"]))
    return result
