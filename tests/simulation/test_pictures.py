"""BEV pictures of replayed moments: PNG, byte-identical for the same inputs, fast, headless."""

from __future__ import annotations

import time

import numpy as np
import pytest

from andon.errors import BadInput
from andon.simulation.pictures import boxes_to_ego, render_moment
from tests.simulation._traces import make_trace

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _points(n: int = 20_000) -> np.ndarray:
    return np.random.default_rng(0).uniform(-60, 60, size=(n, 4)).astype(np.float32)


def test_the_same_moment_gives_the_same_bytes(tmp_path):
    trace = make_trace()
    a = render_moment(trace, 2, _points(), tmp_path / "a.png", "ttc: TTC 0.8 s to vehicle 7", ["7"])
    b = render_moment(trace, 2, _points(), tmp_path / "sub" / "b.png", "ttc: TTC 0.8 s to vehicle 7", ["7"])
    assert a.read_bytes()[:8] == PNG_MAGIC
    assert a.read_bytes() == b.read_bytes()
    c = render_moment(trace, 3, _points(), tmp_path / "c.png", "ttc: TTC 0.8 s to vehicle 7", ["7"])
    assert c.read_bytes() != a.read_bytes()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "b.png", "c.png", "sub"]  # no temp left


def test_a_picture_without_points_predictions_or_plan(tmp_path):
    trace = make_trace()
    frame = trace.frames[0]
    bare = type(frame)(**{**{name: getattr(frame, name) for name in frame.__slots__},
                          "pred_modes_m": np.zeros((0, 0, 0, 2)), "pred_probs": np.zeros((0, 0)),
                          "plan_ok": False, "plan_xy_m": np.zeros((0, 2)), "plan_error": "boom"})
    trace = type(trace)(**{**{name: getattr(trace, name) for name in trace.__slots__}, "frames": (bare,)})
    out = render_moment(trace, 0, None, tmp_path / "bare.png", "planner_failure: boom")
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_a_frame_outside_the_trace_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="frame 9"):
        render_moment(make_trace(), 9, None, tmp_path / "x.png", "x")


def test_boxes_move_into_the_ego_frame():
    boxes = np.array([[11.0, 1.0, 0.5, 4.0, 2.0, 1.5, np.pi / 2]])
    local = boxes_to_ego(boxes, np.array([10.0, 1.0, 0.0, np.pi / 2]))
    np.testing.assert_allclose(local[0, :2], [0.0, -1.0], atol=1e-12)
    assert local[0, 6] == pytest.approx(0.0)


def test_a_picture_takes_under_a_third_of_a_second(tmp_path):
    trace, points = make_trace(), _points(60_000)
    render_moment(trace, 1, points, tmp_path / "warm.png", "warm up")
    times = []
    for k in range(3):
        started = time.perf_counter()
        render_moment(trace, k, points, tmp_path / f"{k}.png", "timed", ["7"])
        times.append(time.perf_counter() - started)
    assert min(times) < 0.3
