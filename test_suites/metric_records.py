"""The records of suite metrics: a metric's value on one scenario, a metric, and pooling over a suite.

A metric is `fn(trace, context, filters, params) -> MetricValue` (andon.test_suites.metrics lists them).
`value` None with `applicable` False means "not applicable" (the filters select nothing in this
scenario: skipped); None with `applicable` True means the stack gave nothing to score where there was
something to judge (fails). `weight` is how much the scenario counts when pooled over a suite (objects,
samples); `evidence` says which objects and frames made the value; `worst_frame_index` is the frame a
picture of a failure shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.simulation.trace import ScenarioTrace
from andon.test_suites.log_context import LogContext
from andon.test_suites.schema import Filters

POOLED = "pooled"
MAX = "max"
SUM = "sum"
MEAN = "mean"
AGGREGATES = (POOLED, MAX, SUM, MEAN)
MAX_EVIDENCE = 50  # listed objects/frames per scenario and check; counts are always complete


@dataclass(frozen=True, slots=True)
class MetricValue:
    """One metric on one scenario.

    Attributes:
        value: the metric, or None when not applicable (`reason` says why).
        weight: how much this scenario counts when pooled (objects, samples); 0 when not applicable.
        evidence: JSON-able: which objects and frames made the value.
        worst_frame_index: the trace frame a picture of a failure shows (None: no particular frame).
        track_ids: ground-truth track ids to highlight in that picture.
        reason: why the value is None ("" otherwise).
        applicable: False when the filters select nothing in the scenario (the check skips it); a value
            of None that IS applicable means the stack gave nothing to score (e.g. the selected agent was
            never tracked), which fails the check: a suite never passes on missing evidence.
    """

    value: float | None
    weight: float = 1.0
    evidence: dict[str, Any] = field(default_factory=dict)
    worst_frame_index: int | None = None
    track_ids: tuple[str, ...] = ()
    reason: str = ""
    applicable: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "weight": self.weight, "evidence": self.evidence,
                "worst_frame_index": self.worst_frame_index, "track_ids": list(self.track_ids), "reason": self.reason,
                "applicable": self.applicable}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> MetricValue:
        value = doc.get("value")
        frame = doc.get("worst_frame_index")
        return cls(None if value is None else float(value), float(doc.get("weight", 1.0)), dict(doc.get("evidence") or {}),
                   None if frame is None else int(frame), tuple(doc.get("track_ids") or ()), str(doc.get("reason", "")),
                   bool(doc.get("applicable", True)))


def not_applicable(reason: str) -> MetricValue:
    """The filters select nothing here: the check skips this scenario."""
    return MetricValue(None, 0.0, {}, None, (), reason, applicable=False)


def unscored(reason: str, evidence: dict[str, Any] | None = None, frame_index: int | None = None,
             track_ids: tuple[str, ...] = ()) -> MetricValue:
    """There was something to judge but the stack gave nothing to score: the check fails here."""
    return MetricValue(None, 0.0, evidence or {}, frame_index, track_ids, reason, applicable=True)


MetricFn = Callable[[ScenarioTrace, LogContext, Filters, Mapping[str, float]], MetricValue]


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric: its function, how scenarios pool, its default mode, and the filters and parameters it takes.

    Attributes:
        name: the name suites use.
        fn: (trace, context, filters, params) -> MetricValue; params hold every default.
        aggregate: how an aggregate check combines scenarios: "pooled" (weighted mean), "max", "sum", "mean".
        mode: the replay it needs by default (open_loop or closed_loop).
        unit: of the value, for people.
        description: one line.
        filters: the filters it takes besides `tags` (which every metric takes).
        params: its parameters and their defaults.
    """

    name: str
    fn: MetricFn
    aggregate: str
    mode: str
    unit: str
    description: str
    filters: frozenset[str] = frozenset()
    params: tuple[tuple[str, float], ...] = ()


def aggregate(values: Sequence[float], weights: Sequence[float], kind: str) -> float | None:
    """Combine per-scenario values over a suite: pooled (weighted mean), max, sum or mean; None when empty."""
    if kind not in AGGREGATES:
        raise BadInput(f"aggregate {kind!r} is not one of {', '.join(AGGREGATES)}")
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if len(v) == 0:
        return None
    if kind == POOLED:
        total = float(w.sum())
        return float((v * w).sum() / total) if total > 0 else float(v.mean())
    if kind == MAX:
        return float(v.max())
    if kind == SUM:
        return float(v.sum())
    return float(v.mean())
