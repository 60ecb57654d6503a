"""FleetConfig: every knob of the synthetic fleet, with its unit and its valid range.

One config and one seed fix a log byte for byte. The defaults give a 64-beam, 10 Hz lidar over a 3 x 3
city grid with a mix of traffic; tests shrink the lidar (or switch it off) where they are not about it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from andon.errors import BadInput

FRAME_RATE_HZ = 10.0
FRAME_PERIOD_NS = 100_000_000
MAX_DURATION_S = 3600.0


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """What a synthetic log looks like; see each field's comment for its unit and meaning.

    Raises:
        BadInput: on construction, naming the field and value that is out of range.
    """

    # Lidar: a spinning 360-degree scanner on the roof.
    with_lidar: bool = True  # False: frames carry no points (fast, for label-only work)
    lidar_every_n_frames: int = 1  # a sweep every n-th frame (others carry no points): 5 gives 2 Hz
    lidar_beams: int = 64
    lidar_azimuth_steps: int = 1800  # rays per beam per sweep (0.2 degree steps)
    lidar_elevation_min_deg: float = -25.0
    lidar_elevation_max_deg: float = 3.0
    lidar_height_m: float = 1.8  # above the ground under the ego
    max_range_m: float = 80.0
    range_noise_std_m: float = 0.02
    dropout_rate: float = 0.02  # share of returns lost at random in clear daylight
    min_intensity: float = 0.005  # weaker returns are lost (grazing angles, dark targets, rain)
    lidar_threads: int = 0  # open3d ray-casting threads; 0 = automatic
    # Conditions, drawn once per log.
    night_probability: float = 0.25
    rain_probability: float = 0.2
    night_dropout_scale: float = 1.5  # dark, cold targets return less: more dropout at night
    night_noise_scale: float = 1.2
    rain_dropout_scale: float = 3.0
    rain_noise_scale: float = 2.5
    rain_attenuation_per_m: float = 0.004  # intensity falls as exp(-2 * this * range)
    # Labels.
    label_range_m: float = 80.0  # agents whose centre is within this BEV distance of the ego are labelled
    label_error_rate: float = 0.02  # probability that one label (one box in one frame) is corrupted
    # Road network: a grid of junctions, two lanes each way.
    grid_size: int = 3  # junctions per side
    block_m: float = 120.0  # junction spacing
    stub_m: float = 350.0  # how far roads run past the outer junctions (the open road)
    arterial_speed_mps: float = 19.0  # speed limit on the middle row and column
    local_speed_mps: float = 12.0  # speed limit elsewhere
    green_min_s: float = 8.0  # each junction draws its two greens from [green_min_s, green_max_s]
    green_max_s: float = 16.0
    arterial_green_scale: float = 1.8  # arterials get longer greens at their junctions
    yellow_s: float = 3.0
    all_red_s: float = 2.0
    # Agents.
    n_vehicles: int = 26  # moving vehicles besides the ego and the cut-in vehicle
    n_parked: int = 10
    n_pedestrians: int = 24
    n_cyclists: int = 5
    heavy_traffic_probability: float = 0.4  # logs with heavy traffic have heavy_traffic_scale x vehicles
    heavy_traffic_scale: float = 3.0
    cut_in_probability: float = 0.4  # logs that start on the open road (an arterial) with a scripted cut-in
    red_light_start_probability: float = 0.25  # logs that start waiting at a red light (others approach a junction)
    arterial_start_probability: float = 0.5  # logs not on the open road that start on an arterial
    cut_in_duration_s: float = 3.0  # the lane change takes this long
    warmup_s: float = 4.0  # simulated before the first frame, so queues have formed

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                continue
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise BadInput(f"fleet config {f.name}={value!r} must be a finite number")
        _check(self.lidar_beams >= 1, "lidar_beams", self.lidar_beams, "at least 1")
        _check(self.lidar_every_n_frames >= 1 and self.lidar_every_n_frames == int(self.lidar_every_n_frames),
               "lidar_every_n_frames", self.lidar_every_n_frames, "a whole number, at least 1")
        _check(self.lidar_azimuth_steps >= 1, "lidar_azimuth_steps", self.lidar_azimuth_steps, "at least 1")
        _check(-90.0 <= self.lidar_elevation_min_deg < self.lidar_elevation_max_deg <= 90.0,
               "lidar_elevation_min_deg", self.lidar_elevation_min_deg,
               "below lidar_elevation_max_deg, both within [-90, 90]")
        for name in ("lidar_height_m", "max_range_m", "label_range_m", "block_m", "stub_m",
                     "arterial_speed_mps", "local_speed_mps", "yellow_s", "cut_in_duration_s", "green_min_s"):
            _check(getattr(self, name) > 0, name, getattr(self, name), "positive")
        for name in ("range_noise_std_m", "min_intensity", "rain_attenuation_per_m", "all_red_s", "warmup_s",
                     "lidar_threads", "n_vehicles", "n_parked", "n_pedestrians", "n_cyclists"):
            _check(getattr(self, name) >= 0, name, getattr(self, name), "0 or more")
        for name in ("dropout_rate", "night_probability", "rain_probability", "label_error_rate",
                     "heavy_traffic_probability", "cut_in_probability", "red_light_start_probability",
                     "arterial_start_probability"):
            _check(0.0 <= getattr(self, name) <= 1.0, name, getattr(self, name), "a probability in [0, 1]")
        for name in ("night_dropout_scale", "night_noise_scale", "rain_dropout_scale", "rain_noise_scale",
                     "heavy_traffic_scale", "arterial_green_scale"):
            _check(getattr(self, name) >= 1.0, name, getattr(self, name), "1 or more (conditions only worsen)")
        _check(self.cut_in_probability + self.red_light_start_probability <= 1.0, "red_light_start_probability",
               self.red_light_start_probability, f"at most 1 - cut_in_probability ({1 - self.cut_in_probability:g})")
        _check(self.green_max_s >= self.green_min_s, "green_max_s", self.green_max_s, "at least green_min_s")
        _check(self.grid_size >= 2, "grid_size", self.grid_size, "at least 2")
        # Junction boxes are 30 m across and need straight road between them for lanes and buildings.
        _check(self.block_m >= 60.0, "block_m", self.block_m, "at least 60")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FleetConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BadInput(f"unknown fleet config keys {unknown}; known keys are {sorted(known)}")
        return cls(**data)


def _check(ok: bool, name: str, value: object, must: str) -> None:
    if not ok:
        raise BadInput(f"fleet config {name}={value!r} must be {must}")
