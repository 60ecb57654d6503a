"""Records of the catalog: frames, logs, maps and scenarios.

Frames and units (DESIGN.md): the ego frame has x forward, y left, z up, in metres. A box is
(x, y, z_centre, length, width, height, yaw) float64 with yaw about +z from +x in radians, in (-pi, pi].
Timestamps are integer nanoseconds. Ego poses (x, y, z, yaw) are in the log's world frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CLASSES: tuple[str, ...] = ("vehicle", "pedestrian", "cyclist", "static")
BOX_DIM = 7
STATUS_ACTIVE = "active"
STATUS_RETIRED = "retired"


def wrap_angle(yaw: np.ndarray | float) -> np.ndarray | float:
    """Wrap radians into (-pi, pi]."""
    wrapped = np.pi - np.mod(np.pi - np.asarray(yaw, dtype=np.float64), 2 * np.pi)
    return float(wrapped) if np.ndim(wrapped) == 0 else wrapped


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One timestep of a log; boxes and points in the ego frame at `timestamp_ns`."""

    timestamp_ns: int
    ego_pose: tuple[float, float, float, float]  # (x [m], y [m], z [m], yaw [rad]) in the world frame
    boxes: np.ndarray  # (N, 7) float64
    classes: list[str]
    track_ids: list[str]
    points: np.ndarray | None = None  # (M, 4) float32: x, y, z [m], intensity
    velocities_mps: np.ndarray | None = None  # (N, 2) float64 in the ego frame, NaN where unknown


@dataclass(frozen=True, slots=True, eq=False)
class Lane:
    lane_id: str
    centerline_m: np.ndarray  # (K, 2) world frame
    is_intersection: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Crosswalk:
    crosswalk_id: str
    polygon_m: np.ndarray  # (K, 2) world frame


@dataclass(frozen=True, slots=True, eq=False)
class TrafficLight:
    light_id: str
    position_m: tuple[float, float]
    lane_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class RoadMap:
    """Vector map of a log, in the log's world frame."""

    lanes: tuple[Lane, ...] = ()
    crosswalks: tuple[Crosswalk, ...] = ()
    traffic_lights: tuple[TrafficLight, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "lanes": [{"lane_id": lane.lane_id, "centerline_m": np.round(lane.centerline_m, 4).tolist(),
                       "is_intersection": bool(lane.is_intersection)} for lane in self.lanes],
            "crosswalks": [{"crosswalk_id": c.crosswalk_id, "polygon_m": np.round(c.polygon_m, 4).tolist()}
                           for c in self.crosswalks],
            "traffic_lights": [{"light_id": t.light_id, "position_m": [round(float(v), 4) for v in t.position_m],
                                "lane_ids": list(t.lane_ids)} for t in self.traffic_lights],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoadMap:
        return cls(
            lanes=tuple(Lane(d["lane_id"], np.asarray(d["centerline_m"], dtype=np.float64).reshape(-1, 2),
                             bool(d["is_intersection"])) for d in data.get("lanes", [])),
            crosswalks=tuple(Crosswalk(d["crosswalk_id"], np.asarray(d["polygon_m"], dtype=np.float64).reshape(-1, 2))
                             for d in data.get("crosswalks", [])),
            traffic_lights=tuple(TrafficLight(d["light_id"], tuple(d["position_m"]), tuple(d["lane_ids"]))
                                 for d in data.get("traffic_lights", [])),
        )


@dataclass(frozen=True, slots=True, eq=False)
class Log:
    """A recorded (or synthesised) drive. `frames` may be lazy: points stream from the blob store."""

    log_id: str
    source: str
    frames: Sequence[Frame]
    name: str = ""
    road_map: RoadMap | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def t_start_ns(self) -> int:
        return int(self.frames[0].timestamp_ns)

    @property
    def t_end_ns(self) -> int:
        return int(self.frames[-1].timestamp_ns)


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who made a scenario: an importer, a miner (with its version) or a curator."""

    kind: str  # "import" | "miner" | "curator"
    name: str  # importer or miner name, or the curator's name
    version: str = ""
    curator: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "version": self.version,
                "curator": self.curator, "note": self.note}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        return cls(**{k: str(data.get(k, "")) for k in ("kind", "name", "version", "curator", "note")})


@dataclass(frozen=True, slots=True)
class Scenario:
    """A time window of a log with tags, a label-QA score and provenance.

    `qa_score` is NaN until label QA has scored the window.
    """

    scenario_id: str
    log_id: str
    t_start_ns: int
    t_end_ns: int
    tags: frozenset[str]
    qa_score: float
    provenance: Provenance
    source: str = ""
    status: str = STATUS_ACTIVE
    retired_reason: str = ""
    qa_details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def duration_s(self) -> float:
        return (self.t_end_ns - self.t_start_ns) / 1e9

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario_id": self.scenario_id,
            "log_id": self.log_id,
            "source": self.source,
            "t_start_ns": self.t_start_ns,
            "t_end_ns": self.t_end_ns,
            "tags": sorted(self.tags),
            "qa_score": None if math.isnan(self.qa_score) else self.qa_score,
            "qa_details": self.qa_details,
            "provenance": self.provenance.to_dict(),
            "status": self.status,
            "retired_reason": self.retired_reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        qa = data.get("qa_score")
        return cls(
            scenario_id=data["scenario_id"], log_id=data["log_id"], source=data.get("source", ""),
            t_start_ns=int(data["t_start_ns"]), t_end_ns=int(data["t_end_ns"]),
            tags=frozenset(data.get("tags", ())), qa_score=float("nan") if qa is None else float(qa),
            qa_details=dict(data.get("qa_details") or {}),
            provenance=Provenance.from_dict(data.get("provenance") or {}),
            status=data.get("status", STATUS_ACTIVE), retired_reason=data.get("retired_reason", ""),
        )
