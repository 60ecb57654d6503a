"""What the synthetic fleet knows about each log it writes, kept for tests and evaluation.

Stored in the log's meta under "ground_truth" (JSON), so it travels with the log in the blob store.
Miners are scored against `behaviours` (precision/recall per tag), label QA against `label_errors`
(which labels were corrupted, in which frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

META_KEY = "ground_truth"
# Tags the fleet scripts and the miners must find.
BEHAVIOUR_TAGS: tuple[str, ...] = ("intersection", "traffic_light", "pedestrian_crossing", "cut_in", "vru_near",
                                   "dense_traffic", "high_speed", "stationary", "night")
LABEL_ERROR_KINDS: tuple[str, ...] = ("missing", "jitter", "class_swap", "size")


@dataclass(frozen=True, slots=True)
class BehaviourEvent:
    """A scripted behaviour: `tag` holds from t_start_ns to t_end_ns, involving `track_ids` (may be empty)."""

    tag: str
    t_start_ns: int
    t_end_ns: int
    track_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "t_start_ns": self.t_start_ns, "t_end_ns": self.t_end_ns,
                "track_ids": list(self.track_ids)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BehaviourEvent:
        return cls(data["tag"], int(data["t_start_ns"]), int(data["t_end_ns"]), tuple(data.get("track_ids", ())))


@dataclass(frozen=True, slots=True)
class LabelError:
    """One corrupted label: in frame `frame_index`, the box of `track_id` was dropped/jittered/reclassed/resized."""

    frame_index: int
    timestamp_ns: int
    track_id: str
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {"frame_index": self.frame_index, "timestamp_ns": self.timestamp_ns, "track_id": self.track_id,
                "kind": self.kind}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelError:
        return cls(int(data["frame_index"]), int(data["timestamp_ns"]), str(data["track_id"]), str(data["kind"]))


@dataclass(frozen=True, slots=True)
class FleetGroundTruth:
    seed: int
    conditions: dict[str, bool] = field(default_factory=dict)  # {"night": bool, "rain": bool}
    behaviours: tuple[BehaviourEvent, ...] = ()
    label_errors: tuple[LabelError, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "conditions": dict(self.conditions),
                "behaviours": [b.to_dict() for b in self.behaviours],
                "label_errors": [e.to_dict() for e in self.label_errors]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FleetGroundTruth:
        return cls(seed=int(data["seed"]), conditions={k: bool(v) for k, v in data.get("conditions", {}).items()},
                   behaviours=tuple(BehaviourEvent.from_dict(b) for b in data.get("behaviours", [])),
                   label_errors=tuple(LabelError.from_dict(e) for e in data.get("label_errors", [])))

    @classmethod
    def of(cls, meta: dict[str, Any]) -> FleetGroundTruth | None:
        """The ground truth recorded in a log's meta, or None for logs that are not synthetic."""
        data = meta.get(META_KEY)
        return None if data is None else cls.from_dict(data)
