"""What a log is built around: its start (open road with a cut-in, waiting at a red light, or approaching
a junction), the kind of road, the traffic and the conditions.

Each choice is made from a Weyl sequence over the seed, u = frac(seed * alpha), one irrational alpha per
choice, rather than from a random draw: consecutive seeds (a fleet's logs) then cover the choices in
close to their configured shares, so ten logs already hold every kind of situation. Everything else
within a log is random.
"""

from __future__ import annotations

from dataclasses import dataclass

from andon.simulation.fleet.config import FleetConfig

OPEN_ROAD, RED_LIGHT, APPROACH = "open_road", "red_light", "approach"
OUTER_LANE_SHARE = 0.6
# Fractional parts of sqrt(2), sqrt(3), sqrt(5), sqrt(7), sqrt(11), sqrt(13) as 32-bit fixed point:
# integer arithmetic keeps the sequence exact for any seed.
_ALPHAS = {name: int(frac * 2**32) | 1 for name, frac in (
    ("start", 0.41421356237), ("arterial", 0.73205080757), ("heavy", 0.23606797750),
    ("night", 0.64575131106), ("rain", 0.31662479036), ("lane", 0.60555127546))}


@dataclass(frozen=True, slots=True)
class LogScript:
    start: str  # OPEN_ROAD (with a cut-in) | RED_LIGHT | APPROACH
    arterial: bool  # the ego starts on an arterial (higher speed limit)
    outer_lane: bool  # the ego starts in the outer lane (may turn right)
    heavy_traffic: bool
    night: bool
    rain: bool

    @property
    def cut_in(self) -> bool:
        return self.start == OPEN_ROAD


def weyl(seed: int, choice: str) -> float:
    """u in [0, 1) for one choice of a log: frac(seed * alpha_choice), exactly."""
    return ((int(seed) * _ALPHAS[choice]) % 2**32) / 2**32


def draw_script(seed: int, config: FleetConfig) -> LogScript:
    u = weyl(seed, "start")
    start = OPEN_ROAD if u < config.cut_in_probability else (
        RED_LIGHT if u < config.cut_in_probability + config.red_light_start_probability else APPROACH)
    # The open road is an arterial's run-in: room for a cut-in, and for speed.
    arterial = start == OPEN_ROAD or weyl(seed, "arterial") < config.arterial_start_probability
    return LogScript(start=start, arterial=arterial,
                     outer_lane=weyl(seed, "lane") < OUTER_LANE_SHARE,
                     heavy_traffic=weyl(seed, "heavy") < config.heavy_traffic_probability,
                     night=weyl(seed, "night") < config.night_probability,
                     rain=weyl(seed, "rain") < config.rain_probability)

