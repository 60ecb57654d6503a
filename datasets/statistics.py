"""Statistics of a dataset version, accumulated log by log with FIXED bin edges.

Fixed edges make histograms of any two versions comparable bin for bin (drift), and let a build
stream: each log adds its counts and is dropped. Values beyond the outermost edges are counted in
the first or last bin, so no value is lost; non-finite values are left out (the schema check counts
them).

What is counted: detection counts every box of every sampled frame; prediction counts the sampled
agents at their t0. Track lengths are the span between a track's first and last observation inside
the dataset's windows, for tracks that appear in the samples.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from andon.datasets.spec import SPLITS
from andon.scenarios.records import CLASSES

STATISTICS_VERSION = 1

HISTOGRAM_EDGES: dict[str, np.ndarray] = {
    "box_length_m": np.round(np.arange(0.0, 20.0 + 1e-9, 0.5), 6),
    "box_width_m": np.round(np.arange(0.0, 5.0 + 1e-9, 0.25), 6),
    "box_height_m": np.round(np.arange(0.0, 5.0 + 1e-9, 0.25), 6),
    "range_m": np.round(np.arange(0.0, 200.0 + 1e-9, 5.0), 6),
    "speed_mps": np.round(np.arange(0.0, 40.0 + 1e-9, 1.0), 6),
    "track_length_s": np.array([0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]),
    "points_per_frame": np.concatenate([[0.0], np.round(np.geomspace(100.0, 1e6, 17), 1)]),
}


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin; values below/above the edges fall in the first/last bin, non-finite are dropped."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    return np.bincount(index, minlength=len(edges) - 1).astype(np.int64)


class StatisticsAccumulator:
    """Adds up one version's statistics log by log; `to_dict()` gives the stored document."""

    def __init__(self) -> None:
        self.histograms = {name: np.zeros(len(edges) - 1, dtype=np.int64) for name, edges in HISTOGRAM_EDGES.items()}
        self.classes: Counter[str] = Counter()
        self.classes_by_split: dict[str, Counter[str]] = {name: Counter() for name in SPLITS}
        self.tags: Counter[str] = Counter()
        self.splits: dict[str, dict[str, int]] = {name: {"samples": 0, "logs": 0, "scenarios": 0, "boxes": 0}
                                                  for name in SPLITS}
        self.frames = 0

    def add(self, name: str, values: np.ndarray) -> None:
        self.histograms[name] += bin_counts(values, HISTOGRAM_EDGES[name])

    def add_boxes(self, split: str, boxes: np.ndarray, classes: np.ndarray, velocities_mps: np.ndarray) -> None:
        """Counted boxes (N, 7) in the ego frame with their classes and (N, 2) velocities."""
        if len(boxes) == 0:
            return
        self.add("box_length_m", boxes[:, 3])
        self.add("box_width_m", boxes[:, 4])
        self.add("box_height_m", boxes[:, 5])
        self.add("range_m", np.hypot(boxes[:, 0], boxes[:, 1]))
        self.add("speed_mps", np.hypot(velocities_mps[:, 0], velocities_mps[:, 1]))
        names, counts = np.unique(classes, return_counts=True)
        for cls, n in zip(names.tolist(), counts.tolist(), strict=True):
            self.classes[cls] += n
            self.classes_by_split[split][cls] += n
        self.splits[split]["boxes"] += len(boxes)

    def add_split_counts(self, split: str, samples: int, logs: int, scenarios: int) -> None:
        self.splits[split]["samples"] += samples
        self.splits[split]["logs"] += logs
        self.splits[split]["scenarios"] += scenarios

    def add_tags(self, tags: Iterable[str]) -> None:
        self.tags.update(tags)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATISTICS_VERSION,
            "samples": sum(s["samples"] for s in self.splits.values()),
            "frames": self.frames,
            "splits": {name: dict(counts) for name, counts in self.splits.items()},
            "classes": {cls: int(self.classes.get(cls, 0)) for cls in _class_order(self.classes)},
            "classes_by_split": {name: {cls: int(n) for cls, n in sorted(c.items())}
                                 for name, c in self.classes_by_split.items()},
            "tags": dict(sorted(self.tags.items())),
            "histograms": {name: {"edges": HISTOGRAM_EDGES[name].tolist(), "counts": counts.tolist()}
                           for name, counts in self.histograms.items()},
        }


def _class_order(counts: Counter[str]) -> list[str]:
    """andon's classes first (always present, possibly 0), then anything unexpected, sorted."""
    return [*CLASSES, *sorted(set(counts) - set(CLASSES))]


def histogram_summary(histogram: dict[str, list[float]]) -> dict[str, float | int | None]:
    """n, and approximate median and 90th percentile from the bins (bin centres), for people."""
    counts = np.asarray(histogram["counts"], dtype=np.float64)
    edges = np.asarray(histogram["edges"], dtype=np.float64)
    total = int(counts.sum())
    if total == 0:
        return {"n": 0, "p50": None, "p90": None}
    centres = (edges[:-1] + edges[1:]) / 2
    cumulative = np.cumsum(counts) / total
    return {"n": total, "p50": float(centres[np.searchsorted(cumulative, 0.5)]),
            "p90": float(centres[np.searchsorted(cumulative, 0.9)])}
