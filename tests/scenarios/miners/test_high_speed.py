"""high_speed: an ego at 20 m/s for 3 s, then stopped."""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners import high_speed
from tests.scenarios.miners._logs import ego_from_speeds, make_log, ns


def test_fast_stretch_is_one_window() -> None:
    log = make_log(ego_from_speeds(np.r_[np.full(30, 20.0), np.zeros(31)]))
    (window,) = high_speed.mine(log)
    # Frame 29 still moves at 20 m/s; frame 30's central difference sees half a step of motion (10 m/s).
    assert (window.t_start_ns, window.t_end_ns) == (ns(0.0), ns(2.9))
    assert window.track_ids == ()


def test_speeds_at_or_below_the_threshold_are_not_high_speed() -> None:
    assert high_speed.mine(make_log(ego_from_speeds(np.full(40, 14.99)))) == []


def test_every_fast_frame_counts() -> None:
    speeds = np.full(60, 10.0)
    speeds[10:12] = 22.0  # central differences: frames 10 and 12 see 16 m/s, frame 11 22 m/s
    speeds[30:50] = 16.0
    windows = high_speed.mine(make_log(ego_from_speeds(speeds)))
    # A 0.2 s burst is fast too; frame 30 and 50 see (10 + 16) / 2 = 13 m/s.
    assert [(w.t_start_ns, w.t_end_ns) for w in windows] == [(ns(1.0), ns(1.2)), (ns(3.1), ns(4.9))]
