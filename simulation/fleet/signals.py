"""Two-phase traffic lights: at each junction E-W traffic has green, then N-S traffic, never both.

Signal group `2 * node + axis` governs travel along axis 0 (E, W) or 1 (N, S) at a junction. Each
junction's cycle is green(axis 0), yellow, all-red, green(axis 1), yellow, all-red, shifted by its own
offset. Pedestrians cross with the parallel traffic: a crosswalk over the N-S road is used by people
walking E-W, so it is governed by the E-W group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GREEN, YELLOW, RED = 0, 1, 2


@dataclass(frozen=True, slots=True, eq=False)
class SignalPlan:
    offset_s: np.ndarray  # (n_nodes,) phase shift of each junction's cycle
    green_s: np.ndarray  # (n_nodes, 2) green time of each axis
    yellow_s: float
    all_red_s: float

    @property
    def cycle_s(self) -> np.ndarray:
        return self.green_s.sum(axis=1) + 2 * (self.yellow_s + self.all_red_s)

    def states(self, t_s: float) -> np.ndarray:
        """State (GREEN, YELLOW or RED) of every signal group at time t: (2 * n_nodes,) int8."""
        tau = np.mod(t_s + self.offset_s, self.cycle_s)
        # Axis 1's phase starts after axis 0's green, yellow and all-red.
        start = np.column_stack([np.zeros_like(tau), self.green_s[:, 0] + self.yellow_s + self.all_red_s])
        local = tau[:, None] - start
        state = np.full(local.shape, RED, dtype=np.int8)
        state[(local >= 0) & (local < self.green_s + self.yellow_s)] = YELLOW
        state[(local >= 0) & (local < self.green_s)] = GREEN
        return state.reshape(-1)


    def red_onset_s(self, node: int, axis: int) -> float:
        """Where in its junction's cycle (before the offset) the signal group of `axis` turns red."""
        green, cycle = self.green_s[node], float(self.cycle_s[node])
        return float(green[0] + self.yellow_s) if axis == 0 else cycle - self.all_red_s

    def turning_red_at(self, node: int, axis: int, t_s: float) -> SignalPlan:
        """The same plan, with junction `node` shifted so that `axis` turns red at time t_s."""
        offset = self.offset_s.copy()
        offset[node] = np.mod(self.red_onset_s(node, axis) - t_s, float(self.cycle_s[node]))
        return SignalPlan(offset_s=offset, green_s=self.green_s, yellow_s=self.yellow_s, all_red_s=self.all_red_s)


def draw_plan(green_min_s: float, green_max_s: float, long_green: np.ndarray, long_green_scale: float,
              yellow_s: float, all_red_s: float, rng: np.random.Generator) -> SignalPlan:
    """Greens drawn from [green_min_s, green_max_s], times `long_green_scale` where `long_green` (n_nodes, 2)."""
    green = rng.uniform(green_min_s, green_max_s, size=long_green.shape) * np.where(long_green, long_green_scale, 1.0)
    cycle = green.sum(axis=1) + 2 * (yellow_s + all_red_s)
    return SignalPlan(offset_s=rng.uniform(0.0, 1.0, len(green)) * cycle, green_s=green, yellow_s=yellow_s,
                      all_red_s=all_red_s)
