"""CLEAR MOT tracking metrics (Bernardin & Stiefelhagen 2008): MOTA, MOTP, ID switches.

Per frame, ground-truth objects and hypotheses (tracker outputs) are matched on BEV centre distance,
a pair only when strictly closer than `threshold_m`:
1. a ground-truth object keeps last frame's hypothesis when both are present and still close enough;
2. the rest are matched by the Hungarian algorithm on distance.
A matched object whose hypothesis differs from the one it was last matched to is an ID switch.
MOTA = 1 - (misses + false positives + ID switches) / ground-truth objects; MOTP is the mean
distance [m] of matched pairs. The loop runs over frames; each frame is vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from andon.errors import BadInput

_FORBIDDEN = 1e9


def clear_mot(gt_ids: Sequence[Sequence[str]], gt_xy_m: Sequence[np.ndarray], hyp_ids: Sequence[Sequence[Any]],
              hyp_xy_m: Sequence[np.ndarray], threshold_m: float = 2.0) -> dict[str, float | int]:
    """CLEAR MOT over a sequence of frames.

    Args:
        gt_ids: per frame, the ground-truth object ids.
        gt_xy_m: per frame, (G, 2) their BEV centres [m].
        hyp_ids: per frame, the hypotheses' track ids.
        hyp_xy_m: per frame, (P, 2) their BEV centres [m] (same frame as the ground truth).
        threshold_m: a pair matches only when strictly closer than this.

    Returns:
        {"mota", "motp_m", "id_switches", "misses", "false_positives", "matches", "gt_objects",
        "gt_tracks", "fragmented_tracks"} — fragmented_tracks counts ground-truth tracks matched
        to more than one hypothesis id over the sequence.

    Raises:
        BadInput: per-frame lists of different lengths, or ids and centres that disagree.
    """
    n_frames = len(gt_ids)
    if not (len(gt_xy_m) == len(hyp_ids) == len(hyp_xy_m) == n_frames):
        raise BadInput("clear_mot needs the same number of frames of gt ids, gt centres, hypothesis ids and "
                       "hypothesis centres")
    last: dict[Any, Any] = {}
    seen: dict[Any, set[Any]] = {}
    all_gt: set[Any] = set()
    misses = false_positives = switches = matches = total = 0
    distance_sum = 0.0
    for frame in range(n_frames):
        g_ids, h_ids = list(gt_ids[frame]), list(hyp_ids[frame])
        g_xy = np.asarray(gt_xy_m[frame], dtype=np.float64).reshape(-1, 2)
        h_xy = np.asarray(hyp_xy_m[frame], dtype=np.float64).reshape(-1, 2)
        if len(g_ids) != len(g_xy) or len(h_ids) != len(h_xy):
            raise BadInput(f"frame {frame}: {len(g_ids)} gt ids for {len(g_xy)} centres, {len(h_ids)} hypothesis "
                           f"ids for {len(h_xy)} centres")
        total += len(g_ids)
        all_gt.update(g_ids)
        distance = np.sqrt(((g_xy[:, None, :] - h_xy[None, :, :]) ** 2).sum(-1))  # (G, P)
        close = distance < threshold_m
        pairs: list[tuple[int, int]] = []
        hyp_index = {h: j for j, h in enumerate(h_ids)}
        free_g = np.ones(len(g_ids), dtype=bool)
        free_h = np.ones(len(h_ids), dtype=bool)
        for i, g in enumerate(g_ids):  # keep last frame's correspondences that still hold
            j = hyp_index.get(last.get(g))
            if j is not None and close[i, j] and free_h[j]:
                pairs.append((i, j))
                free_g[i] = free_h[j] = False
        allowed = close & free_g[:, None] & free_h[None, :]
        if allowed.any():
            rows, cols = linear_sum_assignment(np.where(allowed, distance, _FORBIDDEN))
            pairs += [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if allowed[i, j]]
        for i, j in pairs:
            g, h = g_ids[i], h_ids[j]
            if g in last and last[g] != h:
                switches += 1
            last[g] = h
            seen.setdefault(g, set()).add(h)
            distance_sum += float(distance[i, j])
        matches += len(pairs)
        misses += len(g_ids) - len(pairs)
        false_positives += len(h_ids) - len(pairs)
    return {"mota": 1.0 - (misses + false_positives + switches) / total if total else float("nan"),
            "motp_m": distance_sum / matches if matches else float("nan"),
            "id_switches": switches, "misses": misses, "false_positives": false_positives, "matches": matches,
            "gt_objects": total, "gt_tracks": len(all_gt),
            "fragmented_tracks": sum(1 for hyps in seen.values() if len(hyps) > 1)}
