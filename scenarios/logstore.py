"""Writing a log's frames into the blob store and streaming them back.

A stored log is a manifest (JSON blob) naming an annotations blob (poses and boxes of every frame,
columnar), one points blob per frame (or none) and a map blob. The log id is derived from the
manifest's hash, so the same content always gets the same id.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from andon.scenarios.blobstore import BlobStore
from andon.scenarios.records import Frame, Log, RoadMap

MANIFEST_VERSION = 1


@dataclass(frozen=True, slots=True, eq=False)
class ImportedLog:
    """What an importer (or the synthetic fleet) hands the catalog, before it has an id."""

    source: str
    name: str
    frames: list[Frame]
    road_map: RoadMap | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class StoredLog:
    log_id: str
    manifest: str
    n_frames: int
    t_start_ns: int
    t_end_ns: int


def log_id_for(source: str, manifest_digest: str) -> str:
    return f"{source}-{manifest_digest[:16]}"


def store_log(blobs: BlobStore, log: ImportedLog) -> StoredLog:
    """Write a validated log's blobs; idempotent."""
    frames = log.frames
    counts = np.array([len(f.classes) for f in frames], dtype=np.int64)
    velocities = [f.velocities_mps if f.velocities_mps is not None else np.full((len(f.classes), 2), np.nan)
                  for f in frames]
    annotations = {
        "timestamp_ns": np.array([f.timestamp_ns for f in frames], dtype=np.int64),
        "ego_pose": np.array([f.ego_pose for f in frames], dtype=np.float64).reshape(-1, 4),
        "box_count": counts,
        "boxes": np.concatenate([np.asarray(f.boxes, dtype=np.float64).reshape(-1, 7) for f in frames]),
        "classes": np.array([c for f in frames for c in f.classes], dtype=np.str_),
        "track_ids": np.array([t for f in frames for t in f.track_ids], dtype=np.str_),
        "velocities_mps": np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1, 2) for v in velocities]),
    }
    points = [None if f.points is None else blobs.put_arrays({"points": np.asarray(f.points, dtype=np.float32)})
              for f in frames]
    manifest = {
        "version": MANIFEST_VERSION,
        "source": log.source,
        "name": log.name,
        "annotations": blobs.put_arrays(annotations),
        "points": points,
        "map": None if log.road_map is None else blobs.put_json(log.road_map.to_dict()),
        "meta": log.meta,
    }
    digest = blobs.put_json(manifest)
    return StoredLog(log_id=log_id_for(log.source, digest), manifest=digest, n_frames=len(frames),
                     t_start_ns=int(frames[0].timestamp_ns), t_end_ns=int(frames[-1].timestamp_ns))


def load_log(blobs: BlobStore, log_id: str, manifest_digest: str) -> Log:
    """A Log whose frames stream: annotations load once, each frame's points on access."""
    manifest = blobs.get_json(manifest_digest)
    road_map = None if manifest["map"] is None else RoadMap.from_dict(blobs.get_json(manifest["map"]))
    frames = LazyFrames(blobs, manifest["annotations"], manifest["points"])
    return Log(log_id=log_id, source=manifest["source"], frames=frames, name=manifest["name"],
               road_map=road_map, meta=dict(manifest.get("meta") or {}))


class LazyFrames(Sequence[Frame]):
    """Frames of a stored log; points are read from their blob only when a frame is accessed."""

    def __init__(self, blobs: BlobStore, annotations_digest: str, points: list[str | None]) -> None:
        self._blobs = blobs
        self._points = points
        data = blobs.get_arrays(annotations_digest)
        self.timestamp_ns = data["timestamp_ns"]
        self.ego_pose = data["ego_pose"]
        self._offsets = np.concatenate([[0], np.cumsum(data["box_count"])])
        self._boxes = data["boxes"]
        self._classes = data["classes"]
        self._track_ids = data["track_ids"]
        self._velocities = data["velocities_mps"]

    def __len__(self) -> int:
        return len(self.timestamp_ns)

    @overload
    def __getitem__(self, index: int) -> Frame: ...
    @overload
    def __getitem__(self, index: slice) -> list[Frame]: ...

    def __getitem__(self, index: int | slice) -> Frame | list[Frame]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} out of range for a log of {len(self)} frames")
        lo, hi = self._offsets[index], self._offsets[index + 1]
        digest = self._points[index]
        return Frame(
            timestamp_ns=int(self.timestamp_ns[index]),
            ego_pose=tuple(float(v) for v in self.ego_pose[index]),
            boxes=self._boxes[lo:hi],
            classes=self._classes[lo:hi].tolist(),
            track_ids=self._track_ids[lo:hi].tolist(),
            points=None if digest is None else self._blobs.get_arrays(digest)["points"],
            velocities_mps=self._velocities[lo:hi],
        )

    def __iter__(self) -> Iterator[Frame]:
        for index in range(len(self)):
            yield self[index]

    def boxes_table(self) -> dict[str, np.ndarray]:
        """All boxes of the log at once, columnar, for vectorised miners and QA (no points)."""
        frame_index = np.repeat(np.arange(len(self)), np.diff(self._offsets))
        return {"frame_index": frame_index, "timestamp_ns": self.timestamp_ns[frame_index],
                "boxes": self._boxes, "classes": self._classes, "track_ids": self._track_ids,
                "velocities_mps": self._velocities}


def boxes_table(log: Log) -> dict[str, np.ndarray]:
    """Every box of a log, columnar, without reading any lidar points."""
    if isinstance(log.frames, LazyFrames):
        return log.frames.boxes_table()
    frames = list(log.frames)
    counts = [len(f.classes) for f in frames]
    frame_index = np.repeat(np.arange(len(frames)), counts)
    stamps = np.array([f.timestamp_ns for f in frames], dtype=np.int64)
    return {
        "frame_index": frame_index, "timestamp_ns": stamps[frame_index],
        "boxes": np.concatenate([np.asarray(f.boxes, dtype=np.float64).reshape(-1, 7) for f in frames]),
        "classes": np.array([c for f in frames for c in f.classes], dtype=np.str_),
        "track_ids": np.array([t for f in frames for t in f.track_ids], dtype=np.str_),
        "velocities_mps": np.concatenate([
            np.full((n, 2), np.nan) if f.velocities_mps is None else np.asarray(f.velocities_mps).reshape(-1, 2)
            for f, n in zip(frames, counts, strict=True)]),
    }


def ego_poses(log: Log) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps_ns (F,), poses (F, 4)) of a log, without reading any lidar points."""
    if isinstance(log.frames, LazyFrames):
        return log.frames.timestamp_ns, log.frames.ego_pose
    return (np.array([f.timestamp_ns for f in log.frames], dtype=np.int64),
            np.array([f.ego_pose for f in log.frames], dtype=np.float64).reshape(-1, 4))
