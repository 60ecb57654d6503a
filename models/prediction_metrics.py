"""Trajectory-prediction metrics: ADE/FDE of the most probable mode, minADE_k/minFDE_k, miss rate.

Definitions (DESIGN.md, "Evaluation files"), per agent, over the steps of its ground-truth future:
- displacement at a step: the Euclidean distance [m] between a mode's point and the true point;
- ADE / FDE: mean / last displacement of the most probable mode (the first of equal highest probs);
- minADE_k / minFDE_k: the smallest ADE / FDE over the agent's k modes, each minimised on its own
  (nuScenes and Waymo; Argoverse 1 instead takes the ADE of the best-FDE mode);
- missed: minFDE_k > miss_threshold_m (2.0 m by default, strictly greater).
Reported values are means over agents (each agent weighs 1); `k` is the largest number of modes
given, `k_min` the smallest. Probabilities only rank modes: they need not sum to 1.

Step i (0-based) of a future lies (i + 1) * step_s after the present. Horizon metrics at h steps
use agents whose future has at least h steps, over their first h steps; with `step_s`, the horizon of
t seconds is the last step at or before t, floor(t / step_s).

Agents: every ground-truth agent must have a prediction (BadInput names the first one without), and
its modes must reach at least as far as its future (BadInput names it); longer modes are cut to the
future's length. Predicted agents absent from the ground truth are ignored and counted
(`n_ignored_predictions`): a predictor forecasts every tracked agent, the ground truth holds those
with a known future.

Vectorised over agents: futures are padded to (A, T, 2) and modes to (A, K, T, 2) with NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.models.eval_io import AgentFuture, AgentModes, future_agents, load_json, mode_agents
from andon.scenarios.records import CLASSES

MISS_THRESHOLD_M = 2.0


def _unique_ids(agent_ids: tuple[str, ...], what: str) -> None:
    seen: set[str] = set()
    for agent_id in agent_ids:
        if agent_id in seen:
            raise BadInput(f"{what}: duplicate agent_id {agent_id!r}; each agent must appear once")
        seen.add(agent_id)


@dataclass(frozen=True, slots=True, eq=False)
class FutureSet:
    """Ground-truth futures, padded.

    Attributes:
        agent_ids: one per agent, unique.
        future_m: (A, T, 2) float64 positions [m], NaN after each agent's n_steps.
        n_steps: (A,) int64 >= 1, the length of each future.
        class_index: (A,) int64 index into CLASSES, -1 where unknown; None when no agent has a class.
    """

    agent_ids: tuple[str, ...]
    future_m: np.ndarray
    n_steps: np.ndarray
    class_index: np.ndarray | None = None

    def __post_init__(self) -> None:
        _unique_ids(self.agent_ids, "ground truth")
        n = len(self.agent_ids)
        if self.future_m.ndim != 3 or self.future_m.shape[0] != n or self.future_m.shape[2] != 2:
            raise BadInput(f"ground truth: future_m must be ({n}, T, 2), got {self.future_m.shape}")
        if self.n_steps.shape != (n,) or (n and (self.n_steps.min() < 1
                                                 or self.n_steps.max() > self.future_m.shape[1])):
            raise BadInput("ground truth: n_steps must give each agent 1..T steps")
        valid = np.arange(self.future_m.shape[1])[None, :] < self.n_steps[:, None]
        if not np.isfinite(self.future_m[valid]).all():
            raise BadInput("ground truth: futures must be finite numbers")
        if self.class_index is not None and self.class_index.shape != (n,):
            raise BadInput(f"ground truth: class_index must have shape ({n},)")

    @classmethod
    def from_agents(cls, agents: Sequence[AgentFuture]) -> FutureSet:
        n_steps = np.array([len(a.future_m) for a in agents], dtype=np.int64)
        future = np.full((len(agents), int(n_steps.max(initial=0)), 2), np.nan)
        for i, agent in enumerate(agents):
            future[i, :n_steps[i]] = agent.future_m
        has_class = any(a.class_index is not None for a in agents)
        classes = np.array([-1 if a.class_index is None else a.class_index for a in agents], dtype=np.int64)
        return cls(tuple(a.agent_id for a in agents), future, n_steps, classes if has_class else None)

    @classmethod
    def from_json(cls, doc: Any, source: str = "ground truth") -> FutureSet:
        """Build from a parsed ground-truth document; BadInput names the source, the agent and the problem."""
        return cls.from_agents(future_agents(doc, source))

    @classmethod
    def from_file(cls, path: str | Path) -> FutureSet:
        return cls.from_json(load_json(path), source=str(path))


@dataclass(frozen=True, slots=True, eq=False)
class PredictionSet:
    """Predicted modes, padded.

    Attributes:
        agent_ids: one per agent, unique.
        modes_m: (A, K, T, 2) float64 positions [m], NaN beyond each agent's n_modes and n_steps.
        probs: (A, K) float64 mode probabilities (or any scores: only their order is used), -inf padding.
        n_modes: (A,) int64 >= 1.
        n_steps: (A,) int64 >= 1, the length of each agent's modes.
    """

    agent_ids: tuple[str, ...]
    modes_m: np.ndarray
    probs: np.ndarray
    n_modes: np.ndarray
    n_steps: np.ndarray

    def __post_init__(self) -> None:
        _unique_ids(self.agent_ids, "predictions")
        n = len(self.agent_ids)
        if self.modes_m.ndim != 4 or self.modes_m.shape[0] != n or self.modes_m.shape[3] != 2:
            raise BadInput(f"predictions: modes_m must be ({n}, K, T, 2), got {self.modes_m.shape}")
        _, k_max, t_max, _ = self.modes_m.shape
        if self.probs.shape != (n, k_max) or self.n_modes.shape != (n,) or self.n_steps.shape != (n,):
            raise BadInput(f"predictions: probs must be ({n}, {k_max}), n_modes and n_steps ({n},)")
        if n and (self.n_modes.min() < 1 or self.n_modes.max() > k_max or self.n_steps.min() < 1
                  or self.n_steps.max() > t_max):
            raise BadInput("predictions: each agent needs 1..K modes of 1..T steps")
        mode_ok = np.arange(k_max)[None, :] < self.n_modes[:, None]
        step_ok = np.arange(t_max)[None, :] < self.n_steps[:, None]
        if not np.isfinite(self.probs[mode_ok]).all() or not np.isfinite(
                self.modes_m[mode_ok[:, :, None] & step_ok[:, None, :]]).all():
            raise BadInput("predictions: modes and probs must be finite numbers")

    @classmethod
    def from_arrays(cls, agent_ids: Sequence[str], modes_m: Any, probs: Any) -> PredictionSet:
        """Build from (A, K, T, 2) modes and (A, K) probs, every agent with K modes of T steps."""
        modes = np.asarray(modes_m, dtype=np.float64)
        probs = np.asarray(probs, dtype=np.float64)
        if modes.ndim != 4:
            raise BadInput(f"predictions: modes_m must be (A, K, T, 2), got {modes.shape}")
        a, k, t, _ = modes.shape
        return cls(tuple(agent_ids), modes, probs, np.full(a, k, dtype=np.int64), np.full(a, t, dtype=np.int64))

    @classmethod
    def from_agents(cls, agents: Sequence[AgentModes]) -> PredictionSet:
        n_modes = np.array([a.modes_m.shape[0] for a in agents], dtype=np.int64)
        n_steps = np.array([a.modes_m.shape[1] for a in agents], dtype=np.int64)
        modes = np.full((len(agents), int(n_modes.max(initial=0)), int(n_steps.max(initial=0)), 2), np.nan)
        probs = np.full(modes.shape[:2], -np.inf)
        for i, agent in enumerate(agents):
            modes[i, :n_modes[i], :n_steps[i]] = agent.modes_m
            probs[i, :n_modes[i]] = agent.probs
        return cls(tuple(a.agent_id for a in agents), modes, probs, n_modes, n_steps)

    @classmethod
    def from_json(cls, doc: Any, source: str = "predictions") -> PredictionSet:
        """Build from a parsed predictions document; BadInput names the source, the agent and the problem."""
        return cls.from_agents(mode_agents(doc, source))

    @classmethod
    def from_file(cls, path: str | Path) -> PredictionSet:
        return cls.from_json(load_json(path), source=str(path))


def read_futures(path: str | Path) -> FutureSet:
    """Read and validate a prediction ground-truth file."""
    return FutureSet.from_file(path)


def read_predictions(path: str | Path) -> PredictionSet:
    """Read and validate a predictions file."""
    return PredictionSet.from_file(path)


def _aligned(gt: FutureSet, pred: PredictionSet) -> tuple[np.ndarray, int]:
    """Row of each ground-truth agent in `pred`, and how many predicted agents are ignored."""
    position = {agent_id: i for i, agent_id in enumerate(pred.agent_ids)}
    missing = [a for a in gt.agent_ids if a not in position]
    if missing:
        raise BadInput(f"no prediction for ground-truth agent {missing[0]!r} ({len(missing)} agent(s) without one); "
                       f"predict every agent of the ground truth")
    rows = np.array([position[a] for a in gt.agent_ids], dtype=np.int64)
    short = np.flatnonzero(pred.n_steps[rows] < gt.n_steps)
    if len(short):
        i = int(short[0])
        raise BadInput(f"agent {gt.agent_ids[i]!r}: modes have {int(pred.n_steps[rows[i]])} steps but the future has "
                       f"{int(gt.n_steps[i])}; predict at least as far as the ground truth "
                       f"({len(short)} agent(s) too short)")
    return rows, len(pred.agent_ids) - len(rows)


def _summary(disp: np.ndarray, valid_mode: np.ndarray, best: np.ndarray, upto: np.ndarray,
             miss_threshold_m: float) -> dict[str, Any]:
    """Metrics of agents' first `upto` steps; disp (A, K, T), valid_mode (A, K), best (A,), upto (A,)."""
    n = len(upto)
    if n == 0:
        return {"n_agents": 0, "ADE": None, "FDE": None, "minADE_k": None, "minFDE_k": None, "miss_rate": None}
    in_horizon = np.arange(disp.shape[2])[None, None, :] < upto[:, None, None]
    ade = np.where(in_horizon, disp, 0.0).sum(axis=2) / upto[:, None]  # (A, K)
    fde = np.take_along_axis(disp, np.broadcast_to((upto - 1)[:, None, None], (n, disp.shape[1], 1)), axis=2)[..., 0]
    ade = np.where(valid_mode, ade, np.inf)
    fde = np.where(valid_mode, fde, np.inf)
    rows = np.arange(n)
    min_fde = fde.min(axis=1)
    return {"n_agents": n,
            "ADE": float(ade[rows, best].mean()), "FDE": float(fde[rows, best].mean()),
            "minADE_k": float(ade.min(axis=1).mean()), "minFDE_k": float(min_fde.mean()),
            "miss_rate": float(np.mean(min_fde > miss_threshold_m))}


def _horizons(max_steps: int, step_s: float | None, horizons_s: Sequence[float] | None,
              horizon_steps: Sequence[int] | None) -> list[tuple[float | None, int]]:
    """(horizon [s] or None, steps) pairs to report."""
    if horizon_steps is not None:
        steps = [int(h) for h in horizon_steps]
        if any(h < 1 for h in steps):
            raise BadInput(f"horizon steps must be >= 1, got {list(horizon_steps)}")
        return [(None if step_s is None else h * step_s, h) for h in steps]
    if horizons_s is not None and step_s is None:
        raise BadInput("horizons in seconds need --step-s, the time between trajectory points")
    if step_s is None:
        return []
    if not (step_s > 0 and math.isfinite(step_s)):
        raise BadInput(f"step_s must be a positive number of seconds, got {step_s}")
    # 1e-9 absorbs float error so 3 steps of 0.1 s reach 0.3 s.
    seconds = list(horizons_s) if horizons_s is not None else list(range(1, int(max_steps * step_s + 1e-9) + 1))
    pairs = []
    for s in seconds:
        h = int(math.floor(s / step_s + 1e-9))
        if h < 1:
            raise BadInput(f"horizon {s} s is shorter than one step of {step_s} s")
        pairs.append((float(s), h))
    return pairs


def evaluate_prediction(gt: FutureSet | dict, pred: PredictionSet | dict, step_s: float | None = None,
                        miss_threshold_m: float = MISS_THRESHOLD_M, horizons_s: Sequence[float] | None = None,
                        horizon_steps: Sequence[int] | None = None) -> dict[str, Any]:
    """Prediction metrics of `pred` against `gt` (the module docstring gives the definitions).

    Args:
        gt: ground-truth futures, or the parsed ground-truth document.
        pred: predicted modes, or the parsed predictions document.
        step_s: time between trajectory points [s]; adds horizons at 1 s, 2 s, ... (or `horizons_s`).
        miss_threshold_m: an agent is missed when its minFDE_k exceeds this.
        horizons_s: horizons in seconds (needs step_s).
        horizon_steps: horizons in steps (overrides horizons_s).

    Returns:
        {"ADE", "FDE", "minADE_k", "minFDE_k", "miss_rate": float, "k": int, "k_min": int, "n_agents": int,
        "miss_threshold_m", "step_s", "n_ignored_predictions": int,
        "horizons": [{"horizon_s", "steps", "n_agents", "ADE", ...}], "per_class": {class: {...}}}.

    Raises:
        BadInput: no agents, a ground-truth agent without a prediction, modes shorter than the future.
    """
    gt = gt if isinstance(gt, FutureSet) else FutureSet.from_json(gt)
    pred = pred if isinstance(pred, PredictionSet) else PredictionSet.from_json(pred)
    if not (miss_threshold_m > 0 and math.isfinite(miss_threshold_m)):
        raise BadInput(f"miss threshold must be a positive number of metres, got {miss_threshold_m}")
    if not gt.agent_ids:
        raise BadInput("the ground truth holds no agents; nothing to evaluate")
    rows, n_ignored = _aligned(gt, pred)
    t_max = gt.future_m.shape[1]
    modes = pred.modes_m[rows, :, :t_max]  # cut modes to the ground truth's length
    delta = modes - gt.future_m[:, None]
    disp = np.sqrt(delta[..., 0] * delta[..., 0] + delta[..., 1] * delta[..., 1])  # (A, K, T) [m]
    n_modes = pred.n_modes[rows]
    valid_mode = np.arange(modes.shape[1])[None, :] < n_modes[:, None]
    best = np.argmax(np.where(valid_mode, pred.probs[rows], -np.inf), axis=1)  # first of equal maxima
    result: dict[str, Any] = _summary(disp, valid_mode, best, gt.n_steps, miss_threshold_m)
    result.update(k=int(n_modes.max()), k_min=int(n_modes.min()), miss_threshold_m=float(miss_threshold_m),
                  step_s=step_s, n_ignored_predictions=n_ignored)
    horizons = []
    for seconds, h in _horizons(int(gt.n_steps.max()), step_s, horizons_s, horizon_steps):
        reach = np.flatnonzero(gt.n_steps >= h)
        horizons.append({"horizon_s": seconds, "steps": h,
                         **_summary(disp[reach], valid_mode[reach], best[reach], np.full(len(reach), h),
                                    miss_threshold_m)})
    result["horizons"] = horizons
    per_class = {}
    if gt.class_index is not None:
        for code, name in enumerate(CLASSES):
            members = np.flatnonzero(gt.class_index == code)
            if len(members):
                per_class[name] = _summary(disp[members], valid_mode[members], best[members],
                                           gt.n_steps[members], miss_threshold_m)
    result["per_class"] = per_class
    return result
