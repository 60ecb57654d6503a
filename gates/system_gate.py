"""System-metric gates on closed-loop simulation results: km per disengagement, collisions.

Inputs are simulation result documents (contract: WS/simulations/<sim_id>/result.json): km,
disengagements, collisions, errors, events, scenario_ids. A simulation with errored scenarios, a
missing or non-finite number, or (for non-regression) a baseline run on other scenarios fails the
gate: counts over an incomplete or unpaired run prove nothing.

Decisions (each bound one-sided at the gate set's confidence; exact Poisson and binomial bounds):

    km_per_disengagement >= min:  low = km / poisson_upper(D), high = km / poisson_lower(D) (inf at D = 0);
                                  pass low >= min, fail high < min, else insufficient with the km needed
    non_regression (rates):       the candidate's disengagements given the total, D_c | D_c + D_b, are
                                  binomial(N, p) with p = k_c r / (k_c r + k_b), r the rate ratio
                                  candidate / baseline; Clopper-Pearson bounds on p give bounds on r;
                                  pass r_high <= 1 + max_regression, fail r_low > 1 + max_regression,
                                  else insufficient (km needed on each side, rates as observed)
    collisions <= max (default 0): a count, no statistics: any collision above the bound fails
    collisions_per_km <= max:     rate bounds poisson(C) / km, decided like the floor above

`needed` of an insufficient gate is {"km": more km}: for a floor or ceiling, the least further
driving that could still pass (andon.gates.bounds.km_needed_to_show: no further event); for
non-regression, the further driving on each side that would decide it at the observed rates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from andon.errors import BadInput
from andon.gates import bounds
from andon.gates.evidence import Evidence
from andon.gates.outcome import gate_inputs, is_finite, result, worst
from andon.gates.records import FAIL, INSUFFICIENT, PASS, GateResult
from andon.gates.spec import COLLISIONS, COLLISIONS_PER_KM, KM_PER_DISENGAGEMENT, Gate, GateSet

COUNT_KEYS = {KM_PER_DISENGAGEMENT: "disengagements", COLLISIONS: "collisions", COLLISIONS_PER_KM: "collisions"}


def sim_numbers(doc: Mapping[str, Any] | None, which: str) -> tuple[float, int, int]:
    """(km, disengagements, collisions) of a simulation result, checked.

    Raises:
        BadInput: no document, errored scenarios, a missing, negative or non-finite number.
    """
    if doc is None:
        raise BadInput(f"no simulation result for the {which}: run `andon sim run` on the {which} stack and pass "
                       f"its result")
    errors = list(doc.get("errors") or ())
    if errors:
        first = errors[0] if isinstance(errors[0], Mapping) else {"message": str(errors[0])}
        raise BadInput(f"simulation {doc.get('sim_id')} of the {which}: {len(errors)} scenario(s) raised (e.g. "
                       f"{first.get('scenario_id', '?')}: {first.get('message', '')}); its counts are incomplete")
    km = doc.get("km")
    if not is_finite(km) or km < 0:
        raise BadInput(f"simulation {doc.get('sim_id')} of the {which}: km {km!r} is not a finite distance >= 0")
    counts = []
    for key in ("disengagements", "collisions"):
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadInput(f"simulation {doc.get('sim_id')} of the {which}: {key} {value!r} is not a count >= 0")
        counts.append(value)
    return float(km), counts[0], counts[1]


def _side(doc: Mapping[str, Any], km: float, count: int, gate_set: GateSet) -> dict[str, Any]:
    low, high = bounds.poisson_lower(count, gate_set.confidence), bounds.poisson_upper(count, gate_set.confidence)
    return {"sim_id": doc.get("sim_id"), "km": km, "count": count, "rate_per_km": count / km if km > 0 else None,
            "rate_interval": [low / km, high / km] if km > 0 else None,
            "km_per_event": km / count if count else None,
            "km_per_event_interval": [km / high, km / low if low > 0 else None]}


def evaluate_system_metric(gate: Gate, gate_set: GateSet, evidence: Evidence) -> GateResult:
    """The system-metric gate (module docstring)."""
    km, disengagements, collisions = sim_numbers(evidence.sim_candidate, "candidate")
    cand_doc: Mapping[str, Any] = evidence.sim_candidate or {}
    count = disengagements if gate.metric == KM_PER_DISENGAGEMENT else collisions
    base_doc = evidence.sim_baseline if gate.non_regression else None
    notes: list[str] = []
    base = None
    if base_doc is not None:
        base_km, base_d, base_c = sim_numbers(base_doc, "baseline")
        base = (base_km, base_d if gate.metric == KM_PER_DISENGAGEMENT else base_c)
        _check_paired(cand_doc, base_doc)
    elif gate.non_regression:
        notes.append("no baseline simulation: non-regression " + ("required but impossible" if gate.require_baseline
                                                                  else "skipped"))
    inputs = gate_inputs(gate, gate_set, sim_ids={"candidate": cand_doc.get("sim_id"),
                                                  "baseline": base_doc.get("sim_id") if base_doc else None},
                         scenarios=len(cand_doc.get("scenario_ids") or ()), models=cand_doc.get("models"),
                         bounds={"min": gate.min, "max": gate.max, "max_regression": gate.max_regression})
    events = [{k: e.get(k) for k in ("scenario_id", "time_ns", "cause")} for e in cand_doc.get("events") or ()
              if isinstance(e, Mapping) and (gate.metric == KM_PER_DISENGAGEMENT or e.get("cause") == "collision")]
    details: dict[str, Any] = {"metric": gate.metric, "events": events, "notes": notes,
                               "candidate": _side(cand_doc, km, count, gate_set),
                               "baseline": _side(base_doc, *base, gate_set) if base_doc and base else None}
    if gate.metric == KM_PER_DISENGAGEMENT:
        details["km_per_disengagement"] = {
            "candidate": {"value": km / disengagements if disengagements else None,
                          "interval": details["candidate"]["km_per_event_interval"], "km": km,
                          "disengagements": disengagements},
            "baseline": None if not base else {"value": base[0] / base[1] if base[1] else None,
                                               "interval": details["baseline"]["km_per_event_interval"],
                                               "km": base[0], "disengagements": base[1]}}
    parts: list[dict[str, Any]] = []
    if gate.metric == COLLISIONS:
        limit = gate.max if gate.max is not None else 0.0
        outcome = PASS if collisions <= limit else FAIL
        parts.append({"part": "count", "outcome": outcome, "value": float(collisions), "bound": limit,
                      "interval": None, "margin": limit - collisions, "needed_km": None})
    elif gate.metric == KM_PER_DISENGAGEMENT and gate.min is not None:
        parts.append(_floor_part(km, count, gate.min, gate_set.confidence))
    elif gate.metric == COLLISIONS_PER_KM and gate.max is not None:
        parts.append(_ceiling_part(km, count, gate.max, gate_set.confidence))
    if base is not None:
        parts.append(_ratio_part(km, count, *base, gate.max_regression or 0.0, gate_set.confidence))
    outcomes = [p["outcome"] for p in parts]
    if gate.non_regression and base is None and gate.require_baseline:
        outcomes.append(FAIL)
    outcome = worst(outcomes) if outcomes else PASS
    details["parts"] = parts
    shown = next((p for p in parts if p["outcome"] == outcome), parts[0] if parts else None)
    needed_km = [p["needed_km"] for p in parts if p["outcome"] == INSUFFICIENT and p["needed_km"]]
    needed = {"km": round(max(needed_km), 3)} if outcome == INSUFFICIENT and needed_km else None
    reason = _reason(gate, outcome, parts, notes, km, count)
    if shown is None:
        return result(gate, outcome, reason, value=_value(gate, km, count), inputs=inputs, details=details)
    return result(gate, outcome, reason, value=shown["value"], bound=shown["bound"],
                  interval=tuple(shown["interval"]) if shown["interval"] else None, margin=shown["margin"],
                  inputs=inputs, needed=needed, details=details)


def _value(gate: Gate, km: float, count: int) -> float | None:
    if gate.metric == KM_PER_DISENGAGEMENT:
        return km / count if count else None
    if gate.metric == COLLISIONS_PER_KM:
        return count / km if km > 0 else None
    return float(count)


def _floor_part(km: float, count: int, floor_km: float, confidence: float) -> dict[str, Any]:
    """km per disengagement >= floor_km."""
    if km <= 0:
        return {"part": "floor", "outcome": INSUFFICIENT, "value": None, "bound": floor_km, "interval": None,
                "margin": None, "needed_km": bounds.km_needed_to_show(floor_km, count, confidence)}
    low, high = bounds.km_per_disengagement_bounds(km, count, confidence)
    outcome, margin = _decide(low, high, floor_km, higher_is_better=True)
    needed = bounds.km_needed_to_show(floor_km, count, confidence, km) if outcome == INSUFFICIENT else None
    return {"part": "floor", "outcome": outcome, "value": km / count if count else None, "bound": floor_km,
            "interval": [low, high if math.isfinite(high) else None], "margin": margin, "needed_km": needed}


def _ceiling_part(km: float, count: int, ceiling: float, confidence: float) -> dict[str, Any]:
    """Events per km <= ceiling."""
    if km <= 0:
        needed = bounds.km_needed_to_show(1.0 / ceiling, count, confidence) if ceiling > 0 else None
        return {"part": "ceiling", "outcome": INSUFFICIENT, "value": None, "bound": ceiling, "interval": None,
                "margin": None, "needed_km": needed}
    low, high = bounds.rate_lower_bound(count, km, confidence), bounds.rate_upper_bound(count, km, confidence)
    outcome, margin = _decide(low, high, ceiling, higher_is_better=False)
    needed = None
    if outcome == INSUFFICIENT and ceiling > 0:  # events per km <= c  <=>  km per event >= 1 / c
        needed = bounds.km_needed_to_show(1.0 / ceiling, count, confidence, km)
    return {"part": "ceiling", "outcome": outcome, "value": count / km, "bound": ceiling, "interval": [low, high],
            "margin": margin, "needed_km": needed}


def _ratio_part(km: float, count: int, base_km: float, base_count: int, tolerance: float,
                confidence: float) -> dict[str, Any]:
    """Rate ratio candidate / baseline <= 1 + tolerance (conditional binomial bounds)."""
    low, high = bounds.rate_ratio_bounds(count, km, base_count, base_km, confidence)
    bound = 1.0 + tolerance
    outcome, margin = _decide(low, high if math.isfinite(high) else math.inf, bound, higher_is_better=False)
    needed = km_needed_for_ratio(count, km, base_count, base_km, bound, confidence) if outcome == INSUFFICIENT \
        else None
    value = (count / km) / (base_count / base_km) if base_count and km > 0 and base_km > 0 else None
    return {"part": "non_regression", "outcome": outcome, "value": value, "bound": bound,
            "interval": [low, high if math.isfinite(high) else None], "margin": margin, "needed_km": needed}


def _decide(low: float, high: float, bound: float, higher_is_better: bool) -> tuple[str, float | None]:
    """(outcome, margin of the conservative end; None when that end is unbounded)."""
    direction = ">=" if higher_is_better else "<="
    outcome = bounds.decide(low, high, bound, direction)
    margin = bounds.decision_margin(low, high, bound, direction)
    return outcome, margin if math.isfinite(margin) else None


def km_needed_for_ratio(count: int, km: float, base_count: int, base_km: float, allowed_ratio: float,
                        confidence: float, max_factor: float = 1e4) -> float | None:
    """More km, on each side, that would decide an undecided rate ratio if both rates stay as observed.

    Both runs are scaled by the same factor f (counts rounded); the smallest f (to 1 %) at which the
    ratio's bounds no longer straddle `allowed_ratio` gives (f - 1) * km. A planning figure, not a
    guarantee. None when no factor up to `max_factor` decides (e.g. no event on either side).
    """
    def decided(factor: float) -> bool:
        low, high = bounds.rate_ratio_bounds(round(count * factor), km * factor, round(base_count * factor),
                                             base_km * factor, confidence)
        return bounds.decide(low, high, allowed_ratio, "<=") != INSUFFICIENT

    if count + base_count == 0:
        return None
    high_factor = 2.0
    while not decided(high_factor):
        high_factor *= 2.0
        if high_factor > max_factor:
            return None
    low_factor = high_factor / 2.0
    while high_factor / low_factor > 1.01:
        middle = math.sqrt(low_factor * high_factor)
        low_factor, high_factor = (low_factor, middle) if decided(middle) else (middle, high_factor)
    return (high_factor - 1.0) * km


def _check_paired(cand: Mapping[str, Any], base: Mapping[str, Any]) -> None:
    a, b = sorted(cand.get("scenario_ids") or ()), sorted(base.get("scenario_ids") or ())
    if a != b:
        raise BadInput(f"the candidate's simulation {cand.get('sim_id')} and the baseline's {base.get('sim_id')} "
                       f"replayed different scenarios ({len(a)} vs {len(b)}): non-regression needs the same scenarios")


def _reason(gate: Gate, outcome: str, parts: list[dict[str, Any]], notes: list[str], km: float, count: int) -> str:
    what = {KM_PER_DISENGAGEMENT: "disengagements", COLLISIONS: "collisions", COLLISIONS_PER_KM: "collisions"}
    head = {PASS: "passed", FAIL: "failed", INSUFFICIENT: "insufficient evidence"}[outcome]
    shown = "; ".join(f"{p['part']}: {_num(p['value'])} {_interval(p['interval'])} vs {_num(p['bound'])}: "
                      f"{p['outcome']}" for p in parts)
    tail = f" [{'; '.join(notes)}]" if notes else ""
    return f"{head}: {count} {what[str(gate.metric)]} in {km:.3f} km; {shown or 'nothing judged'}{tail}"


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def _interval(interval: Any) -> str:
    if not interval:
        return ""
    low, high = interval
    return f"[{_num(low)}, {'inf' if high is None else _num(high)}]"
