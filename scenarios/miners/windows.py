"""Windows of a log and the conversion of a per-frame boolean signal into windows.

A window is a closed time interval [t_start_ns, t_end_ns] of one log. A run of consecutive true
frames i..j becomes the window [t_i, t_j]; its duration is t_j - t_i, so a single true frame is a
zero-length window at its timestamp. Everything here is vectorised over frames (np.diff on the mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from andon.errors import BadInput

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Window:
    """A mined time window of a log; `track_ids` are the tracks that made the signal true (sorted)."""

    t_start_ns: int
    t_end_ns: int
    track_ids: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return (self.t_end_ns - self.t_start_ns) / NS_PER_S


def _ns(seconds: float, what: str) -> int:
    if not np.isfinite(seconds) or seconds < 0:
        raise BadInput(f"{what} must be a finite number of seconds >= 0, got {seconds!r}")
    return int(round(seconds * NS_PER_S))


def mask_to_windows(timestamps_ns: np.ndarray, mask: np.ndarray, min_duration_s: float = 0.0,
                    merge_gap_s: float = 0.0, pad_s: float = 0.0, keep_cut_short: bool = False) -> list[Window]:
    """Turn a per-frame boolean signal into windows.

    Steps, in order: runs of true frames become [t_first, t_last]; runs whose gap (start of the next
    minus end of the previous) is at most `merge_gap_s` are merged; windows shorter than
    `min_duration_s` are dropped; the rest are widened by `pad_s` on both sides, clipped to the log
    ([timestamps_ns[0], timestamps_ns[-1]]), and windows that then overlap or touch are merged.

    Args:
        timestamps_ns: (F,) strictly increasing frame timestamps [ns].
        mask: (F,) bool, True where the signal holds.
        min_duration_s: shortest window kept [s], measured before padding.
        merge_gap_s: largest gap between two runs that still merges them [s].
        pad_s: widening on each side [s].
        keep_cut_short: keep windows that touch the log's first or last frame whatever their
            duration: the log cut them, so how long they really lasted is unknown. For miners whose
            minimum duration only guards against label noise, not for those whose definition has one.

    Returns:
        Sorted, disjoint windows with empty `track_ids`.

    Raises:
        BadInput: shapes differ, or a duration is negative or not finite.
    """
    stamps = np.asarray(timestamps_ns, dtype=np.int64).reshape(-1)
    signal = np.asarray(mask, dtype=bool).reshape(-1)
    if stamps.shape != signal.shape:
        raise BadInput(f"mask has {signal.size} frames but there are {stamps.size} timestamps: give one per frame")
    min_ns, gap_ns, pad_ns = (_ns(min_duration_s, "min_duration_s"), _ns(merge_gap_s, "merge_gap_s"),
                              _ns(pad_s, "pad_s"))
    if not signal.any():
        return []
    edges = np.diff(signal.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    first = np.flatnonzero(edges == 1)  # index of each run's first true frame
    last = np.flatnonzero(edges == -1) - 1  # index of each run's last true frame
    starts, ends = stamps[first], stamps[last]
    starts, ends = _merge(starts, ends, gap_ns)
    keep = (ends - starts) >= min_ns
    if keep_cut_short:
        keep |= (starts == stamps[0]) | (ends == stamps[-1])
    starts, ends = starts[keep], ends[keep]
    if pad_ns:
        starts = np.maximum(starts - pad_ns, stamps[0])
        ends = np.minimum(ends + pad_ns, stamps[-1])
        starts, ends = _merge(starts, ends, 0)
    return [Window(int(s), int(e)) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


def _merge(starts: np.ndarray, ends: np.ndarray, gap_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge sorted intervals whose gap to the previous one is at most `gap_ns`."""
    if len(starts) <= 1:
        return starts, ends
    # Running maximum of ends: a later interval is measured against everything before it.
    reach = np.maximum.accumulate(ends)
    opens = np.r_[True, starts[1:] - reach[:-1] > gap_ns]
    group_first = np.flatnonzero(opens)
    group_last = np.r_[group_first[1:], len(starts)] - 1
    return starts[group_first], reach[group_last]


def attach_tracks(windows: list[Window], box_timestamps_ns: np.ndarray, box_track_ids: np.ndarray,
                  hit: np.ndarray) -> list[Window]:
    """Give each window the sorted ids of the tracks whose boxes made the signal true inside it.

    Args:
        windows: sorted, disjoint windows (as `mask_to_windows` returns them).
        box_timestamps_ns: (N,) timestamp of each box [ns].
        box_track_ids: (N,) track id of each box.
        hit: (N,) bool, True for the boxes that made the signal true.
    """
    if not windows:
        return windows
    selected = np.flatnonzero(np.asarray(hit, dtype=bool))
    if len(selected) == 0:
        return windows
    starts = np.array([w.t_start_ns for w in windows], dtype=np.int64)
    ends = np.array([w.t_end_ns for w in windows], dtype=np.int64)
    stamps = np.asarray(box_timestamps_ns, dtype=np.int64)[selected]
    ids = np.asarray(box_track_ids).astype(str)[selected]
    which = np.searchsorted(starts, stamps, side="right") - 1
    inside = (which >= 0) & (stamps <= ends[np.maximum(which, 0)])
    which, ids = which[inside], ids[inside]
    # One sort by (window, track id), then drop repeats: each (window, track) pair once.
    order = np.lexsort((ids, which))
    which, ids = which[order], ids[order]
    fresh = np.r_[True, (which[1:] != which[:-1]) | (ids[1:] != ids[:-1])] if len(ids) else np.zeros(0, bool)
    which, ids = which[fresh], ids[fresh]
    bounds = np.searchsorted(which, np.arange(len(windows) + 1))
    return [Window(w.t_start_ns, w.t_end_ns, tuple(ids[bounds[k]:bounds[k + 1]].tolist()))
            for k, w in enumerate(windows)]
