"""vru_near: pedestrians and cyclists within 10 m of the ego."""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners import vru_near
from tests.scenarios.miners._logs import agent, make_log, ns

N = 81  # 8 s
POSES = np.zeros((N, 4))


def test_cyclist_passing_at_five_metres() -> None:
    x = np.linspace(-20.0, 20.0, N)  # 5 m/s
    log = make_log(POSES, {"bike": agent("cyclist", np.column_stack([x, np.full(N, 5.0)])),
                           "car": agent("vehicle", np.column_stack([x, np.full(N, 1.0)]))})
    (window,) = vru_near.mine(log)
    # Within 10 m while |x| <= sqrt(100 - 25) = 8.66 m: x from -8.5 to 8.5 m, frames 23..57.
    assert (window.t_start_ns, window.t_end_ns) == (ns(2.3), ns(5.7))
    assert window.track_ids == ("bike",)


def test_far_vrus_vehicles_and_one_frame_blips_do_not_count() -> None:
    far = np.tile([30.0, 0.0], (N, 1))
    blip = np.full((N, 2), np.nan)
    blip[40] = [3.0, 0.0]  # a one-frame class swap next to the ego
    near_car = np.tile([3.0, 0.0], (N, 1))
    log = make_log(POSES, {"far": agent("pedestrian", far), "blip": agent("pedestrian", blip),
                           "car": agent("vehicle", near_car)})
    assert vru_near.mine(log) == []


def test_an_encounter_cut_short_by_the_log_end_is_kept() -> None:
    xy = np.full((N, 2), np.nan)
    xy[-1] = [3.0, 0.0]  # the pedestrian is near in the log's last frame only: the log cut it short
    (window,) = vru_near.mine(make_log(POSES, {"late": agent("pedestrian", xy)}))
    assert (window.t_start_ns, window.t_end_ns, window.track_ids) == (ns(8.0), ns(8.0), ("late",))
