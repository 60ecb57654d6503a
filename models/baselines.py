"""The constant-velocity predictor: the last displacement, extrapolated. The classic baseline.

Schöller et al. (2020, "What the constant velocity model can teach us about pedestrian motion
prediction") showed it beats many learned predictors on ETH/UCY, so a learned predictor must beat it
before it is worth anything. Three entry points, one rule (step k of the future is t0 + k * d, where d
is the displacement from the step before t0 to t0, or zero when that step is unobserved):

- `constant_velocity(history, horizon_steps)`: PredictionDataModule batches (agent frame), numpy or torch;
- `constant_velocity_xy(history_xy, horizon_steps)`: raw positions with NaN gaps (e.g. ETH/UCY tables);
- `constant_velocity_rollout(xy_m, velocity_mps, horizon_s, step_s)`: tracked agents in the simulator
  (positions and velocities from the tracker), positions at 0, step, 2 step, ... horizon.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from andon.errors import BadInput

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def constant_velocity(history: Array, horizon_steps: int) -> Array:
    """Constant-velocity futures of a batch in the loaders' layout.

    Args:
        history: (B, H, 4) x, y, dx, dy per step (t0 last), as PredictionDataModule batches hold them:
            dx, dy at t0 is the displacement into t0, zero where the step before is unobserved.
        horizon_steps: F, the number of future steps.

    Returns:
        (B, F, 2) positions in the history's frame, of the history's type (numpy or torch) and dtype.

    Raises:
        BadInput: history is not (B, H, 4), or horizon_steps < 1.
    """
    if history.ndim != 3 or history.shape[-1] != 4:
        raise BadInput(f"history must be (B, H, 4) x, y, dx, dy per step, got {tuple(history.shape)}")
    _check_steps(horizon_steps)
    origin, step = history[:, -1, None, :2], history[:, -1, None, 2:]
    if isinstance(history, torch.Tensor):
        k = torch.arange(1, horizon_steps + 1, dtype=history.dtype, device=history.device)
    else:
        k = np.arange(1, horizon_steps + 1, dtype=history.dtype)
    return origin + k[None, :, None] * step


def constant_velocity_xy(history_xy: np.ndarray, horizon_steps: int) -> np.ndarray:
    """Constant-velocity futures from raw positions (NaN where unobserved).

    Args:
        history_xy: (B, H, 2) positions [m] at equal steps, t0 last and observed.
        horizon_steps: F.

    Returns:
        (B, F, 2) float64 positions [m]; agents unobserved at the step before t0 stand still.

    Raises:
        BadInput: a bad shape, or an agent unobserved at t0.
    """
    xy = np.asarray(history_xy, dtype=np.float64)
    if xy.ndim != 3 or xy.shape[-1] != 2 or xy.shape[1] < 1:
        raise BadInput(f"history_xy must be (B, H, 2) positions, got {xy.shape}")
    _check_steps(horizon_steps)
    if not np.isfinite(xy[:, -1]).all():
        bad = int(np.flatnonzero(~np.isfinite(xy[:, -1]).all(axis=1))[0])
        raise BadInput(f"agent {bad} is not observed at t0 (the last history step): drop it or give its position")
    step = xy[:, -1] - xy[:, -2] if xy.shape[1] > 1 else np.zeros_like(xy[:, -1])
    step = np.where(np.isfinite(step), step, 0.0)
    k = np.arange(1, horizon_steps + 1, dtype=np.float64)
    return xy[:, -1, None, :] + k[None, :, None] * step[:, None, :]


def constant_velocity_rollout(xy_m: np.ndarray, velocity_mps: np.ndarray, horizon_s: float,
                              step_s: float) -> np.ndarray:
    """Positions of agents moving at constant velocity, at t = 0, step_s, ..., horizon_s.

    Args:
        xy_m: (A, 2) positions now [m].
        velocity_mps: (A, 2) velocities [m/s] (e.g. the tracker's states); NaN counts as standing still.
        horizon_s: how far ahead [s].
        step_s: time between positions [s].

    Returns:
        (A, T, 2) positions [m], T = floor(horizon_s / step_s) + 1, the first being `xy_m`.

    Raises:
        BadInput: mismatched shapes, or a non-positive step or horizon.
    """
    xy = np.asarray(xy_m, dtype=np.float64).reshape(-1, 2)
    velocity = np.asarray(velocity_mps, dtype=np.float64).reshape(-1, 2)
    if velocity.shape != xy.shape:
        raise BadInput(f"velocity_mps {velocity.shape} must match xy_m {xy.shape}: one (vx, vy) per agent")
    if not (step_s > 0 and horizon_s > 0):
        raise BadInput(f"step_s {step_s} and horizon_s {horizon_s} must be positive seconds")
    t_s = np.arange(int(np.floor(horizon_s / step_s + 1e-9)) + 1) * step_s
    velocity = np.where(np.isfinite(velocity), velocity, 0.0)
    return xy[:, None, :] + t_s[None, :, None] * velocity[:, None, :]


def _check_steps(horizon_steps: int) -> None:
    if isinstance(horizon_steps, bool) or not isinstance(horizon_steps, int | np.integer) or horizon_steps < 1:
        raise BadInput(f"horizon_steps must be a whole number >= 1, got {horizon_steps!r}")
