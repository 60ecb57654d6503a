"""stationary: stops of at least 2 s, measured from the ego's poses."""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners import stationary
from tests.scenarios.miners._logs import ego_from_speeds, make_log, ns


def test_stop_after_a_drive_is_found() -> None:
    log = make_log(ego_from_speeds(np.r_[np.full(30, 20.0), np.zeros(31)]))
    (window,) = stationary.mine(log)
    assert (window.t_start_ns, window.t_end_ns) == (ns(3.1), ns(6.0))


def test_a_stop_must_cover_twenty_frames() -> None:
    # Zero speed for n steps: frames 21 .. 20 + n - 1 see < 0.5 m/s (frame 20 and 20 + n see 5 m/s).
    nineteen = np.r_[np.full(20, 10.0), np.zeros(20), np.full(20, 10.0)]
    assert stationary.mine(make_log(ego_from_speeds(nineteen))) == []
    twenty = np.r_[np.full(20, 10.0), np.zeros(21), np.full(20, 10.0)]
    (window,) = stationary.mine(make_log(ego_from_speeds(twenty)))
    assert (window.t_start_ns, window.t_end_ns) == (ns(2.1), ns(4.0))  # 20 frames of 0.1 s: 2 s


def test_a_fixed_virtual_ego_is_stationary_throughout() -> None:
    log = make_log(np.zeros((50, 4)))
    (window,) = stationary.mine(log)
    assert (window.t_start_ns, window.t_end_ns) == (ns(0.0), ns(4.9))
