"""Importer of ETH/UCY pedestrian trajectories (format "eth-ucy").

Each file holds whitespace-separated rows `frame ped_id x y`, positions in metres on the ground
plane, annotated every 0.4 s (Pellegrini et al. 2009, Lerner et al. 2007). Frame numbers step by a
constant per file (10 in the standard release); the step is the greatest common divisor of the gaps
between the file's frame numbers, and one step is 0.4 s, so `timestamp_ns = frame / step * 0.4 s`.

There is no vehicle in these scenes: each log gets a fixed virtual ego at the world origin with yaw 0
(`ego_pose = (0, 0, 0, 0)`), so the ego frame is the file's world frame. Every pedestrian is a box
0.5 x 0.5 x 1.7 m (length, width, height) standing on the ground (z_centre = 0.85 m), heading along
its velocity (yaw 0 while it stands still). Velocities are finite differences along each track:
central where the track has both neighbours, one-sided at its ends, NaN for a single-sample track.

Class map: every row is a `pedestrian`. One ImportedLog per file, named by the file's stem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from andon.errors import BadInput
from andon.scenarios.importers.common import require_file
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import Frame, wrap_angle

NAME = "eth-ucy"
VERSION = "1"
CLASS_MAP: dict[str, str] = {"pedestrian": "pedestrian"}
COLUMNS = ("frame", "ped_id", "x_m", "y_m")
STEP_S = 0.4  # [s] documented annotation interval of the dataset
STEP_NS = 400_000_000
DEFAULT_FRAME_STEP = 10  # frame numbers per step in the standard release; used for single-frame files
PEDESTRIAN_SIZE_M = (0.5, 0.5, 1.7)  # (length, width, height) [m]
STATIONARY_SPEED_MPS = 0.05  # [m/s] below this the heading is position quantisation noise (1 cm)


def read(path: Path) -> list[ImportedLog]:
    """Read one `.txt` file or every `.txt` file of a directory (sorted by name).

    Raises:
        BadInput: naming the file and the line or problem for a missing, empty or malformed file.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise BadInput(f"{path}: no ETH/UCY .txt files in this directory; point at a file or a folder of them")
        return [read_file(file) for file in files]
    return [read_file(require_file(path, "ETH/UCY trajectory file (frame ped_id x y)"))]


def read_file(path: Path) -> ImportedLog:
    """One ETH/UCY file as a log of 0.4 s frames around a virtual ego at the origin."""
    table = _parse(path)
    frame_step = _frame_step(table["frame"].to_numpy())
    table = table.sort_values(["ped_id", "frame"], kind="stable").reset_index(drop=True)
    table["t_s"] = table["frame"] / frame_step * STEP_S
    velocity = _finite_difference_velocity(table)
    speed = np.hypot(velocity[:, 0], velocity[:, 1])
    moving = np.nan_to_num(speed) >= STATIONARY_SPEED_MPS
    yaw = np.where(moving, np.arctan2(velocity[:, 1], velocity[:, 0]), 0.0)

    n = len(table)
    length_m, width_m, height_m = PEDESTRIAN_SIZE_M
    boxes = np.column_stack([table["x_m"], table["y_m"], np.full(n, height_m / 2), np.full(n, length_m),
                             np.full(n, width_m), np.full(n, height_m), wrap_angle(yaw)])
    order = np.argsort(table["frame"].to_numpy(), kind="stable")  # frame-major, tracks by id within a frame
    frames_sorted = table["frame"].to_numpy()[order]
    starts = np.flatnonzero(np.r_[True, frames_sorted[1:] != frames_sorted[:-1]])
    track_ids = table["ped_id"].astype(str).to_numpy()[order]
    frames = []
    for lo, hi in zip(starts, np.r_[starts[1:], n], strict=True):
        rows = order[lo:hi]
        frames.append(Frame(
            timestamp_ns=int(frames_sorted[lo]) // frame_step * STEP_NS,
            ego_pose=(0.0, 0.0, 0.0, 0.0),
            boxes=boxes[rows], classes=[CLASS_MAP["pedestrian"]] * len(rows), track_ids=track_ids[lo:hi].tolist(),
            velocities_mps=velocity[rows],
        ))
    meta = {"file": path.name, "frame_step": frame_step, "step_s": STEP_S,
            "tracks": int(table["ped_id"].nunique()), "virtual_ego": "origin"}
    return ImportedLog(source=NAME, name=path.stem, frames=frames, meta=meta)


def _parse(path: Path) -> pd.DataFrame:
    """Rows as integer frame/ped_id and float positions; refuse the first bad line by number."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the file ({exc}); check it is an ETH/UCY text file") from exc
    lines = pd.Series(text.splitlines(), dtype=object)
    fields = lines.str.split()
    counts = fields.str.len().fillna(0).astype(int)
    wrong = np.flatnonzero((counts > 0) & (counts != len(COLUMNS)))
    if len(wrong):
        i = int(wrong[0])
        raise BadInput(f"{path}: line {i + 1}: expected {len(COLUMNS)} columns (frame ped_id x y), "
                       f"got {counts[i]}: {lines[i]!r}")
    keep = counts > 0
    if not keep.any():
        raise BadInput(f"{path}: the file has no rows; expected lines `frame ped_id x y`")
    raw = pd.DataFrame(fields[keep].tolist(), index=lines.index[keep], columns=list(COLUMNS))
    values = raw.apply(pd.to_numeric, errors="coerce").astype(np.float64)
    finite = np.isfinite(values.to_numpy())
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        line = int(values.index[row]) + 1
        raise BadInput(f"{path}: line {line}: {COLUMNS[col]} is {raw.iat[row, col]!r}, not a finite number")
    ids = values[["frame", "ped_id"]].to_numpy()
    fractional = np.flatnonzero(np.any(ids != np.round(ids), axis=1))
    if len(fractional):
        line = int(values.index[fractional[0]]) + 1
        raise BadInput(f"{path}: line {line}: frame and ped_id must be whole numbers, got {lines[line - 1]!r}")
    table = pd.DataFrame({"frame": ids[:, 0].astype(np.int64), "ped_id": ids[:, 1].astype(np.int64),
                          "x_m": values["x_m"].to_numpy(), "y_m": values["y_m"].to_numpy()},
                         index=values.index)
    duplicated = table.duplicated(["frame", "ped_id"], keep=False)
    if duplicated.any():
        lines_dup = (table.index[duplicated.to_numpy()] + 1).tolist()[:4]
        first = int(np.flatnonzero(duplicated.to_numpy())[0])
        ped_id, frame = table["ped_id"].iat[first], table["frame"].iat[first]
        raise BadInput(f"{path}: pedestrian {ped_id} appears more than once in frame {frame} "
                       f"(lines {lines_dup}); each (frame, ped_id) must be unique")
    return table


def _frame_step(frames: np.ndarray) -> int:
    """Frame numbers per 0.4 s step: the GCD of the gaps between distinct frame numbers."""
    gaps = np.diff(np.unique(frames))
    return int(np.gcd.reduce(gaps)) if len(gaps) else DEFAULT_FRAME_STEP


def _finite_difference_velocity(table: pd.DataFrame) -> np.ndarray:
    """(N, 2) velocities [m/s] of rows sorted by (ped_id, frame); NaN for single-sample tracks."""
    grouped = table.groupby("ped_id", sort=False)[["x_m", "y_m", "t_s"]]
    after = grouped.shift(-1).to_numpy()
    before = grouped.shift(1).to_numpy()
    here = table[["x_m", "y_m", "t_s"]].to_numpy()
    # Central where both neighbours exist, else one-sided; NaN rows stay NaN (no neighbour at all).
    ahead = np.where(np.isnan(after), here, after)
    behind = np.where(np.isnan(before), here, before)
    dt_s = ahead[:, 2] - behind[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        velocity = (ahead[:, :2] - behind[:, :2]) / dt_s[:, None]
    velocity[dt_s == 0] = np.nan
    return velocity
