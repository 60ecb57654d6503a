"""Torch datasets over a dataset version's samples: logs stream from the blob store, once per worker.

A DataLoader worker holds its own small LRU of logs (`LogCache`): a log's manifest and annotations
load on its first sample and stay while its samples keep coming; lidar points load per frame and
are never cached. Sample tables are kept as flat numpy columns (no Python objects per row), so
forked workers do not copy them page by page through reference counting.

Batch layouts (what the collate functions return):
- detection (PointPillars convention):
  pillars (ΣP, T, D) float32 (D = len(POINT_FEATURES)), pillar_num_points (ΣP,) int64,
  pillar_coords (ΣP, 3) int64 (batch index, iy, ix), boxes (B, N, 7) float32 padded with zeros,
  labels (B, N) int64 padded with -1, box_mask (B, N) bool, sample_index (B,) int64.
- prediction (agent frame at t0):
  history (B, H, 4) float32, history_mask (B, H) bool, neighbours (B, A, H, 4) float32,
  neighbours_mask (B, A, H) bool, future (B, F, 2) float32, future_mask (B, F) bool,
  origin (B, 3) float64 world (x, y, heading), sample_index (B,) int64.
`sample_index` is the row of the split's sample table, so outputs map back to log, frame and track.
A batch's tensors view one buffer, which a worker hands over whole (`andon.datasets.batches`).
"""

from __future__ import annotations

import os
import random
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from andon.datasets.batches import PackedBatch, to_batch
from andon.datasets.features import (
    agent_steps,
    detection_features,
    detection_targets,
    intensity_max_for,
    prediction_features_batch,
)
from andon.errors import BadInput
from andon.scenarios.blobstore import BlobStore
from andon.scenarios.logstore import boxes_table, ego_poses, load_log
from andon.scenarios.records import Log, wrap_angle

SAMPLE_COLUMNS: tuple[str, ...] = ("log_id", "log_manifest", "frame_index", "timestamp_ns")
DEFAULT_CACHED_LOGS = 8
T = TypeVar("T")


# ----- per-worker log cache -----------------------------------------------------------------------
class LogCache:
    """Least-recently-used logs (or what a loader derives from them) of one process.

    Each DataLoader worker has its own copy: forked, it starts with whatever the parent held (the
    DataModules never load logs in the parent); pickled (spawn), it starts empty. Either way a log
    loads in the worker that reads it, once while it stays among the `max_logs` most recent.
    """

    def __init__(self, blobs_dir: str | os.PathLike[str], max_logs: int = DEFAULT_CACHED_LOGS) -> None:
        if max_logs < 1:
            raise BadInput(f"the log cache must hold at least one log, got max_logs={max_logs}")
        self.blobs_dir = Path(blobs_dir)
        self.max_logs = max_logs
        self.loads = 0  # how many times a log was read: a test checks logs load once per worker
        self._items: OrderedDict[str, Any] = OrderedDict()

    def get(self, log_id: str, manifest: str, derive: Callable[[Log], T]) -> T:
        """`derive(log)` for the log, computed on first use and kept while it stays recent."""
        if log_id in self._items:
            self._items.move_to_end(log_id)
            return self._items[log_id]
        value = derive(load_log(BlobStore(self.blobs_dir), log_id, manifest))
        self.loads += 1
        self._items[log_id] = value
        if len(self._items) > self.max_logs:
            self._items.popitem(last=False)
        return value

    def __getstate__(self) -> dict[str, Any]:
        # A spawned worker gets the cache's settings, not the parent's loaded logs.
        return {"blobs_dir": self.blobs_dir, "max_logs": self.max_logs, "loads": 0, "_items": OrderedDict()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: seed numpy and random from the worker's torch seed.

    Torch derives each worker's seed from the loader's seeded generator, so a seeded loader gives
    every worker the same numpy and random streams on every run.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


# ----- sample tables ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SampleColumns:
    """A split's samples as flat arrays; logs by code into `log_ids` / `manifests`."""

    log_code: np.ndarray  # (S,) int32
    log_ids: tuple[str, ...]
    manifests: tuple[str, ...]
    frame_index: np.ndarray  # (S,) int64
    timestamp_ns: np.ndarray  # (S,) int64
    track_id: np.ndarray | None  # (S,) fixed-width str, prediction only

    def __len__(self) -> int:
        return len(self.frame_index)


def sample_columns(samples: pd.DataFrame, with_track: bool) -> SampleColumns:
    """Flatten a version's sample table.

    Raises:
        BadInput: a column is missing, or one log id names two different manifests.
    """
    needed = SAMPLE_COLUMNS + (("track_id",) if with_track else ())
    missing = [column for column in needed if column not in samples.columns]
    if missing:
        raise BadInput(f"the dataset version's samples lack columns {missing} (have {list(samples.columns)}): "
                       f"rebuild the dataset version")
    codes, log_ids = pd.factorize(samples["log_id"], sort=True)
    manifests = samples.groupby("log_id", sort=True)["log_manifest"].agg(["first", "nunique"])
    if (manifests["nunique"] > 1).any():
        bad = manifests.index[manifests["nunique"] > 1][0]
        raise BadInput(f"log {bad} appears with more than one manifest in the samples: rebuild the dataset version")
    return SampleColumns(
        log_code=codes.astype(np.int32), log_ids=tuple(str(v) for v in log_ids),
        manifests=tuple(str(v) for v in manifests["first"]),
        frame_index=samples["frame_index"].to_numpy(dtype=np.int64),
        timestamp_ns=samples["timestamp_ns"].to_numpy(dtype=np.int64),
        track_id=samples["track_id"].astype(str).to_numpy(dtype=np.str_) if with_track else None,
    )


def _check_frames(log_id: str, stamps_ns: np.ndarray, frame_index: np.ndarray, timestamp_ns: np.ndarray) -> None:
    """Samples must point at frames that exist with the recorded timestamps (else the version is stale)."""
    inside = (frame_index >= 0) & (frame_index < len(stamps_ns))
    good = inside.copy()
    good[inside] = stamps_ns[frame_index[inside]] == timestamp_ns[inside]
    if not good.all():
        i = int(np.flatnonzero(~good)[0])
        raise BadInput(f"sample frame {int(frame_index[i])} at {int(timestamp_ns[i])} ns is not a frame of log "
                       f"{log_id} ({len(stamps_ns)} frames): the dataset version no longer matches its logs; "
                       f"rebuild it")


# ----- detection ----------------------------------------------------------------------------------
class DetectionSamples(Dataset):
    """One lidar frame per sample: pillars and targets from `andon.datasets.features`."""

    def __init__(self, samples: pd.DataFrame, blobs_dir: str | os.PathLike[str], sampling: Mapping[str, Any],
                 max_cached_logs: int = DEFAULT_CACHED_LOGS) -> None:
        self.columns = sample_columns(samples, with_track=False)
        self.sampling = dict(sampling)
        self.cache = LogCache(blobs_dir, max_cached_logs)

    def __len__(self) -> int:
        return len(self.columns)

    def __getitem__(self, index: int) -> dict[str, Any]:
        cols = self.columns
        code = int(cols.log_code[index])
        log_id = cols.log_ids[code]
        log = self.cache.get(log_id, cols.manifests[code], lambda log: log)
        frame_index = cols.frame_index[index:index + 1]
        _check_frames(log_id, ego_poses(log)[0], frame_index, cols.timestamp_ns[index:index + 1])
        frame = log.frames[int(frame_index[0])]
        if frame.points is None:
            raise BadInput(f"frame {int(frame_index[0])} of log {log_id} has no lidar points: a detection "
                           f"dataset may only sample frames with points; rebuild the dataset version")
        features = detection_features(frame.points, self.sampling, intensity_max_for(log.source, log.meta))
        targets = detection_targets(frame.boxes, frame.classes, self.sampling)
        return {**features, **targets, "sample_index": int(index)}


def collate_detection(samples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor] | PackedBatch:
    """Concatenate pillars with a batch-index column; pad boxes to the batch's most, with a mask."""
    counts = np.array([len(s["pillar_coords"]) for s in samples], dtype=np.int64)
    batch_column = np.repeat(np.arange(len(samples)), counts)[:, None]
    coords = np.concatenate([batch_column, np.concatenate([s["pillar_coords"] for s in samples])], axis=1)
    n_boxes = np.array([len(s["labels"]) for s in samples], dtype=np.int64)
    width = int(n_boxes.max(initial=0))
    row = np.repeat(np.arange(len(samples)), n_boxes)
    slot = np.arange(len(row)) - np.repeat(np.cumsum(n_boxes) - n_boxes, n_boxes)
    boxes = np.zeros((len(samples), width, 7), dtype=np.float32)
    labels = np.full((len(samples), width), -1, dtype=np.int64)
    boxes[row, slot] = np.concatenate([s["boxes"] for s in samples])
    labels[row, slot] = np.concatenate([s["labels"] for s in samples])
    return to_batch({
        "pillars": [s["pillars"] for s in samples],
        "pillar_num_points": [np.concatenate([s["pillar_num_points"] for s in samples]).astype(np.int64)],
        "pillar_coords": [coords.astype(np.int64)],
        "boxes": [boxes],
        "labels": [labels],
        "box_mask": [labels >= 0],
        "sample_index": [np.array([int(s["sample_index"]) for s in samples], dtype=np.int64)],
    })


# ----- prediction ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class TrackIndex:
    """Every box of a log in the world frame, keyed by (frame, track) for vectorised look-ups."""

    timestamp_ns: np.ndarray  # (n_frames,) strictly increasing
    frame_period_ns: float | None  # median positive gap between frames; None for a one-frame log
    track_ids: np.ndarray  # (n_tracks,) sorted unique
    key: np.ndarray  # (R,) frame * n_tracks + track code, sorted
    track: np.ndarray  # (R,) track code of each row
    frame_start: np.ndarray  # (n_frames + 1,) first row of each frame
    xy_m: np.ndarray  # (R, 2) world positions
    yaw_rad: np.ndarray  # (R,) world headings

    @classmethod
    def from_log(cls, log: Log) -> TrackIndex:
        """Index a log's boxes (read without any lidar points), moved into its world frame."""
        table = boxes_table(log)
        stamps, poses = ego_poses(log)
        track_ids, track = np.unique(table["track_ids"], return_inverse=True)
        frame = np.asarray(table["frame_index"], dtype=np.int64)
        order = np.lexsort((track, frame))
        frame, track = frame[order], track.astype(np.int64)[order]
        boxes, pose = table["boxes"][order], poses[frame]
        cos, sin = np.cos(pose[:, 3]), np.sin(pose[:, 3])
        xy = np.column_stack([cos * boxes[:, 0] - sin * boxes[:, 1] + pose[:, 0],
                              sin * boxes[:, 0] + cos * boxes[:, 1] + pose[:, 1]])
        gaps = np.diff(stamps)
        gaps = gaps[gaps > 0]
        return cls(timestamp_ns=np.asarray(stamps, dtype=np.int64),
                   frame_period_ns=float(np.median(gaps)) if len(gaps) else None,
                   track_ids=track_ids, key=frame * len(track_ids) + track, track=track,
                   frame_start=np.searchsorted(frame, np.arange(len(stamps) + 1)),
                   xy_m=xy, yaw_rad=np.asarray(wrap_angle(boxes[:, 6] + pose[:, 3]), dtype=np.float64))

    def codes(self, track_ids: np.ndarray) -> np.ndarray:
        """Track codes of ids (-1 for an id the log does not hold)."""
        at = np.clip(np.searchsorted(self.track_ids, track_ids), 0, max(len(self.track_ids) - 1, 0))
        found = len(self.track_ids) > 0 and self.track_ids[at] == track_ids
        return np.where(found, at, -1)

    def frames_at(self, stamps_ns: np.ndarray) -> np.ndarray:
        """Nearest frame to each time, -1 where none lies strictly within half the log's frame period.

        The same rule materialisation uses to decide that an agent is observed at every step, so a
        sample's steps find the frames it was built from.
        """
        stamps = self.timestamp_ns
        after = np.clip(np.searchsorted(stamps, stamps_ns), 0, len(stamps) - 1)
        before = np.clip(after - 1, 0, len(stamps) - 1)
        d_before, d_after = np.abs(stamps_ns - stamps[before]), np.abs(stamps[after] - stamps_ns)
        nearest = np.where(d_after < d_before, after, before)
        tolerance_ns = 0.5 * self.frame_period_ns if self.frame_period_ns else 1.0  # one frame: exact times only
        return np.where(np.minimum(d_before, d_after) < tolerance_ns, nearest, -1)

    def rows(self, codes: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """Row of each (track code, frame) pair, broadcast together; -1 where the track is absent."""
        codes, frames = np.broadcast_arrays(codes, frames)
        key = frames * len(self.track_ids) + codes
        if len(self.key) == 0:
            return np.full(key.shape, -1)
        at = np.clip(np.searchsorted(self.key, key), 0, len(self.key) - 1)
        return np.where((codes >= 0) & (frames >= 0) & (self.key[at] == key), at, -1)

    def positions(self, codes: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """(..., 2) world positions of (track, frame) pairs; NaN where the track is absent."""
        rows = self.rows(codes, frames)
        if len(self.key) == 0:
            return np.full((*rows.shape, 2), np.nan)
        return np.where((rows >= 0)[..., None], self.xy_m[np.maximum(rows, 0)], np.nan)

    def others_in(self, frames: np.ndarray, focal: np.ndarray) -> np.ndarray:
        """(B, K) codes of the tracks seen in each row of `frames` (B, S) except `focal` (B,); -1 pads."""
        batch = len(frames)
        owner, frame = np.nonzero(frames >= 0)
        frame = frames[owner, frame]
        start, length = self.frame_start[frame], np.diff(self.frame_start)[frame]
        owner = np.repeat(owner, length)
        row = np.arange(len(owner)) + np.repeat(start - (np.cumsum(length) - length), length)
        present = np.zeros((batch, len(self.track_ids)), dtype=bool)
        present[owner, self.track[row]] = True
        present[np.arange(batch), focal] = False
        owner, track = np.nonzero(present)  # row-major: by owner, then by track code
        counts = present.sum(axis=1)
        slot = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        out = np.full((batch, int(counts.max(initial=0))), -1, dtype=np.int64)
        out[owner, slot] = track
        return out


class PredictionSamples(Dataset):
    """One agent at one frame per sample, extracted a whole batch at a time.

    `__getitems__` (which torch's DataLoader calls with a batch of indices) groups the batch by log,
    gathers every agent's world positions (history, future, neighbours) with array look-ups, then
    runs the feature transform once over the whole batch. It returns one chunk of agents, which
    `collate_prediction` concatenates with any others, so single-index access gives the same arrays
    with a leading axis of one.
    """

    def __init__(self, samples: pd.DataFrame, blobs_dir: str | os.PathLike[str], sampling: Mapping[str, Any],
                 max_cached_logs: int = DEFAULT_CACHED_LOGS) -> None:
        self.columns = sample_columns(samples, with_track=True)
        self.sampling = dict(sampling)
        self.steps = agent_steps(sampling)
        self.cache = LogCache(blobs_dir, max_cached_logs)

    def __len__(self) -> int:
        return len(self.columns)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, np.ndarray]]:
        index = np.asarray(indices, dtype=np.int64)
        codes = self.columns.log_code[index]
        groups = [np.flatnonzero(codes == code) for code in np.unique(codes)]
        parts = [self._gather(index[positions]) for positions in groups]
        # Back into the sampler's order: the parts hold the batch's positions grouped by log.
        back = np.argsort(np.concatenate(groups), kind="stable")
        width = max(part["neighbours"].shape[1] for part in parts)
        neighbours = np.concatenate([np.pad(part["neighbours"], ((0, 0), (0, width - part["neighbours"].shape[1]),
                                                                 (0, 0), (0, 0)), constant_values=np.nan)
                                     for part in parts])[back]
        history, heading, future = (np.concatenate([part[name] for part in parts])[back]
                                    for name in ("history", "heading", "future"))
        features = prediction_features_batch(history, heading, neighbours,
                                             np.isfinite(neighbours[..., 0]), self.sampling, future)
        return [{**features, "sample_index": index}]

    def _gather(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """World positions of one log's samples: the agents' steps, headings and neighbours' histories."""
        cols, steps = self.columns, self.steps
        code = int(cols.log_code[index[0]])
        log_id = cols.log_ids[code]
        tracks = self.cache.get(log_id, cols.manifests[code], TrackIndex.from_log)
        frame0, stamp0 = cols.frame_index[index], cols.timestamp_ns[index]
        _check_frames(log_id, tracks.timestamp_ns, frame0, stamp0)
        focal = tracks.codes(cols.track_id[index])
        rows0 = tracks.rows(focal, frame0)
        if (rows0 < 0).any():
            i = int(np.flatnonzero(rows0 < 0)[0])
            raise BadInput(f"track {cols.track_id[index][i]!r} has no box in frame {int(frame0[i])} of log "
                           f"{log_id}: the dataset version no longer matches its logs; rebuild it")
        step_ns = int(round(steps.step_s * 1e9))
        frames = tracks.frames_at(stamp0[:, None] + steps.offsets[None] * step_ns)
        frames[:, steps.history_steps - 1] = frame0  # t0 is the sample's own frame, whatever the jitter
        xy = tracks.positions(focal[:, None], frames)
        history_frames = frames[:, :steps.history_steps]
        others = tracks.others_in(history_frames, focal)
        return {"history": xy[:, :steps.history_steps], "future": xy[:, steps.history_steps:],
                "heading": tracks.yaw_rad[rows0],
                "neighbours": tracks.positions(others[:, :, None], history_frames[:, None, :])}


def collate_prediction(chunks: Sequence[Mapping[str, np.ndarray]]) -> dict[str, torch.Tensor] | PackedBatch:
    """Concatenate chunks of agents into one batch of tensors."""
    return to_batch({name: [chunk[name] for chunk in chunks] for name in chunks[0]})
