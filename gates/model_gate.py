"""Model-metric gates: absolute bounds and non-regression on the frozen common evaluation set.

The candidate's model (the gate's `model` node in the candidate stack) and the baseline's are
evaluated once on the pinned evaluation set (andon.gates.model_eval, cached). Each slice ("all", then
the gate's slices) is bootstrapped over scenario units (andon.gates.bootstrap and
andon.gates.detection_bootstrap: seeded, vectorised, candidate and baseline resampled jointly):

- detector metrics (mAP, AP:<class>): matched once per slice, mAP re-accumulated per resample;
  class slices restrict the classes, range slices drop boxes outside the band before matching, tag
  slices keep the boxes of frames with the tags and the units that hold such frames;
- predictor metrics (minADE_k, minFDE_k, ADE, FDE, miss_rate): the mean over agents, bootstrapped as
  the agent-weighted mean of per-unit means; slices select agents by class, tags and range at t0.

Decision per slice and part, with `low`/`high` the one-sided bounds at the set's confidence:

    absolute, higher is better (min):  pass low >= min;  fail high < min;  else insufficient
    absolute, lower is better (max):   pass high <= max; fail low > max;   else insufficient
    non-regression (candidate - baseline, paired): higher is better: d >= -max_regression;
                                       lower is better: d <= max_regression; decided the same way

Without a baseline the non-regression part is skipped with a note, or fails where the gate sets
`require_baseline`. Fewer units than `min_scenarios` in the evaluation set is insufficient evidence.
The gate is the worst of its slices and parts (fail over insufficient over pass); its value, bound,
interval and margin are those of the overall slice's deciding part. A slice with no ground truth
(detector) or no agent (predictor) in the evaluation set fails the gate: the slice was asked for and
cannot be judged. `needed` of an insufficient gate is the number of scenario units that would decide
it (andon.gates.bounds.more_scenarios_needed: the normal approximation with the observed spread).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.gates.bootstrap import BootstrapResult, paired_mean_bootstrap
from andon.gates.bounds import decide, decision_margin, more_scenarios_needed
from andon.gates.evidence import BASELINE, CANDIDATE, Evidence
from andon.gates.model_eval import CLASSES, DetectionEval, PredictionEval, cache_path
from andon.gates.outcome import gate_inputs, result, worst
from andon.gates.records import FAIL, INSUFFICIENT, PASS, GateResult
from andon.gates.spec import AP_PREFIX, DETECTION_CLASSES, Gate, GateSet, Slice

ALL = Slice("all")
ABSOLUTE, NON_REGRESSION = "absolute", "non_regression"


@dataclass(frozen=True, slots=True)
class SliceStats:
    """Bootstrap results of one slice: candidate, baseline and their paired difference."""

    name: str
    units: int
    items: int
    candidate: BootstrapResult
    baseline: BootstrapResult | None = None
    difference: BootstrapResult | None = None


@dataclass(frozen=True, slots=True)
class Part:
    """One decided part of a slice: the interval judged against a bound."""

    slice: str
    part: str
    outcome: str
    value: float
    bound: float
    low: float
    high: float
    margin: float
    needed_units: int | None  # more scenario units that would decide an insufficient part

    def text(self, metric: str) -> str:
        what = metric if self.part == ABSOLUTE else f"{metric} candidate - baseline"
        return (f"{self.slice}: {what} {self.value:.4g} [{self.low:.4g}, {self.high:.4g}] vs bound "
                f"{self.bound:.4g}: {self.outcome}")


# ----- decisions -------------------------------------------------------------------------------------
def _part(name: str, part: str, stats: BootstrapResult, bound: float, higher_is_better: bool) -> Part:
    """Decide one interval against a bound (andon.gates.bounds.decide); a NaN end fails closed."""
    direction = ">=" if higher_is_better else "<="
    if not all(math.isfinite(v) for v in (stats.estimate, stats.low, stats.high)):
        raise BadInput(f"slice {name!r}: the {part} bootstrap gave no finite interval ({stats.estimate}, "
                       f"[{stats.low}, {stats.high}]); the metric could not be bounded")
    outcome = decide(stats.low, stats.high, bound, direction)
    margin = decision_margin(stats.low, stats.high, bound, direction)
    needed = more_scenarios_needed(stats, bound) if outcome == INSUFFICIENT else None
    return Part(name, part, outcome, stats.estimate, bound, stats.low, stats.high, margin, needed)


# ----- statistics ------------------------------------------------------------------------------------
def detection_slice(gate: Gate, gate_set: GateSet, s: Slice, cand: DetectionEval,
                    base: DetectionEval | None) -> SliceStats:
    """Bootstrap of the gate's detection metric on one slice (module docstring).

    Raises:
        BadInput: the slice has no ground truth of its classes in the evaluation set.
    """
    from andon.gates.detection_bootstrap import bootstrap_map, match_detections

    classes = _slice_classes(gate, s)
    groups, names = cand.units.groups(gate.unit)
    scenario_of_frame = [names[g] for g in groups]
    frames = cand.units.with_tags(s.tags)
    if s.tags and not frames.any():
        raise BadInput(_missing(gate, s, "no frame of the evaluation set carries tags " + ", ".join(s.tags)))
    kept_units = sorted({names[g] for g in groups[frames]})

    def matched(ev: DetectionEval) -> Any:
        from andon.models.detection_metrics import DetectionSet

        gt = DetectionSet.from_arrays(ev.frame_ids, ev.gt_frame, ev.gt_boxes, ev.gt_class)
        pred = DetectionSet.from_arrays(ev.frame_ids, ev.pred_frame, ev.pred_boxes, ev.pred_class,
                                        scores=ev.pred_score)
        m = match_detections(gt, pred, scenario_of_frame, classes, min_range_m=s.min_range_m or 0.0,
                             max_range_m=s.max_range_m if s.max_range_m is not None else math.inf,
                             gt_mask=frames[ev.gt_frame], pred_mask=frames[ev.pred_frame])
        return m.subset(kept_units) if s.tags else m

    cand_m = matched(cand)
    if not cand_m.gt_count.any():
        band = "" if s.min_range_m is None and s.max_range_m is None else \
            f" at {s.min_range_m or 0:g}-{'inf' if s.max_range_m is None else f'{s.max_range_m:g}'} m"
        raise BadInput(_missing(gate, s, f"the evaluation set has no ground-truth box of {', '.join(classes)}{band}"
                                         f"{' in frames tagged ' + ', '.join(s.tags) if s.tags else ''}"))
    base_m = matched(base) if base is not None else None
    boot = bootstrap_map(cand_m, gate_set.resamples, gate_set.seed, gate_set.confidence, base_m)
    metric = str(gate.metric)
    if metric.startswith(AP_PREFIX):
        name = metric[len(AP_PREFIX):]
        if name not in boot.ap:
            raise BadInput(_missing(gate, s, f"the evaluation set has no ground-truth box of {name}"))
        c, b, d = boot.ap[name], boot.baseline_ap.get(name), boot.ap_difference.get(name)
    else:
        c, b, d = boot.mean_ap, boot.baseline_mean_ap, boot.mean_ap_difference
    items = int(cand_m.gt_count.sum())
    return SliceStats(s.name, cand_m.n_scenarios, items, c, b if base is not None else None,
                      d if base is not None else None)


def prediction_slice(gate: Gate, gate_set: GateSet, s: Slice, cand: PredictionEval,
                     base: PredictionEval | None) -> SliceStats:
    """Bootstrap of the gate's prediction metric on one slice (agent-weighted unit means).

    Raises:
        BadInput: no agent of the evaluation set falls in the slice.
    """
    mask = cand.units.with_tags(s.tags)
    if s.classes:
        mask &= np.isin(cand.agent_class, [CLASSES.index(c) for c in s.classes])
    if s.min_range_m is not None:
        mask &= cand.agent_range_m >= s.min_range_m
    if s.max_range_m is not None:
        mask &= cand.agent_range_m < s.max_range_m
    if not mask.any():
        raise BadInput(_missing(gate, s, "no agent of the evaluation set falls in it"))
    groups, _ = cand.units.groups(gate.unit)
    _, unit = np.unique(groups[mask], return_inverse=True)
    counts = np.bincount(unit).astype(np.float64)
    metric = str(gate.metric)

    def unit_means(ev: PredictionEval) -> np.ndarray:
        values = np.asarray(ev.metrics[metric], dtype=np.float64)[mask]
        return np.bincount(unit, weights=values) / counts

    c_values = unit_means(cand)
    args = (gate_set.resamples, gate_set.confidence, gate_set.seed)
    c = paired_mean_bootstrap(c_values, None, *args, weights=counts)
    if base is None:
        return SliceStats(s.name, len(counts), int(mask.sum()), c)
    b_values = unit_means(base)
    b = paired_mean_bootstrap(b_values, None, *args, weights=counts)
    d = paired_mean_bootstrap(c_values, b_values, *args, weights=counts)
    return SliceStats(s.name, len(counts), int(mask.sum()), c, b, d)


def _slice_classes(gate: Gate, s: Slice) -> list[str]:
    metric = str(gate.metric)
    classes = list(s.classes) or list(DETECTION_CLASSES)
    if metric.startswith(AP_PREFIX):
        name = metric[len(AP_PREFIX):]
        if name not in classes:
            raise BadInput(_missing(gate, s, f"its classes {', '.join(classes)} exclude {name}, the class of {metric}"))
        return [name]
    return classes


def _missing(gate: Gate, s: Slice, why: str) -> str:
    return (f"slice {s.name!r} of gate {gate.name!r} cannot be judged: {why}; a requested slice without "
            f"evidence fails the gate (fix the slice or the evaluation set)")


def _check_paired(cand: DetectionEval | PredictionEval, base: DetectionEval | PredictionEval) -> None:
    cand_items = cand.frame_ids if isinstance(cand, DetectionEval) else cand.agent_keys
    base_items = base.frame_ids if isinstance(base, DetectionEval) else base.agent_keys
    if cand.dataset_id != base.dataset_id or cand.split != base.split or cand_items != base_items:
        raise BadInput(f"the candidate ({cand.model}) and the baseline ({base.model}) were not evaluated on the "
                       f"same frames of the same evaluation set ({cand.dataset_id} vs {base.dataset_id}): a paired "
                       f"comparison needs both; rerun with rerun=true")


# ----- the gate --------------------------------------------------------------------------------------
def evaluate_model_metric(gate: Gate, gate_set: GateSet, evidence: Evidence) -> GateResult:
    """The model-metric gate (module docstring)."""
    cand = evidence.model_eval(gate, CANDIDATE)
    if cand is None:
        raise BadInput(f"no evaluation of {gate.model} in the candidate stack: gate a stack that contains it")
    base = evidence.model_eval(gate, BASELINE) if gate.max_regression is not None else None
    notes: list[str] = []
    if base is not None:
        _check_paired(cand, base)
    elif gate.max_regression is not None:
        notes.append("no baseline (production) version of " + str(gate.model) + ": non-regression "
                     + ("required but impossible" if gate.require_baseline else "skipped"))
    inputs = gate_inputs(gate, gate_set, model={CANDIDATE: cand.model, BASELINE: base.model if base else None},
                         eval_dataset_id=cand.dataset_id,
                         evaluations=[_cache_name(evidence, e) for e in (cand, base) if e is not None])
    stats_of = detection_slice if isinstance(cand, DetectionEval) else prediction_slice
    stats = [stats_of(gate, gate_set, s, cand, base) for s in (ALL, *gate.slices)]  # type: ignore[arg-type]
    parts = [p for st in stats for p in _parts(gate, st)]
    outcomes = [p.outcome for p in parts]
    overall = stats[0]
    needed: dict[str, Any] | None = None
    if gate.min_scenarios and overall.units < gate.min_scenarios:
        outcomes.append(INSUFFICIENT)
        notes.append(f"{overall.units} scenario units < min_scenarios {gate.min_scenarios}")
        needed = {"scenarios": gate.min_scenarios - overall.units}
    if gate.require_baseline and gate.max_regression is not None and base is None:
        outcomes.append(FAIL)
    # Nothing to judge happens only when non-regression was skipped for want of a baseline (a first
    # release): the gate then passes with the note, unless min_scenarios already said otherwise.
    outcome = worst(outcomes) if outcomes else PASS
    if outcome == INSUFFICIENT:
        more = [p.needed_units for p in parts if p.outcome == INSUFFICIENT and p.needed_units]
        if more:
            needed = {"scenarios": max(max(more), (needed or {}).get("scenarios", 0))}
    deciding = _deciding(parts, outcome)
    details = {"metric": gate.metric, "higher_is_better": gate.higher_is_better, "unit": gate.unit,
               "slices": [_slice_row(st, [p for p in parts if p.slice == st.name]) for st in stats],
               "notes": notes}
    reason = _reason(gate, outcome, parts, notes, overall)
    if deciding is None:
        return result(gate, outcome, reason, value=overall.candidate.estimate, inputs=inputs, needed=needed,
                      details=details, interval=(overall.candidate.low, overall.candidate.high))
    return result(gate, outcome, reason, value=deciding.value, bound=deciding.bound,
                  interval=(deciding.low, deciding.high), margin=deciding.margin, inputs=inputs,
                  needed=needed if outcome == INSUFFICIENT else None, details=details)


def _parts(gate: Gate, st: SliceStats) -> list[Part]:
    higher = gate.higher_is_better
    parts = []
    bound = gate.min if higher else gate.max
    if bound is not None:
        parts.append(_part(st.name, ABSOLUTE, st.candidate, bound, higher))
    if gate.max_regression is not None and st.difference is not None:
        parts.append(_part(st.name, NON_REGRESSION, st.difference,
                           -gate.max_regression if higher else gate.max_regression, higher))
    return parts


def _deciding(parts: Sequence[Part], outcome: str) -> Part | None:
    """The part the gate's numbers show: the first part with the gate's outcome, overall slice first."""
    for p in parts:
        if p.outcome == outcome:
            return p
    return parts[0] if parts else None


def _slice_row(st: SliceStats, parts: Sequence[Part]) -> dict[str, Any]:
    return {"slice": st.name, "candidate": st.candidate.estimate,
            "candidate_interval": [st.candidate.low, st.candidate.high],
            "baseline": st.baseline.estimate if st.baseline else None,
            "baseline_interval": [st.baseline.low, st.baseline.high] if st.baseline else None,
            "difference": st.difference.estimate if st.difference else None,
            "difference_interval": [st.difference.low, st.difference.high] if st.difference else None,
            "scenarios": st.units, "items": st.items, "undefined_resamples": st.candidate.undefined,
            "outcome": worst([p.outcome for p in parts]) if parts else None,
            "parts": [{"part": p.part, "outcome": p.outcome, "bound": p.bound, "margin": p.margin} for p in parts]}


def _reason(gate: Gate, outcome: str, parts: Sequence[Part], notes: Sequence[str], overall: SliceStats) -> str:
    metric = str(gate.metric)
    head = {PASS: "passed", FAIL: "failed", INSUFFICIENT: "insufficient evidence"}[outcome]
    deciding = [p for p in parts if p.outcome == outcome] if outcome != PASS else list(parts[:2])
    shown = "; ".join(p.text(metric) for p in deciding[:4])
    more = f" (+{len(deciding) - 4} more)" if len(deciding) > 4 else ""
    tail = f" [{'; '.join(notes)}]" if notes else ""
    return (f"{head} on {overall.units} scenario units ({overall.items} "
            f"{'boxes' if gate.task == 'detection' else 'agents'}): {shown or 'no bound judged'}{more}{tail}")


def _cache_name(evidence: Evidence, ev: DetectionEval | PredictionEval) -> str:
    name, _, version = ev.model.partition("@")
    return cache_path(evidence.workspace, name, version, ev.dataset_id, ev.split).relative_to(
        evidence.workspace.root).as_posix()
