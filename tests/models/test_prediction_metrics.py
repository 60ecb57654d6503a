"""Prediction metrics: a hand-worked golden case, edge cases, and a loop reference on random agents."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from andon.errors import BadInput
from andon.models.prediction_metrics import FutureSet, PredictionSet, evaluate_prediction

GOLDEN = json.loads((Path(__file__).parent / "golden" / "prediction_hand_case.json").read_text())
KEYS = ("ADE", "FDE", "minADE_k", "minFDE_k", "miss_rate")


def test_golden_hand_case() -> None:
    # The derivation is in the golden file's "about": a1's most probable mode ends 3 m off (FDE 3) while
    # its other mode stays 1 m off (minFDE 1); a2 is 3 then 4 m off with one mode, so it is missed.
    result = evaluate_prediction(GOLDEN["gt"], GOLDEN["pred"], step_s=GOLDEN["step_s"])
    expected = GOLDEN["expected"]
    for key in (*KEYS, "k", "k_min", "n_agents", "n_ignored_predictions"):
        assert result[key] == pytest.approx(expected[key], abs=1e-12), key
    assert len(result["horizons"]) == len(expected["horizons"])
    for got, want in zip(result["horizons"], expected["horizons"], strict=True):
        assert got == pytest.approx(want, abs=1e-12)
    assert result["per_class"].keys() == expected["per_class"].keys()
    for cls, want in expected["per_class"].items():
        assert result["per_class"][cls] == pytest.approx(want, abs=1e-12), cls


def _one(future: list, modes: list, probs: list) -> dict:
    return evaluate_prediction({"agents": [{"agent_id": "a", "future": future}]},
                               {"agents": [{"agent_id": "a", "modes": modes, "probs": probs}]})


def test_miss_is_strictly_beyond_the_threshold() -> None:
    assert _one([[0, 0]], [[[2, 0]]], [1.0])["miss_rate"] == 0.0  # exactly 2 m: not a miss
    assert _one([[0, 0]], [[[2.001, 0]]], [1.0])["miss_rate"] == 1.0
    assert evaluate_prediction({"agents": [{"agent_id": "a", "future": [[0, 0]]}]},
                               {"agents": [{"agent_id": "a", "modes": [[[1, 0]]], "probs": [1]}]},
                               miss_threshold_m=0.5)["miss_rate"] == 1.0


def test_tied_probabilities_pick_the_first_mode_and_probs_need_not_sum_to_one() -> None:
    result = _one([[0, 0], [0, 0]], [[[0, 1], [0, 1]], [[0, 2], [0, 2]]], [5.0, 5.0])
    assert (result["ADE"], result["FDE"], result["minADE_k"]) == (1.0, 1.0, 1.0)
    result = _one([[0, 0], [0, 0]], [[[0, 1], [0, 1]], [[0, 2], [0, 2]]], [-3.0, 7.0])
    assert (result["ADE"], result["FDE"], result["minFDE_k"], result["k"]) == (2.0, 2.0, 1.0, 2)


def test_min_ade_and_min_fde_are_minimised_separately() -> None:
    # Mode 0: 0 m then 3 m (ADE 1.5, FDE 3); mode 1: 2 m, 2 m (ADE 2, FDE 2): minADE 1.5 from mode 0,
    # minFDE 2 from mode 1.
    result = _one([[0, 0], [0, 0]], [[[0, 0], [3, 0]], [[2, 0], [2, 0]]], [0.5, 0.5])
    assert (result["minADE_k"], result["minFDE_k"]) == (1.5, 2.0)


def test_horizons_by_seconds_and_steps() -> None:
    gt = {"agents": [{"agent_id": "a", "future": [[i, 0] for i in range(1, 31)]}]}
    pred = {"agents": [{"agent_id": "a", "modes": [[[i, 1] for i in range(1, 31)]], "probs": [1]}]}
    result = evaluate_prediction(gt, pred, step_s=0.1)
    assert [(h["horizon_s"], h["steps"]) for h in result["horizons"]] == [(1.0, 10), (2.0, 20), (3.0, 30)]
    result = evaluate_prediction(gt, pred, step_s=0.3, horizons_s=[1.0])
    assert result["horizons"][0]["steps"] == 3  # the last step at or before 1 s: 0.9 s
    result = evaluate_prediction(gt, pred, horizon_steps=[5, 40])
    assert result["horizons"][1] == {"horizon_s": None, "steps": 40, "n_agents": 0, "ADE": None, "FDE": None,
                                     "minADE_k": None, "minFDE_k": None, "miss_rate": None}
    assert evaluate_prediction(gt, pred)["horizons"] == []
    with pytest.raises(BadInput, match="need --step-s"):
        evaluate_prediction(gt, pred, horizons_s=[1.0])


@pytest.mark.parametrize(("gt", "pred", "message"), [
    ({"agents": [{"agent_id": "a", "future": [[0, 0]]}, {"agent_id": "b", "future": [[0, 0]]}]},
     {"agents": [{"agent_id": "a", "modes": [[[0, 0]]], "probs": [1]}]}, "no prediction for ground-truth agent 'b'"),
    ({"agents": [{"agent_id": "a", "future": [[0, 0], [1, 0], [2, 0]]}]},
     {"agents": [{"agent_id": "a", "modes": [[[0, 0], [1, 0]]], "probs": [1]}]},
     "agent 'a': modes have 2 steps but the future has 3"),
    ({"agents": []}, {"agents": []}, "no agents"),
])
def test_agents_must_line_up(gt: dict, pred: dict, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        evaluate_prediction(gt, pred)


def _reference(gt: dict, pred: dict, miss_threshold_m: float = 2.0) -> dict[str, float]:
    """Plain loops: per agent, per mode, per step."""
    modes_by_agent = {a["agent_id"]: a for a in pred["agents"]}
    sums = dict.fromkeys(KEYS, 0.0)
    for agent in gt["agents"]:
        future = agent["future"]
        entry = modes_by_agent[agent["agent_id"]]
        ades, fdes = [], []
        for mode in entry["modes"]:
            dists = [math.hypot(mode[t][0] - future[t][0], mode[t][1] - future[t][1]) for t in range(len(future))]
            ades.append(sum(dists) / len(dists))
            fdes.append(dists[-1])
        best = max(range(len(entry["probs"])), key=lambda k: (entry["probs"][k], -k))
        sums["ADE"] += ades[best]
        sums["FDE"] += fdes[best]
        sums["minADE_k"] += min(ades)
        sums["minFDE_k"] += min(fdes)
        sums["miss_rate"] += 1.0 if min(fdes) > miss_threshold_m else 0.0
    return {k: v / len(gt["agents"]) for k, v in sums.items()}


@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_loop_reference_on_random_agents(seed: int) -> None:
    rng = random.Random(seed)
    gt_agents, pred_agents = [], []
    for i in range(60):
        steps = rng.randint(1, 12)
        future = [[rng.uniform(-20, 20), rng.uniform(-20, 20)] for _ in range(steps)]
        k = rng.randint(1, 6)
        extra = rng.randint(0, 3)  # modes may reach beyond the future: cut off
        modes = [[[p[0] + rng.gauss(0, 2), p[1] + rng.gauss(0, 2)] for p in future]
                 + [[0.0, 0.0]] * extra for _ in range(k)]
        gt_agents.append({"agent_id": f"a{i}", "future": future})
        pred_agents.append({"agent_id": f"a{i}", "modes": modes, "probs": [rng.random() for _ in range(k)]})
    rng.shuffle(pred_agents)
    gt, pred = {"agents": gt_agents}, {"agents": pred_agents}
    result = evaluate_prediction(gt, pred)
    for key, value in _reference(gt, pred).items():
        assert result[key] == pytest.approx(value, abs=1e-9), key


def test_sets_from_arrays() -> None:
    future = np.zeros((2, 3, 2))
    modes = np.zeros((2, 4, 3, 2))
    modes[1, :, :, 0] = 3.0
    gt = FutureSet(("a", "b"), future, np.array([3, 2]))
    pred = PredictionSet.from_arrays(["b", "a"], modes, np.ones((2, 4)))
    result = evaluate_prediction(gt, pred)
    assert result["n_agents"] == 2 and result["k"] == 4
    assert result["minFDE_k"] == pytest.approx(1.5)  # 'b' holds the first row of modes (0 m), 'a' the second (3 m)
    with pytest.raises(BadInput, match="duplicate agent_id 'a'"):
        FutureSet(("a", "a"), future, np.array([3, 2]))
    with pytest.raises(BadInput, match="finite"):
        FutureSet(("a", "b"), np.full((2, 3, 2), np.nan), np.array([3, 2]))
