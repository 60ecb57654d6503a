"""dense_traffic: at least 8 vehicles within 30 m of the ego."""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners import dense_traffic
from tests.scenarios.miners._logs import agent, make_log, ns

N = 50
POSES = np.zeros((N, 4))


def _vehicles(ranges_m: list[float], present: slice = slice(None)) -> dict:
    agents = {}
    for k, r in enumerate(ranges_m):
        xy = np.full((N, 2), np.nan)
        xy[present] = [r * np.cos(k), r * np.sin(k)]
        agents[f"v{k}"] = agent("vehicle", xy, float(k))
    return agents


def test_nine_vehicles_within_thirty_metres_for_two_seconds() -> None:
    agents = _vehicles([10.0, 12, 15, 18, 20, 22, 25, 28])  # 8 throughout ...
    agents |= {f"late{k}": v for k, v in _vehicles([29.0], slice(0, 21)).items()}  # ... 9 for the first 2 s
    agents |= {"ped": agent("pedestrian", np.tile([5.0, 0.0], (N, 1)))}
    (window,) = dense_traffic.mine(make_log(POSES, agents))
    assert (window.t_start_ns, window.t_end_ns) == (ns(0.0), ns(4.9))  # 8 is enough
    assert len(window.track_ids) == 9 and "ped" not in window.track_ids


def test_seven_near_and_far_ones_are_not_dense() -> None:
    agents = _vehicles([10.0, 12, 15, 18, 20, 22, 25, 35, 40, 45])
    assert dense_traffic.mine(make_log(POSES, agents)) == []


def test_one_missing_label_does_not_split_the_jam() -> None:
    agents = _vehicles([10.0, 12, 15, 18, 20, 22, 25, 28])
    agents["v0"][1][25] = np.nan  # the label of one vehicle is missing in one frame
    (window,) = dense_traffic.mine(make_log(POSES, agents))
    assert (window.t_start_ns, window.t_end_ns) == (ns(0.0), ns(4.9))
