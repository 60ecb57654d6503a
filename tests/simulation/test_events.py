"""Disengagement checks on hand-made frames: oriented-box overlap, collision, TTC, planner failure, perception
miss, and merging."""

from __future__ import annotations

import numpy as np
import pytest

from andon.simulation.box_geometry import rectangles_overlap, support_extents
from andon.simulation.events import EventPart, FrameArrays, detect_events, merge_parts, pad
from andon.simulation.replay import ReplayConfig
from andon.simulation.trace import CLOSED_LOOP, COLLISION, OPEN_LOOP, PERCEPTION_MISS, PLANNER_FAILURE, TTC
from tests.simulation.replay_logs import PERIOD_NS, T0_NS, frame_trace

CONFIG = ReplayConfig()
EGO_HALF = np.array([2.3, 0.95])


def car(x: float, y: float = 0.0, yaw: float = 0.0, length: float = 4.5, width: float = 1.9) -> list[float]:
    return [x, y, 0.8, length, width, 1.6, yaw]


# ----- geometry -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("centre", "yaw", "expected"), [
    ((4.0, 0.0), 0.0, True),  # nose to tail, overlapping by 0.5 m
    ((4.6, 0.0), 0.0, True),  # touching counts
    ((4.7, 0.0), 0.0, False),
    ((0.0, 1.95), 0.0, False),  # side by side, 0.05 m apart
    ((3.2, 2.2), np.pi / 4, True),  # a diagonal box reaching the ego's front-left corner region
    ((3.9, 2.9), np.pi / 4, False),
])
def test_rectangles_overlap_matches_hand_geometry(centre: tuple[float, float], yaw: float, expected: bool) -> None:
    half_b = np.array([2.3, 0.95])
    got = rectangles_overlap(np.zeros(2), np.float64(0.0), EGO_HALF, np.array(centre), np.float64(yaw), half_b)
    assert bool(got) is expected
    # Symmetric in its arguments.
    assert bool(rectangles_overlap(np.array(centre), np.float64(yaw), half_b, np.zeros(2), np.float64(0.0),
                                   EGO_HALF)) is expected


def test_rectangles_overlap_agrees_with_a_dense_point_test() -> None:
    rng = np.random.default_rng(4)
    n = 4000
    a_c, b_c = rng.uniform(-3, 3, (n, 2)), rng.uniform(-3, 3, (n, 2))
    a_y, b_y = rng.uniform(-np.pi, np.pi, n), rng.uniform(-np.pi, np.pi, n)
    a_h, b_h = rng.uniform(0.2, 2.5, (n, 2)), rng.uniform(0.2, 2.5, (n, 2))
    got = rectangles_overlap(a_c, a_y, a_h, b_c, b_y, b_h)
    # Reference: sample B's footprint densely and test each sample inside A (misses only thin slivers).
    u = np.linspace(-1, 1, 41)
    grid = np.stack(np.meshgrid(u, u), -1).reshape(-1, 2)  # (G, 2)
    local = grid[None] * b_h[:, None]
    cb, sb = np.cos(b_y)[:, None], np.sin(b_y)[:, None]
    world = np.stack([b_c[:, :1] + cb * local[..., 0] - sb * local[..., 1],
                      b_c[:, 1:] + sb * local[..., 0] + cb * local[..., 1]], -1)
    ca, sa = np.cos(a_y)[:, None], np.sin(a_y)[:, None]
    d = world - a_c[:, None]
    inside = (np.abs(ca * d[..., 0] + sa * d[..., 1]) <= a_h[:, :1]) & (np.abs(ca * d[..., 1] - sa * d[..., 0]) <= a_h[:, 1:])
    sampled = inside.any(axis=1)
    assert not (sampled & ~got).any()  # every sampled overlap is found
    assert (got & ~sampled).sum() <= 0.01 * n  # what is found beyond the samples are slivers between them


def test_rectangles_overlap_margin_and_nan() -> None:
    assert not rectangles_overlap(np.zeros(2), np.float64(0), EGO_HALF, np.array([4.8, 0.0]), np.float64(0), EGO_HALF)
    assert rectangles_overlap(np.zeros(2), np.float64(0), EGO_HALF, np.array([4.8, 0.0]), np.float64(0), EGO_HALF,
                              margin_m=0.3)
    assert not rectangles_overlap(np.zeros(2), np.float64(0), EGO_HALF, np.array([np.nan, 0.0]), np.float64(0),
                                  EGO_HALF)


def test_support_extents_of_a_turned_box() -> None:
    along, across = support_extents(np.array([2.0, 1.0]), np.float64(np.pi / 2), np.float64(0.0))
    assert along == pytest.approx(1.0) and across == pytest.approx(2.0)


def test_pad_stacks_ragged_rows() -> None:
    out = pad([np.ones((2, 2)), np.zeros((0, 2)), np.full((1, 2), 3.0)], (2,), np.nan)
    assert out.shape == (3, 2, 2) and np.isnan(out[1]).all() and out[2, 0, 0] == 3.0 and np.isnan(out[2, 1, 0])
    names = pad([np.array(["a", "b"]), np.array([], dtype=str)], (), "", dtype=object)
    assert names.tolist() == [["a", "b"], ["", ""]]


# ----- checks -------------------------------------------------------------------------------------
def test_collision_only_in_closed_loop_and_counts_distinct_agents() -> None:
    frames = [frame_trace(i, ego_xy=(i * 1.0, 0.0), gt_boxes=[car(6.0), car(0.0, 1.5)], gt_ids=["a", "b"],
                          det_xy=[[6.0, 0.0], [0.0, 1.5]]) for i in range(4)]
    events, collisions = detect_events("s", frames, CLOSED_LOOP, CONFIG)
    # b overlaps from frame 0 (side by side 1.5 m apart), a from frame 2 (centres 4.0 m apart).
    assert collisions == 2
    assert len(events) == 1 and events[0].cause == COLLISION and events[0].track_ids == ("a", "b")
    assert events[0].frame_index == 0 and events[0].time_ns == T0_NS
    open_events, open_collisions = detect_events("s", frames, OPEN_LOOP, CONFIG)
    assert open_collisions == 0 and all(e.cause != COLLISION for e in open_events)


def test_ttc_fires_for_a_standing_car_ahead_within_the_threshold() -> None:
    # Ego at 10 m/s; a standing car whose rear is 7.0 m ahead of the ego's front: contact (with the 0.3 m
    # margin) after (7.0 - 0.3) / 10 = 0.67 s, i.e. at the plan's 0.7 s state.
    arrays = FrameArrays.of([frame_trace(0, gt_boxes=[car(2.3 + 7.0 + 2.25)], gt_ids=["a"])])
    from andon.simulation.events import ttc_parts

    (part,) = ttc_parts(arrays, CONFIG)
    assert part.cause == TTC and part.track_ids == ("a",) and "TTC 0.7 s" in part.detail
    far = FrameArrays.of([frame_trace(0, gt_boxes=[car(30.0)], gt_ids=["a"])])
    assert ttc_parts(far, CONFIG) == []


@pytest.mark.parametrize(("box", "speed", "velocity"), [
    (car(-8.0), 10.0, [15.0, 0.0]),  # closing in from behind: the follower's to avoid
    (car(8.0), 0.0, [0.0, 0.0]),  # the ego stands: it causes nothing
    (car(8.0, 3.75), 10.0, [0.0, 0.0]),  # the next lane
    (car(20.0, -6.0, np.pi / 2), 10.0, [0.0, 2.0]),  # crossing, but far behind the ego's path by then
])
def test_ttc_ignores(box: list[float], speed: float, velocity: list[float]) -> None:
    from andon.simulation.events import ttc_parts

    frame = frame_trace(0, speed_mps=speed, gt_boxes=[box], gt_ids=["a"], gt_velocities=[velocity])
    assert ttc_parts(FrameArrays.of([frame]), CONFIG) == []


def test_ttc_uses_the_agents_constant_velocity_future() -> None:
    from andon.simulation.events import ttc_parts

    # A pedestrian 1.6 m right of the ego's path edge, 9 m ahead, stepping toward it at 1.5 m/s: meets the plan.
    walker = [9.0 + 2.3, -0.95 - 1.6, 0.9, 0.6, 0.6, 1.75, np.pi / 2]
    frame = frame_trace(0, gt_boxes=[walker], gt_ids=["p"], gt_classes=["pedestrian"], gt_velocities=[[0.0, 1.5]])
    (part,) = ttc_parts(FrameArrays.of([frame]), CONFIG)
    assert part.track_ids == ("p",)
    standing = frame_trace(0, gt_boxes=[walker], gt_ids=["p"], gt_classes=["pedestrian"], gt_velocities=[[np.nan] * 2])
    assert ttc_parts(FrameArrays.of([standing]), CONFIG) == []  # NaN velocity: standing, off the path


def test_planner_failure_is_a_disengagement() -> None:
    frames = [frame_trace(i, plan_ok=i != 2, plan_error="RuntimeError: boom" if i == 2 else "") for i in range(5)]
    (event,) = detect_events("s", frames, CLOSED_LOOP, CONFIG)[0]
    assert event.cause == PLANNER_FAILURE and event.frame_index == 2 and "boom" in event.detail


def _miss_frames(n: int, detected: set[int], y: float = 0.0, x: float = 12.0, cls: str = "pedestrian") -> list:
    box = [x, y, 0.9, 0.6, 0.6, 1.75, 0.0]
    return [frame_trace(i, speed_mps=8.0, gt_boxes=[box], gt_ids=["p"], gt_classes=[cls],
                        det_xy=[[x + 0.5, y]] if i in detected else None, plan_xy=np.zeros((51, 2)))
            for i in range(n)]


def test_perception_miss_after_the_threshold_once() -> None:
    # Ego at 8 m/s: stopping distance 64 / 8 + 5 = 13 m; the pedestrian's near side is 12 - 2.3 - 0.3 = 9.4 m
    # ahead. Unseen for frames 0..9: 0.5 s is reached at frame 5, exceeded at frame 6.
    from andon.simulation.events import perception_miss_parts

    parts = perception_miss_parts(FrameArrays.of(_miss_frames(10, detected=set())), CONFIG)
    assert [(p.frame_index, p.cause, p.track_ids) for p in parts] == [(6, PERCEPTION_MISS, ("p",))]
    # Seen at frame 4: the run restarts at 5 and first exceeds 0.5 s at frame 11.
    parts = perception_miss_parts(FrameArrays.of(_miss_frames(14, detected={4})), CONFIG)
    assert [p.frame_index for p in parts] == [11]
    # A confirmed track within the match distance perceives it as well as a detection does.
    tracked = [frame_trace(i, speed_mps=8.0, gt_boxes=[[12.0, 0, 0.9, 0.6, 0.6, 1.75, 0]], gt_ids=["p"],
                           gt_classes=["pedestrian"], track_xy=[[13.0, 0.5]]) for i in range(10)]
    assert perception_miss_parts(FrameArrays.of(tracked), CONFIG) == []


@pytest.mark.parametrize(("y", "x", "cls"), [(4.0, 12.0, "pedestrian"), (0.0, 30.0, "pedestrian"),
                                             (0.0, -5.0, "vehicle"), (0.0, 12.0, "static")])
def test_perception_miss_ignores_what_is_outside_the_stopping_corridor(y: float, x: float, cls: str) -> None:
    from andon.simulation.events import perception_miss_parts

    assert perception_miss_parts(FrameArrays.of(_miss_frames(10, set(), y=y, x=x, cls=cls)), CONFIG) == []


# ----- merging ------------------------------------------------------------------------------------
def _part(seconds: float, cause: str, *ids: str) -> EventPart:
    return EventPart(int(seconds * 10), T0_NS + int(round(seconds * 1e9)), cause, ids, f"{cause} at {seconds}")


def test_merge_chains_parts_within_the_window_and_takes_the_most_severe_cause() -> None:
    parts = [_part(0.0, PERCEPTION_MISS, "p"), _part(1.0, TTC, "p"), _part(2.5, COLLISION, "p", "q"),
             _part(5.4, TTC, "z"),  # 2.9 s after the last part: still the same event
             _part(9.0, PLANNER_FAILURE)]  # 3.6 s later: a new one
    first, second = merge_parts("s", parts, 3.0)
    assert first.cause == COLLISION and first.causes == (COLLISION, TTC, PERCEPTION_MISS)
    assert first.track_ids == ("p", "q", "z") and first.time_ns == T0_NS and first.frame_index == 0
    assert first.detail.startswith("collision at 2.5") and "+3 more" in first.detail
    assert second.cause == PLANNER_FAILURE and second.causes == (PLANNER_FAILURE,) and second.track_ids == ()
    assert merge_parts("s", [], 3.0) == ()


def test_events_round_trip_through_json() -> None:
    from andon.simulation.trace import Event

    (event,) = merge_parts("s", [_part(0.0, TTC, "a"), _part(0.5, COLLISION, "b")], 3.0)
    assert Event.from_dict(event.to_dict()) == event


def test_every_frame_period_works() -> None:
    frames = [frame_trace(i, gt_boxes=[car(6.0)], gt_ids=["a"], period_ns=2 * PERIOD_NS) for i in range(3)]
    events, _ = detect_events("s", frames, CLOSED_LOOP, CONFIG)
    assert len(events) == 1
