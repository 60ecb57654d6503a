"""Every metric on hand-made traces with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from andon.simulation.trace import COLLISION, TTC, Event
from andon.test_suites.metrics import METRICS, LogContext, aggregate, assign, evaluate_metric, resolved_params
from andon.test_suites.schema import Check, Filters
from tests.test_suites.helpers import STEP_NS, T0_NS, frame, meta_with, trace


def run(metric: str, tr, meta=None, tags=(), params=(), **filters):
    check = Check("c", metric, "per_scenario", ">=", 0.0, "blocking", Filters(**filters, tags=tuple(tags)),
                  tuple(sorted(params)))
    context = meta if isinstance(meta, LogContext) else LogContext(meta=meta or {})
    return evaluate_metric(METRICS[metric], check, tr, context)


# ----- matching ---------------------------------------------------------------------------------------
def test_assign_is_one_to_one_with_the_most_pairs_then_least_distance():
    d = np.array([[0.5, 1.0], [0.6, np.inf], [5.0, 5.0]])
    rows, cols = assign(d, 2.0)
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 1), (1, 0)]  # 2 pairs beat the nearest one
    rows, cols = assign(np.zeros((0, 3)), 2.0)
    assert len(rows) == 0 and len(cols) == 0
    assert assign(np.array([[2.0]]), 2.0)[0].tolist() == [0]  # "within" includes the bound


# ----- detection ----------------------------------------------------------------------------------------
def detection_trace():
    a, b, c, p = ("A", "vehicle", 10.0, 0.0), ("B", "vehicle", 40.0, 0.0), ("C", "vehicle", 70.0, 0.0), \
        ("P", "pedestrian", 5.0, 2.0)
    return trace([
        frame(0, gt=[a, b, c, p], dets=[("vehicle", 10.5, 0.0), ("vehicle", 41.5, 1.5), ("pedestrian", 5.0, 2.0)]),
        frame(1, gt=[a, b], sweep=False),  # no sweep: not counted
        frame(2, gt=[a, b], dets=[("vehicle", 40.0, 1.0), ("pedestrian", 10.0, 0.0)]),  # class mismatch on A
        frame(3, gt=[("D", "vehicle", 10.0, 0.0), ("E", "vehicle", 11.0, 0.0)], dets=[("vehicle", 10.5, 0.0)]),
    ])


def test_detection_recall_counts_selected_objects_on_frames_with_a_sweep():
    value = run("detection_recall", detection_trace(), classes=("vehicle",), max_range_m=50.0)
    # frame 0: A hit, B missed (2.1 m away), C out of range; frame 2: B hit, A missed; frame 3: one of D/E
    assert value.value == pytest.approx(3 / 6) and value.weight == 6
    assert value.evidence["n_missed"] == 3
    assert sorted(map(tuple, value.evidence["missed"])) == [("A", 2), ("B", 0), ("E", 3)]
    assert value.worst_frame_index == 0 and value.track_ids == ("B",)
    everything = run("detection_recall", detection_trace())
    assert everything.value == pytest.approx(4 / 8)  # C and P too: P is hit, C is missed


def test_detection_recall_range_bounds_and_not_applicable():
    near = run("detection_recall", detection_trace(), classes=("vehicle",), min_range_m=20.0, max_range_m=50.0)
    assert near.value == pytest.approx(1 / 2)  # B only: missed in frame 0, hit in frame 2
    none = run("detection_recall", detection_trace(), classes=("cyclist",))
    assert none.value is None and not none.applicable and none.weight == 0
    tagged = run("detection_recall", detection_trace(), tags=("night",))
    assert not tagged.applicable and "night" in tagged.reason


def test_detection_recall_of_involved_agents_only_while_the_event_lasts():
    meta = meta_with([("cut_in", 2, 3, ["A"])])
    value = run("detection_recall", detection_trace(), meta, involved_tag="cut_in")
    assert value.value == 0.0 and value.weight == 1  # A in frame 2 (missed); frame 3 has no A
    assert not run("detection_recall", detection_trace(), {}, involved_tag="cut_in").applicable  # no ground truth
    assert not run("detection_recall", detection_trace(), meta, involved_tag="pedestrian_crossing").applicable


def test_detection_precision():
    value = run("detection_precision", detection_trace(), classes=("vehicle",), max_range_m=50.0)
    # frame 0: 2 vehicle detections, 1 matched; frame 2: 1 matched; frame 3: 1 matched
    assert value.value == pytest.approx(3 / 4) and value.weight == 4
    assert value.evidence["false_positives"] == [[0, "vehicle", 41.5, 1.5, 0.9]]
    assert value.worst_frame_index == 0
    assert not run("detection_precision", trace([frame(0, gt=[("A", "vehicle", 1.0, 0.0)])])).applicable


# ----- prediction ---------------------------------------------------------------------------------------
def moving_car(n_frames=30, predict_at=(0,), step_s=0.5, n_steps=4, offset_m=1.0, extra_gt=(), tracked=True):
    """A car at x = 20 + t*10 m/s (y 0); at `predict_at` frames its track predicts two modes: the truth
    (prob 0.3) and the truth shifted by `offset_m` in y (prob 0.7)."""
    frames = []
    for i in range(n_frames):
        x = 20.0 + i * 1.0
        modes = None
        tracks = [(1, x, 0.2)] if tracked else []
        if i in predict_at and tracked:
            future_x = x + 10.0 * step_s * np.arange(1, n_steps + 1)
            truth = np.stack([future_x, np.zeros(n_steps)], axis=1)
            modes = np.stack([truth, truth + [0.0, offset_m]])[None]
        frames.append(frame(i, gt=[("car", "vehicle", x, 0.0), *extra_gt], tracks=tracks, modes=modes,
                            probs=None if modes is None else [[0.3, 0.7]], pred_step_s=step_s))
    return trace(frames)


def test_min_fde_min_ade_fde_and_miss_rate_against_the_logged_future():
    tr = moving_car()
    assert run("min_fde", tr).value == pytest.approx(0.0)
    assert run("min_ade", tr).value == pytest.approx(0.0)
    assert run("fde", tr).value == pytest.approx(1.0)  # the most probable mode is the shifted one
    top1 = run("min_fde", tr, params=(("k", 1.0),))
    assert top1.value == pytest.approx(1.0) and top1.evidence["k"] == 1
    assert run("miss_rate", tr, params=(("k", 1.0), ("miss_threshold_m", 0.5))).value == 1.0
    assert run("miss_rate", tr).value == 0.0
    value = run("fde", tr)
    assert value.weight == 1 and value.worst_frame_index == 0 and value.track_ids == ("car",)
    assert value.evidence["horizon_s"] == 2.0 and value.evidence["n_samples"] == 1


def test_prediction_horizon_and_interpolated_future():
    tr = moving_car(step_s=0.25, n_steps=8, offset_m=2.0)  # targets between frames: interpolated
    assert run("min_fde", tr).value == pytest.approx(0.0)
    assert run("fde", tr, params=(("horizon_s", 1.0),)).value == pytest.approx(2.0)
    assert run("fde", tr, params=(("horizon_s", 1.0),)).evidence["horizon_s"] == 1.0
    from andon.errors import BadInput

    with pytest.raises(BadInput, match="horizon_s"):
        run("fde", tr, params=(("horizon_s", 5.0),))


def test_prediction_samples_need_a_known_future_and_a_matched_track():
    late = moving_car(n_frames=25, predict_at=(0, 9))  # frame 9's 2 s future lies beyond the trace
    assert run("min_fde", late).weight == 1
    # an agent with a known future but never tracked: the check fails there (nothing to score), it is not skipped
    other = ("bike", "cyclist", 5.0, 3.0)
    value = run("min_fde", moving_car(extra_gt=[other]), classes=("cyclist",))
    assert value.applicable and value.value is None and "never tracked" in value.reason
    blind = run("min_fde", moving_car(tracked=False))
    assert blind.applicable and blind.value is None and "predicted nothing" in blind.reason
    assert not run("min_fde", moving_car(), classes=("pedestrian",)).applicable


def test_the_future_past_the_trace_s_end_comes_from_the_log():
    from andon.scenarios.records import Frame, Log

    short = moving_car(n_frames=5)  # 0.4 s of trace: the 2 s future lies in the log
    assert not run("min_fde", short).applicable
    poses = [(5.0 * k, 0.0, 0.0, 0.0) for k in range(40)]  # the logged ego at 50 m/s along x
    frames = [Frame(T0_NS + k * STEP_NS, poses[k], np.array([[20.0 + k - 5.0 * k, 0.0, 0.8, 4.5, 1.9, 1.6, 0.0]]),
                    ["vehicle"], ["car"]) for k in range(40)]
    context = LogContext.of(Log("log-a", "synthetic", frames, meta={"x": 1}), T0_NS, T0_NS + 4 * STEP_NS)
    assert len(context.timestamps_ns) == 40 and context.meta == {"x": 1}
    assert np.allclose(context.box_xy_m[:, 0], 20.0 + np.arange(40))  # ego frame -> world
    value = run("min_fde", short, context)
    assert value.value == pytest.approx(0.0) and value.weight == 1


def test_object_recall_counts_objects_seen_on_enough_frames():
    frames = [frame(i, gt=[("A", "pedestrian", 5.0, 0.0), ("B", "pedestrian", 8.0, 2.0)],
                    dets=[("pedestrian", 5.0, 0.0)] if i != 3 else [])
              for i in range(6)]
    value = run("object_recall", trace(frames))
    assert value.value == 0.5 and value.weight == 2  # A: 5 of 6 frames, B: 0 of 6
    assert value.evidence["undetected"] == [["B", 0.0, 6]] and value.track_ids == ("B",)
    assert value.worst_frame_index == 0
    assert run("object_recall", trace(frames), params=(("min_hit_share", 0.9),)).value == 0.0
    assert run("detection_recall", trace(frames)).value == pytest.approx(5 / 12)


def test_prediction_of_the_involved_agent_during_its_event():
    tr = moving_car(predict_at=(0, 5))
    assert run("min_fde", tr, meta_with([("cut_in", 3, 8, ["car"])]), involved_tag="cut_in").weight == 1  # frame 5
    assert run("min_fde", tr, meta_with([("cut_in", 0, 8, ["car"])]), involved_tag="cut_in").weight == 2
    assert not run("min_fde", tr, meta_with([("cut_in", 0, 8, ["other"])]), involved_tag="cut_in").applicable


# ----- planning -----------------------------------------------------------------------------------------
def test_phantom_braking_counts_onsets_with_nothing_to_brake_for():
    accel = {3: -5.0, 4: -5.0, 40: -5.0, 50: -5.0, 90: -5.0, 95: -5.0}
    frames = []
    for i in range(100):
        ego_x = float(i)
        gt = []
        if i in (40, 41):
            gt.append(("lead", "vehicle", ego_x + 15.0, 0.5))  # in the corridor: justified
        if i == 50:
            gt.append(("side", "vehicle", ego_x + 15.0, 5.0))  # beside the corridor: phantom
        if i == 81:
            gt.append(("late", "pedestrian", 67.0, 0.0))  # ahead of the onset at 50, but 3.1 s later
        speed = 0.5 if i == 95 else 10.0  # an onset at walking pace is no braking
        frames.append(frame(i, ego=(ego_x, 0.0, 0.0), speed_mps=speed, gt=gt, plan_accel_mps2=accel.get(i, 0.0)))
    # the logged driver stood at x = 100 m from 10 s to 12 s: the onset at 90 (10 m before) stops there too
    logged_x = np.concatenate([np.arange(101.0), np.full(20, 100.0), 100.0 + np.arange(1.0, 11.0)])
    stamps = T0_NS + STEP_NS * np.arange(len(logged_x))
    context = LogContext(timestamps_ns=stamps, ego_poses=np.column_stack([logged_x, np.zeros((len(logged_x), 3))]))
    value = run("phantom_braking", trace(frames), context)
    assert value.value == 2.0 and value.evidence["n_hard_braking"] == 4
    assert value.evidence["phantom_frames"] == [3, 50]
    reasons = {o["frame_index"]: o["justified_by"] for o in value.evidence["onsets"]}
    assert reasons == {3: None, 40: "agent in corridor", 50: None, 90: "logged stop"}
    assert value.worst_frame_index == 3
    assert run("phantom_braking", trace(frames)).value == 3.0  # without the log the stop is unknown
    softer = run("phantom_braking", trace(frames), context, params=(("decel_threshold_mps2", 6.0),))
    assert softer.value == 0.0 and softer.evidence["n_hard_braking"] == 0


def test_phantom_braking_ahead_in_the_future_and_on_a_turned_ego():
    frames = [frame(i, ego=(0.0, float(i), np.pi / 2), gt=[("ped", "pedestrian", 0.0, 30.0)] if i == 15 else [],
                    plan_accel_mps2=-4.0 if i == 1 else 0.0) for i in range(20)]
    assert run("phantom_braking", trace(frames)).value == 0.0  # the pedestrian enters the corridor 1.4 s later
    unplanned = [frame(i, plan_ok=False) for i in range(3)]
    value = run("phantom_braking", trace(unplanned))
    assert value.applicable and value.value is None  # no plan at all fails, it is not skipped


def test_the_corridor_follows_the_route_around_a_turn():
    from andon.test_suites.metrics import Route

    # the logged ego drives 20 m along x, then turns left and drives along y
    path = np.concatenate([np.column_stack([np.arange(0.0, 20.0), np.zeros(20)]),
                           np.column_stack([np.full(20, 20.0), np.arange(0.0, 20.0)])])
    poses = np.column_stack([path, np.zeros((40, 2))])
    route = Route.from_poses(poses)
    inside, distance = route.ahead(np.array([5.0, 0.0]), np.array([[20.0, 10.0], [10.0, 5.0], [2.0, 0.0]]), 2.875, 45.0)
    assert inside.tolist() == [True, False, False] and distance[0] == pytest.approx(25.0)
    assert not route.ahead(np.array([5.0, 0.0]), np.array([[20.0, 10.0]]), 2.875, 20.0)[0][0]  # beyond the reach
    station, lateral = route.project(np.array([[19.0 + 20.0 + 50.0, 19.0]]))  # past the end: the straight extension
    assert lateral[0] > 2.875
    frames = [frame(i, ego=(float(i) * 0.5, 0.0, 0.0), gt=[("car", "vehicle", 20.0, 10.0)],
                    plan_accel_mps2=-5.0 if i == 0 else 0.0) for i in range(5)]
    stamps = T0_NS + STEP_NS * np.arange(40)
    justified = run("phantom_braking", trace(frames), LogContext(timestamps_ns=stamps, ego_poses=poses))
    assert justified.value == 0.0  # the car stands on the route, round the corner
    assert run("phantom_braking", trace(frames)).value == 1.0  # along the trace's straight path it is off to the side


# ----- tracking -----------------------------------------------------------------------------------------
def test_lead_lost_s_is_the_longest_loss_of_the_same_lead():
    frames = []
    for i in range(20):
        lead_x = 20.0 if i < 17 else 30.0
        gt = [("L", "vehicle", lead_x, 0.0), ("side", "vehicle", 10.0, 3.75)]
        if i >= 17:
            gt.append(("M", "vehicle", 15.0, 0.5))  # a new, nearer lead
        lost = 5 <= i <= 9 or 12 <= i <= 13 or 15 <= i <= 17
        tracks = [] if lost else [(1, lead_x + 1.0, 0.0), (2, 15.0, 0.5)]
        frames.append(frame(i, gt=gt, tracks=tracks))
    value = run("lead_lost_s", trace(frames))
    assert value.value == pytest.approx(0.5) and value.weight == 20
    assert value.evidence["longest"] == {"track_id": "L", "first_frame_index": 5, "last_frame_index": 9,
                                         "duration_s": 0.5}
    assert sorted(r[3] for r in value.evidence["runs"]) == pytest.approx([0.1, 0.2, 0.2, 0.5])  # M's frame 17 apart
    assert value.worst_frame_index == 5 and value.track_ids == ("L",)
    empty = run("lead_lost_s", trace([frame(i, gt=[("side", "vehicle", 10.0, 3.75)]) for i in range(3)]))
    assert not empty.applicable
    always = run("lead_lost_s", trace([frame(i, gt=[("L", "vehicle", 20.0, 0.0)], tracks=[(1, 20.0, 0.0)])
                                       for i in range(3)]))
    assert always.value == 0.0 and always.applicable


# ----- system -------------------------------------------------------------------------------------------
def test_event_metrics_count_the_replay():
    frames = [frame(i) for i in range(5)]
    events = (Event("scn-a", frames[1].timestamp_ns, TTC, (TTC,), ("7",), 1, "TTC 0.8 s"),
              Event("scn-a", frames[3].timestamp_ns, COLLISION, (COLLISION, TTC), ("9",), 3, "collided with 9"))
    tr = trace(frames, events=events, collisions=1, km=0.25)
    assert run("disengagements", tr).value == 2.0 and run("disengagements", tr).track_ids == ("7",)
    assert run("ttc_events", tr).value == 2.0
    collided = run("collisions", tr)
    assert collided.value == 1.0 and collided.worst_frame_index == 3 and collided.track_ids == ("9",)
    assert run("km", tr).value == 0.25
    assert run("collisions", trace(frames)).value == 0.0


def test_aggregate_kinds_and_the_registry():
    assert aggregate([0.5, 1.0], [1, 3], "pooled") == pytest.approx(0.875)
    assert aggregate([0.5, 1.0], [0, 0], "pooled") == pytest.approx(0.75)
    assert aggregate([0.5, 1.0], [1, 3], "max") == 1.0
    assert aggregate([0.5, 1.0], [1, 3], "sum") == 1.5
    assert aggregate([0.5, 1.0], [1, 3], "mean") == 0.75
    assert aggregate([], [], "pooled") is None
    for name, metric in METRICS.items():
        assert metric.name == name and metric.mode in ("open_loop", "closed_loop")
        assert metric.aggregate in ("pooled", "max", "sum", "mean")
    check = Check("c", "min_fde", "per_scenario", "<=", 2.0, "blocking", params=(("k", 6.0),))
    assert resolved_params(METRICS["min_fde"], check)["k"] == 6.0
