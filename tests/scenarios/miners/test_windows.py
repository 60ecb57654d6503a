"""mask_to_windows and attach_tracks: runs, merging, minimum duration, padding clipped to the log."""

from __future__ import annotations

import numpy as np
import pytest

from andon.errors import BadInput
from andon.scenarios.miners.windows import Window, attach_tracks, mask_to_windows

STAMPS = 1_000 + np.arange(20, dtype=np.int64) * 100_000_000  # 10 Hz, 1.9 s


def _mask(*true_ranges: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(len(STAMPS), dtype=bool)
    for lo, hi in true_ranges:
        mask[lo:hi] = True
    return mask


def test_empty_mask_and_empty_log_give_no_windows() -> None:
    assert mask_to_windows(STAMPS, np.zeros(20, dtype=bool)) == []
    assert mask_to_windows(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)) == []


def test_all_true_is_the_whole_log() -> None:
    assert mask_to_windows(STAMPS, np.ones(20, dtype=bool)) == [Window(int(STAMPS[0]), int(STAMPS[-1]))]


def test_runs_become_first_to_last_true_frame() -> None:
    windows = mask_to_windows(STAMPS, _mask((2, 5), (10, 11)))
    assert windows == [Window(int(STAMPS[2]), int(STAMPS[4])), Window(int(STAMPS[10]), int(STAMPS[10]))]
    assert windows[1].duration_s == 0.0


def test_gaps_up_to_merge_gap_merge() -> None:
    mask = _mask((0, 3), (5, 8), (14, 16))  # gaps 0.3 s (frames 2 -> 5) and 0.7 s (7 -> 14)
    assert len(mask_to_windows(STAMPS, mask, merge_gap_s=0.29)) == 3
    merged = mask_to_windows(STAMPS, mask, merge_gap_s=0.3)
    assert merged == [Window(int(STAMPS[0]), int(STAMPS[7])), Window(int(STAMPS[14]), int(STAMPS[15]))]
    assert mask_to_windows(STAMPS, mask, merge_gap_s=0.7) == [Window(int(STAMPS[0]), int(STAMPS[15]))]


def test_min_duration_drops_short_windows_after_merging() -> None:
    mask = _mask((0, 2), (3, 5), (10, 11))  # 0.1 s, 0.1 s (merge to 0.4 s), and an instant
    assert mask_to_windows(STAMPS, mask, min_duration_s=0.4) == []
    assert mask_to_windows(STAMPS, mask, min_duration_s=0.4, merge_gap_s=0.2) == [
        Window(int(STAMPS[0]), int(STAMPS[4]))]
    assert mask_to_windows(STAMPS, mask, min_duration_s=0.1) == [Window(int(STAMPS[0]), int(STAMPS[1])),
                                                                  Window(int(STAMPS[3]), int(STAMPS[4]))]


def test_padding_is_clipped_to_the_log_and_overlaps_merge() -> None:
    mask = _mask((1, 3), (6, 8), (18, 20))
    padded = mask_to_windows(STAMPS, mask, pad_s=0.2)
    # [0.1-0.2, 0.2+0.2] clipped at the start, [0.6-0.2, ...] touches the first and merges; the last clips.
    assert padded == [Window(int(STAMPS[0]), int(STAMPS[9])), Window(int(STAMPS[16]), int(STAMPS[19]))]


def test_uneven_timestamps_measure_real_time() -> None:
    stamps = np.array([0, 1, 2, 3, 50, 51], dtype=np.int64) * 100_000_000  # a 4.7 s hole in the data
    mask = np.array([True, True, False, False, True, True])
    assert mask_to_windows(stamps, mask, merge_gap_s=1.0) == [Window(0, 100_000_000), Window(5_000_000_000,
                                                                                             5_100_000_000)]
    assert mask_to_windows(stamps, np.ones(6, dtype=bool), min_duration_s=5.0) == [Window(0, 5_100_000_000)]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(BadInput, match="one per frame"):
        mask_to_windows(STAMPS, np.ones(3, dtype=bool))
    with pytest.raises(BadInput, match="min_duration_s"):
        mask_to_windows(STAMPS, np.ones(20, dtype=bool), min_duration_s=-1.0)
    with pytest.raises(BadInput, match="pad_s"):
        mask_to_windows(STAMPS, np.ones(20, dtype=bool), pad_s=float("nan"))


def test_attach_tracks_collects_sorted_unique_ids_per_window() -> None:
    windows = [Window(0, 10), Window(20, 30)]
    stamps = np.array([0, 5, 5, 10, 15, 20, 25, 40])
    ids = np.array(["b", "a", "b", "c", "z", "d", "d", "y"])
    hit = np.ones(8, dtype=bool)
    assert attach_tracks(windows, stamps, ids, hit) == [Window(0, 10, ("a", "b", "c")), Window(20, 30, ("d",))]
    hit[1] = False  # "a" made no signal; "z" and "y" lie outside every window
    assert attach_tracks(windows, stamps, ids, hit)[0].track_ids == ("b", "c")
    assert attach_tracks(windows, stamps, ids, np.zeros(8, dtype=bool)) == windows
    assert attach_tracks([], stamps, ids, hit) == []


def test_short_runs_cut_by_the_log_can_be_kept() -> None:
    mask = _mask((0, 1), (8, 9), (19, 20))  # one frame at the start, in the middle and at the end
    assert mask_to_windows(STAMPS, mask, min_duration_s=0.5) == []
    kept = mask_to_windows(STAMPS, mask, min_duration_s=0.5, keep_cut_short=True)
    assert kept == [Window(int(STAMPS[0]), int(STAMPS[0])), Window(int(STAMPS[19]), int(STAMPS[19]))]
