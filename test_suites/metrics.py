"""The metrics suites check, computed on one replayed scenario (a `ScenarioTrace`) and its log.

`METRICS` is a plain dict, name -> Metric: the set of metrics is visible here and nowhere else. A metric
is `fn(trace, context, filters, params) -> MetricValue`, where `context` (a `LogContext`) holds what
it reads of the scenario's log besides the trace: the meta (the fleet's ground-truth behaviour
events), the logged ego poses and the logged agents' world positions from the scenario's start to
FUTURE_S after its end. `value` None with `applicable` False means "not applicable" (the filters
select nothing in this scenario: skipped); None with `applicable` True means the stack gave nothing
to score where there was something to judge (fails). `weight` is how much the scenario counts when
pooled over a suite (objects, samples); `evidence` says which objects and frames made the value;
`worst_frame_index` is the frame a picture of a failure shows. Every metric takes the `tags` filter
(applied before it runs, see `evaluate_metric`); the others are listed per metric and refused at load
when a metric does not take them. Units: metres, seconds, m/s, m/s²; positions are world-frame BEV.

The metrics, each defined in its module's docstring (the selected ground truth, "GT", in
andon.test_suites.selection):

- detection_recall, object_recall, detection_precision: andon.test_suites.detection_metrics.
- min_fde, min_ade, fde, miss_rate: andon.test_suites.prediction_metrics.
- phantom_braking, lead_lost_s, disengagements, collisions, ttc_events, km:
  andon.test_suites.driving_metrics.

Records and pooling live in andon.test_suites.metric_records, the log context in
andon.test_suites.log_context, the route (corridor ahead) in andon.test_suites.route and one-to-one
matching in andon.test_suites.matching; their public names are re-exported here.
"""

from __future__ import annotations

from andon.simulation.trace import CLOSED_LOOP, OPEN_LOOP, ScenarioTrace
from andon.test_suites.detection_metrics import detection_precision, detection_recall, object_recall
from andon.test_suites.driving_metrics import (
    collisions,
    disengagements,
    km,
    lead_lost_s,
    phantom_braking,
    ttc_events,
)
from andon.test_suites.log_context import LogContext
from andon.test_suites.matching import assign
from andon.test_suites.metric_records import (
    MAX,
    POOLED,
    SUM,
    Metric,
    MetricValue,
    aggregate,
    not_applicable,
    unscored,
)
from andon.test_suites.prediction_metrics import fde, min_ade, min_fde, miss_rate
from andon.test_suites.route import Route
from andon.test_suites.schema import Check

__all__ = [  # the registry, and the names callers import from here
    "METRICS", "LogContext", "Metric", "MetricValue", "Route", "aggregate", "assign", "check_options",
    "evaluate_metric", "not_applicable", "resolved_params", "unscored",
]

_RANGE = frozenset({"classes", "min_range_m", "max_range_m"})
_MATCH = (("match_distance_m", 2.0),)
_PREDICTION = (("horizon_s", 0.0), ("k", 0.0), ("match_distance_m", 2.0), ("miss_threshold_m", 2.0))
_CORRIDOR_HALF_WIDTH_M = 1.875 + 1.0  # the planner's lane_half_width_m + corridor_margin_m

METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("detection_recall", detection_recall, POOLED, OPEN_LOOP, "share",
           "share of selected GT objects matched by a same-class detection within 2 m", _RANGE | {"involved_tag"}, _MATCH),
    Metric("object_recall", object_recall, POOLED, OPEN_LOOP, "share",
           "share of selected GT objects detected on at least half of their frames", _RANGE | {"involved_tag"},
           (("match_distance_m", 2.0), ("min_hit_share", 0.5))),
    Metric("detection_precision", detection_precision, POOLED, OPEN_LOOP, "share",
           "share of detections within range matched to a same-class GT object within 2 m", _RANGE, _MATCH),
    Metric("min_fde", min_fde, POOLED, OPEN_LOOP, "m", "mean minFDE_k of tracked agents' predictions",
           _RANGE | {"involved_tag"}, _PREDICTION),
    Metric("min_ade", min_ade, POOLED, OPEN_LOOP, "m", "mean minADE_k of tracked agents' predictions",
           _RANGE | {"involved_tag"}, _PREDICTION),
    Metric("fde", fde, POOLED, OPEN_LOOP, "m", "mean FDE of the most probable mode", _RANGE | {"involved_tag"},
           _PREDICTION),
    Metric("miss_rate", miss_rate, POOLED, OPEN_LOOP, "share", "share of samples with minFDE_k above the miss threshold",
           _RANGE | {"involved_tag"}, _PREDICTION),
    Metric("phantom_braking", phantom_braking, SUM, CLOSED_LOOP, "count",
           "hard-braking onsets with no agent in the corridor ahead and no stop line", frozenset(),
           (("clear_radius_m", 0.0), ("comfortable_decel_mps2", 2.0), ("corridor_half_width_m", _CORRIDOR_HALF_WIDTH_M),
            ("decel_threshold_mps2", 3.0), ("gap_m", 10.0), ("lookahead_s", 3.0), ("min_speed_mps", 1.0),
            ("reaction_s", 1.0), ("stop_min_s", 1.0), ("stop_speed_mps", 0.5))),
    Metric("lead_lost_s", lead_lost_s, MAX, OPEN_LOOP, "s",
           "longest time the lead vehicle had no confirmed track within 2 m", _RANGE,
           (("corridor_half_width_m", 1.875), ("match_distance_m", 2.0), ("max_range_m", 60.0))),
    Metric("disengagements", disengagements, SUM, CLOSED_LOOP, "count", "disengagements of the replay"),
    Metric("collisions", collisions, SUM, CLOSED_LOOP, "count", "agents the ego collided with"),
    Metric("ttc_events", ttc_events, SUM, CLOSED_LOOP, "count", "disengagements with a TTC cause"),
    Metric("km", km, SUM, CLOSED_LOOP, "km", "kilometres driven"),
)}


def check_options(metric: Metric, check: Check) -> str:
    """Why a check's filters or parameters do not fit its metric ("" when they do)."""
    extra = [name for name in check.filters.given() if name != "tags" and name not in metric.filters]
    if extra:
        takes = ", ".join(sorted(metric.filters | {"tags"}))
        return f"metric {metric.name} takes no filter {extra[0]!r} (it takes: {takes})"
    known = dict(metric.params)
    unknown = [name for name, _ in check.params if name not in known]
    if unknown:
        takes = ", ".join(known) or "none"
        return f"metric {metric.name} has no parameter {unknown[0]!r} (it has: {takes})"
    return ""


def resolved_params(metric: Metric, check: Check) -> dict[str, float]:
    """The metric's defaults with the check's parameters applied."""
    return {**dict(metric.params), **dict(check.params)}


def evaluate_metric(metric: Metric, check: Check, trace: ScenarioTrace, context: LogContext | None = None
                    ) -> MetricValue:
    """A check's metric on one scenario: not applicable when the scenario lacks one of the check's tags.

    `context` None: an empty one (no meta, no log beyond the trace).
    """
    context = LogContext() if context is None else context
    missing = [t for t in check.filters.tags if t not in trace.tags]
    if missing:
        return not_applicable(f"the scenario lacks tag {missing[0]!r}")
    return metric.fn(trace, context, check.filters, resolved_params(metric, check))
