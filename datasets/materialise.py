"""From a DatasetSpec to samples: run the query, then enumerate samples log by log.

Detection sample = (log_id, frame_index, timestamp_ns): every `stride`-th frame with lidar points
inside the scenarios' windows. Many logs have points only on some frames (the AV2 sample has one
sweep in 156 annotated frames), so eligibility is decided per frame from the log's manifest.

Prediction sample = (log_id, frame_index, timestamp_ns, track_id): an agent at t0 (every `stride`-th
frame inside the windows) observed at every history and horizon timestamp t0 + k * step_s, each
matched to the log's nearest frame within half the log's native frame period. The timestamps around
t0 may lie outside the window (a 3 s mined window still yields samples with an 8 s context). The
match is vectorised over the log's columnar boxes table; no Python loop over boxes.

Logs are processed one at a time (annotations only; lidar points are never read, only the point
count in each sweep's header), so memory stays flat in the number of logs.
"""

from __future__ import annotations

import sys
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from andon.datasets.sanity import SanityAccumulator
from andon.datasets.spec import SPLITS, DatasetSpec, QuerySpec, SamplingSpec, query_text
from andon.datasets.split import assign_splits
from andon.datasets.statistics import StatisticsAccumulator
from andon.errors import BadInput
from andon.ids import hash_json
from andon.scenarios.blobstore import BlobStore
from andon.scenarios.catalog import Catalog
from andon.scenarios.logstore import boxes_table, ego_poses, load_log

# In memory a sample names its log by index into Materialised.log_ids (4 bytes, not two strings per
# row); the stored tables spell out log_id and log_manifest (andon.datasets.publish.write_samples).
SAMPLE_COLUMNS = ("log_index", "frame_index", "timestamp_ns")
PREDICTION_COLUMNS = (*SAMPLE_COLUMNS, "track_id")
MATCH_CHUNK_CELLS = 4_000_000  # rows x timestamps per matching chunk: bounds the int64 temporaries (~32 MB)


@dataclass(frozen=True, slots=True)
class SelectedScenario:
    """A scenario as the dataset uses it: its (possibly clipped) window, tags and QA at build time."""

    scenario_id: str
    log_id: str
    t_start_ns: int
    t_end_ns: int
    tags: tuple[str, ...]
    qa_score: float | None

    def to_dict(self, split: str) -> dict[str, Any]:
        return {"scenario_id": self.scenario_id, "log_id": self.log_id, "t_start_ns": self.t_start_ns,
                "t_end_ns": self.t_end_ns, "tags": list(self.tags), "qa_score": self.qa_score, "split": split}


@dataclass
class Materialised:
    """Everything a version is made of, before ids, checks and storage."""

    scenarios: list[dict[str, Any]]
    log_ids: list[str]  # sorted; a sample's log_index points here
    log_manifests: dict[str, str]
    log_splits: dict[str, str]
    pinned_test: dict[str, Any]
    samples: dict[str, dict[str, np.ndarray]]  # split -> column (SAMPLE_COLUMNS) -> array
    statistics: dict[str, Any]
    sanity: dict[str, Any]
    columns: tuple[str, ...] = field(default=SAMPLE_COLUMNS)


def materialise(catalog: Catalog, spec: DatasetSpec, pinned_ids: list[str], progress: bool = True) -> Materialised:
    """Query, split and sample the catalog for `spec`; streams log by log.

    Raises:
        BadInput: for an unknown scenario id in include/exclude/pinned lists, or a query matching nothing.
    """
    selected, pinned = select_scenarios(catalog, spec.query, pinned_ids)
    if not selected:
        raise BadInput(f"the query {query_text(spec.query)!r} matches no active scenario: check "
                       f"`andon scenarios search {query_text(spec.query)}` and the dataset's query")
    by_log: dict[str, list[SelectedScenario]] = {}
    for scenario in selected:
        by_log.setdefault(scenario.log_id, []).append(scenario)
    pinned_logs = {s.log_id for s in selected if s.scenario_id in set(pinned)}
    splits = assign_splits(by_log, spec.split, pinned_logs)

    stats, sanity = StatisticsAccumulator(), SanityAccumulator()
    columns = PREDICTION_COLUMNS if spec.task == "prediction" else SAMPLE_COLUMNS
    parts: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in SPLITS}
    manifests: dict[str, str] = {}
    log_ids = sorted(by_log)
    for log_index, log_id in enumerate(tqdm(log_ids, desc=f"dataset {spec.name}", unit="log",
                                            disable=None if progress else True, file=sys.stderr)):
        windows = by_log[log_id]
        split = splits[log_id]
        row = catalog.log_row(log_id)
        manifests[log_id] = row["manifest"]
        samples = _log_samples(catalog.blobs, log_id, row["manifest"], windows, spec, split, stats, sanity)
        samples["log_index"] = np.full(len(samples["frame_index"]), log_index, dtype=np.int32)
        parts[split].append(samples)
        n_samples = len(samples["frame_index"])
        stats.add_split_counts(split, samples=n_samples, logs=1, scenarios=len(windows))
        for scenario in windows:
            stats.add_tags(scenario.tags)

    merged = {name: _concat(parts[name], columns) for name in SPLITS}
    scenarios = [s.to_dict(splits[s.log_id]) for s in selected]
    pinned_doc = {"sha256": hash_json(sorted(pinned)), "scenario_ids": sorted(pinned)} if pinned else None
    return Materialised(scenarios=scenarios, log_ids=log_ids, log_manifests=manifests, log_splits=splits, pinned_test=pinned_doc,
                        samples=merged, statistics=stats.to_dict(), sanity=sanity.to_dict(), columns=columns)


def select_scenarios(catalog: Catalog, query: QuerySpec, pinned_ids: list[str]) -> tuple[list[SelectedScenario],
                                                                                        list[str]]:
    """The scenarios of the dataset (sorted by id) and the resolved pinned ids.

    The query streams from the catalog page by page. The time range clips query matches; included and
    pinned scenarios are taken whole, even when retired (they were named explicitly).
    """
    excluded = {catalog.scenario(sid).scenario_id for sid in query.exclude_ids}
    chosen: dict[str, SelectedScenario] = {}
    for scenario in catalog.iter_search(query_text(query)):
        if scenario.scenario_id in excluded:
            continue
        start, end = scenario.t_start_ns, scenario.t_end_ns
        if query.t_start_ns is not None:
            start = max(start, query.t_start_ns)
        if query.t_end_ns is not None:
            end = min(end, query.t_end_ns)
        if start > end:
            continue
        chosen[scenario.scenario_id] = _selected(scenario, start, end)
    pinned: list[str] = []
    for sid in [*query.include_ids, *pinned_ids]:
        scenario = catalog.scenario(sid)
        if scenario.scenario_id in excluded:
            raise BadInput(f"scenario {sid} is both excluded (dataset.query.exclude_ids) and included or pinned: "
                           f"keep one")
        chosen.setdefault(scenario.scenario_id, _selected(scenario, scenario.t_start_ns, scenario.t_end_ns))
    for sid in pinned_ids:
        pinned.append(catalog.scenario(sid).scenario_id)
    return [chosen[k] for k in sorted(chosen)], sorted(set(pinned))


def _selected(scenario: Any, start: int, end: int) -> SelectedScenario:
    qa = None if np.isnan(scenario.qa_score) else float(scenario.qa_score)
    return SelectedScenario(scenario.scenario_id, scenario.log_id, int(start), int(end), tuple(sorted(scenario.tags)),
                            qa)


def window_mask(timestamps_ns: np.ndarray, windows: list[SelectedScenario]) -> np.ndarray:
    """Frames inside any window: windows started minus windows ended before each timestamp."""
    starts = np.sort(np.array([w.t_start_ns for w in windows], dtype=np.int64))
    ends = np.sort(np.array([w.t_end_ns for w in windows], dtype=np.int64))
    return (np.searchsorted(starts, timestamps_ns, side="right") - np.searchsorted(ends, timestamps_ns, side="left")) > 0


def match_frames(timestamps_ns: np.ndarray, targets_ns: np.ndarray, tolerance_ns: float) -> np.ndarray:
    """Index of the nearest frame to each target, -1 where none lies strictly within the tolerance."""
    n = len(timestamps_ns)
    if n == 0:
        return np.full(targets_ns.shape, -1, dtype=np.int64)
    right = np.clip(np.searchsorted(timestamps_ns, targets_ns), 0, n - 1)
    left = np.clip(right - 1, 0, n - 1)
    d_left = np.abs(targets_ns - timestamps_ns[left])
    d_right = np.abs(timestamps_ns[right] - targets_ns)
    best = np.where(d_right < d_left, right, left)
    return np.where(np.minimum(d_left, d_right) < tolerance_ns, best, -1)


def native_period_ns(timestamps_ns: np.ndarray) -> float | None:
    """The log's frame period: the median positive gap (robust to dropped frames); None for one frame."""
    gaps = np.diff(timestamps_ns)
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if len(gaps) else None


def points_count(blobs: BlobStore, digest: str) -> int:
    """Points in a sweep, read from the .npy header inside its blob (the points themselves are not read)."""
    path = blobs.path(digest, ".npz")
    try:
        with zipfile.ZipFile(path) as archive, archive.open("points.npy") as handle:
            version = np.lib.format.read_magic(handle)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, _ = reader(handle)
    except FileNotFoundError as exc:
        raise BadInput(f"blob {digest} is missing from {blobs.root}: run `dvc pull` in the workspace") from exc
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise BadInput(f"blob {path} is corrupt ({exc}): run `dvc checkout` or re-import its log") from exc
    return int(shape[0]) if shape else 0


def _log_samples(blobs: BlobStore, log_id: str, manifest_digest: str, windows: list[SelectedScenario],
                 spec: DatasetSpec, split: str, stats: StatisticsAccumulator,
                 sanity: SanityAccumulator) -> dict[str, np.ndarray]:
    log = load_log(blobs, log_id, manifest_digest)
    timestamps_ns, poses = ego_poses(log)
    table = boxes_table(log)
    in_window = window_mask(timestamps_ns, windows)
    box_in_window = in_window[table["frame_index"]]
    _, codes = np.unique(table["track_ids"], return_inverse=True)  # track id -> small int, once per log
    codes = codes.astype(np.int64).ravel()
    sanity.add_log(log_id, timestamps_ns, poses, table["boxes"][box_in_window], table["classes"][box_in_window])
    if spec.task == "detection":
        points = blobs.get_json(manifest_digest)["points"]
        frames, rows = _detection(blobs, points, in_window, table, spec.sampling, stats)
        sanity.add_range(table["boxes"][rows], spec.sampling.point_cloud_range_m)
        track = None
    else:
        frames, rows = _prediction(timestamps_ns, in_window, table, codes, spec.sampling)
        track = table["track_ids"][rows]
    sanity.add_sample_frames(log_id, frames, len(timestamps_ns))
    stats.frames += len(np.unique(frames))
    stats.add_boxes(split, table["boxes"][rows], table["classes"][rows], table["velocities_mps"][rows])
    stats.add("track_length_s", _track_lengths_s(table["timestamp_ns"], codes, box_in_window, rows))
    samples = {"frame_index": frames.astype(np.int64), "timestamp_ns": timestamps_ns[frames].astype(np.int64)}
    if track is not None:
        samples["track_id"] = track.astype(np.str_)
    return samples


def _detection(blobs: BlobStore, points: list[str | None], in_window: np.ndarray, table: dict[str, np.ndarray],
               sampling: SamplingSpec, stats: StatisticsAccumulator) -> tuple[np.ndarray, np.ndarray]:
    """Sampled frames (every stride-th in-window frame with points) and the rows of their boxes."""
    candidates = [i for i in np.flatnonzero(in_window).tolist() if points[i] is not None]
    counts = np.array([points_count(blobs, points[i]) for i in candidates], dtype=np.int64)
    eligible = np.array(candidates, dtype=np.int64)[counts > 0]
    frames = eligible[::sampling.stride]
    stats.add("points_per_frame", counts[counts > 0][::sampling.stride])
    rows = np.flatnonzero(np.isin(table["frame_index"], frames))
    return frames, rows


def _prediction(timestamps_ns: np.ndarray, in_window: np.ndarray, table: dict[str, np.ndarray], codes: np.ndarray,
                sampling: SamplingSpec) -> tuple[np.ndarray, np.ndarray]:
    """(t0 frame per sample, box row per sample) of agents seen at every history and horizon timestamp."""
    empty = np.zeros(0, dtype=np.int64)
    period_ns = native_period_ns(timestamps_ns)
    if period_ns is None:
        return empty, empty
    n_frames = len(timestamps_ns)
    step_ns = int(round(sampling.step_s * 1e9))
    offsets_ns = np.arange(-(sampling.history_steps - 1), sampling.horizon_steps + 1, dtype=np.int64) * step_ns
    candidates = np.flatnonzero(in_window)[::sampling.stride]
    matched = match_frames(timestamps_ns, timestamps_ns[candidates][:, None] + offsets_ns[None, :], period_ns / 2)
    complete = (matched >= 0).all(axis=1)
    candidates, matched = candidates[complete], matched[complete]
    slot = np.full(n_frames, -1, dtype=np.int64)  # frame index -> row of `matched`
    slot[candidates] = np.arange(len(candidates))

    is_agent = np.isin(table["classes"], np.array(sampling.agent_classes))
    # A track is "present" in a frame when it has a box of an agent class there.
    present = np.unique(codes[is_agent] * n_frames + table["frame_index"][is_agent])
    rows = np.flatnonzero(is_agent & (slot[table["frame_index"]] >= 0))
    keep = np.zeros(len(rows), dtype=bool)
    chunk = max(1, MATCH_CHUNK_CELLS // len(offsets_ns))
    for lo in range(0, len(rows), chunk):
        part = rows[lo:lo + chunk]
        keys = codes[part][:, None] * n_frames + matched[slot[table["frame_index"][part]]]
        found = np.searchsorted(present, keys)
        hit = present[np.clip(found, 0, len(present) - 1)] == keys
        keep[lo:lo + chunk] = hit.all(axis=1)
    rows = rows[keep]
    if sampling.max_agents_per_frame is not None and len(rows):
        rows = _nearest_per_frame(rows, table, sampling.max_agents_per_frame)
    return table["frame_index"][rows], rows


def _nearest_per_frame(rows: np.ndarray, table: dict[str, np.ndarray], limit: int) -> np.ndarray:
    """Keep the `limit` agents nearest the ego in each frame (ties by track id), in (frame, track) order."""
    frames = table["frame_index"][rows]
    boxes = table["boxes"][rows]
    range_m = np.hypot(boxes[:, 0], boxes[:, 1])
    order = np.lexsort((table["track_ids"][rows], range_m, frames))
    sorted_frames = frames[order]
    starts = np.flatnonzero(np.r_[True, sorted_frames[1:] != sorted_frames[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    kept = rows[order[rank < limit]]
    return kept[np.lexsort((table["track_ids"][kept], table["frame_index"][kept]))]


def _track_lengths_s(box_timestamps_ns: np.ndarray, codes: np.ndarray, box_in_window: np.ndarray,
                     rows: np.ndarray) -> np.ndarray:
    """Span [s] of each sampled track's observations inside the windows."""
    if len(rows) == 0:
        return np.zeros(0)
    n_tracks = int(codes.max()) + 1
    first = np.full(n_tracks, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n_tracks, np.iinfo(np.int64).min, dtype=np.int64)
    stamps = box_timestamps_ns[box_in_window]
    np.minimum.at(first, codes[box_in_window], stamps)
    np.maximum.at(last, codes[box_in_window], stamps)
    sampled = np.unique(codes[rows])
    return (last[sampled] - first[sampled]) / 1e9


_EMPTY_DTYPES = {"log_index": np.int32, "frame_index": np.int64, "timestamp_ns": np.int64, "track_id": np.str_}


def _concat(parts: list[dict[str, np.ndarray]], columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not parts:
        return {name: np.zeros(0, dtype=_EMPTY_DTYPES[name]) for name in columns}
    return {name: np.concatenate([p[name] for p in parts]) for name in columns}

