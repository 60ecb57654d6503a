"""Reading and validating the evaluation files of `andon eval` (DESIGN.md, "Evaluation files").

Detection: `{"frames": [{"frame_id": str, "boxes": [[x, y, z, l, w, h, yaw], ...], "classes": [str, ...],
"scores": [float, ...], "velocities": [[vx, vy], ...]}]}`; `scores` only in predictions (ignored in
ground truth), `velocities` optional. Prediction: ground truth `{"agents": [{"agent_id": str,
"future": [[x, y], ...], "class": str}]}` (`class` optional) and predictions `{"agents": [{"agent_id": str,
"modes": [[[x, y], ...], ...], "probs": [float, ...]}]}`. Units: metres, radians, metres per second.

Every problem raises `BadInput` naming the source (the file), the frame or agent and what is wrong,
so the CLI exits 2 with a message a user can act on. This module only validates and converts to
numpy; the metric modules build their records from what it returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.scenarios.records import BOX_DIM, CLASSES

_CLASS_CODE = {name: code for code, name in enumerate(CLASSES)}


def load_json(path: str | Path) -> Any:
    """Read one JSON document; BadInput if the file is missing, unreadable or not JSON."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: no such file; give the path of an evaluation JSON file")
    if path.is_dir():
        raise BadInput(f"{path}: is a directory; give the path of an evaluation JSON file")
    try:
        with path.open("r", encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not JSON (not UTF-8 text: {exc.reason})") from exc
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror})") from exc


def class_code(name: Any, where: str) -> int:
    """The index of `name` in andon's CLASSES; BadInput naming `where` otherwise."""
    code = _CLASS_CODE.get(name) if isinstance(name, str) else None
    if code is None:
        raise BadInput(f"{where}: unknown class {name!r}; andon's classes are {', '.join(CLASSES)}")
    return code


def _entries(doc: Any, key: str, source: str) -> list[Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
        raise BadInput(f"{source}: expected a JSON object with a list under {key!r} (see DESIGN.md, "
                       f"'Evaluation files')")
    return doc[key]


def _identifier(entry: Any, key: str, index: int, source: str, seen: set[str]) -> str:
    what = key.split("_")[0]
    if not isinstance(entry, dict):
        raise BadInput(f"{source}: {what} #{index} is not a JSON object")
    ident = entry.get(key)
    if not isinstance(ident, str) or not ident:
        raise BadInput(f"{source}: {what} #{index} has no {key} string (got {ident!r})")
    if ident in seen:
        raise BadInput(f"{source}: duplicate {key} {ident!r}; each {what} must appear once")
    seen.add(ident)
    return ident


def _array(value: Any, shape_tail: tuple[int, ...], where: str, field: str, layout: str) -> np.ndarray:
    """`value` as float64 with trailing dims `shape_tail` (an empty list is fine); finite."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"{where}: {field} must be {layout} of numbers ({exc})") from exc
    if array.size == 0 and array.ndim == 1:
        array = array.reshape((0, *shape_tail))
    if array.ndim != 1 + len(shape_tail) or array.shape[1:] != shape_tail:
        raise BadInput(f"{where}: {field} must be {layout}, got an array of shape {array.shape}")
    if not np.isfinite(array).all():
        raise BadInput(f"{where}: {field} holds NaN or infinity; every value must be a finite number")
    return array


@dataclass(frozen=True, slots=True, eq=False)
class DetectionColumns:
    """The frames of a detection file, flattened: one row per box."""

    frame_ids: tuple[str, ...]
    frame_index: np.ndarray  # (N,) int64 into frame_ids
    boxes: np.ndarray  # (N, 7) float64: x, y, z_centre, l, w, h [m], yaw [rad]
    class_index: np.ndarray  # (N,) int64 into CLASSES
    scores: np.ndarray | None  # (N,) float64, None for ground truth
    velocities_mps: np.ndarray | None  # (N, 2) float64, NaN for frames that give none; None if no frame does


def detection_columns(doc: Any, source: str, predictions: bool) -> DetectionColumns:
    """Validate a detection document and flatten it.

    Args:
        doc: the parsed JSON document.
        source: what to name in messages (usually the file path).
        predictions: True for predictions (every frame needs `scores`), False for ground truth
            (any `scores` are ignored).

    Raises:
        BadInput: naming the source, the frame and the problem.
    """
    frames = _entries(doc, "frames", source)
    seen: set[str] = set()
    frame_ids: list[str] = []
    boxes: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    velocities: list[np.ndarray | None] = []
    for index, frame in enumerate(frames):
        frame_id = _identifier(frame, "frame_id", index, source, seen)
        where = f"{source}: frame {frame_id!r}"
        frame_boxes = _array(frame.get("boxes", []), (BOX_DIM,), where, "boxes",
                             "a list of [x, y, z, l, w, h, yaw]")
        n = len(frame_boxes)
        if (frame_boxes[:, 3:6] <= 0).any():
            bad = int(np.flatnonzero((frame_boxes[:, 3:6] <= 0).any(axis=1))[0])
            raise BadInput(f"{where}: box #{bad} has a non-positive size {frame_boxes[bad, 3:6].tolist()}; "
                           f"length, width and height must be > 0 m")
        classes = frame.get("classes", [])
        if not isinstance(classes, list) or len(classes) != n:
            got = len(classes) if isinstance(classes, list) else type(classes).__name__
            raise BadInput(f"{where}: {n} boxes but {got} classes; give one class per box")
        codes.append(np.array([class_code(c, f"{where}, box #{i}") for i, c in enumerate(classes)],
                              dtype=np.int64))
        if predictions:
            if "scores" not in frame:
                raise BadInput(f"{where}: no scores; predictions need one score per box")
            frame_scores = _array(frame["scores"], (), where, "scores", "a list")
            if len(frame_scores) != n:
                raise BadInput(f"{where}: {n} boxes but {len(frame_scores)} scores; give one score per box")
            scores.append(frame_scores)
        if frame.get("velocities") is not None:
            frame_vel = _array(frame["velocities"], (2,), where, "velocities", "a list of [vx, vy]")
            if len(frame_vel) != n:
                raise BadInput(f"{where}: {n} boxes but {len(frame_vel)} velocities; give one per box")
            velocities.append(frame_vel)
        else:
            velocities.append(None)
        frame_ids.append(frame_id)
        boxes.append(frame_boxes)
    counts = np.array([len(b) for b in boxes], dtype=np.int64)
    has_velocities = any(v is not None for v in velocities)
    return DetectionColumns(
        frame_ids=tuple(frame_ids),
        frame_index=np.repeat(np.arange(len(frame_ids), dtype=np.int64), counts),
        boxes=np.concatenate(boxes) if boxes else np.zeros((0, BOX_DIM)),
        class_index=np.concatenate(codes) if codes else np.zeros(0, dtype=np.int64),
        scores=(np.concatenate(scores) if scores else np.zeros(0)) if predictions else None,
        # A frame without velocities contributes NaN: unknown, skipped by the velocity error (as nuScenes).
        velocities_mps=np.concatenate([v if v is not None else np.full((len(b), 2), np.nan)
                                       for v, b in zip(velocities, boxes, strict=True)])
        if has_velocities else None,
    )


@dataclass(frozen=True, slots=True, eq=False)
class AgentFuture:
    agent_id: str
    future_m: np.ndarray  # (T, 2) float64, T >= 1
    class_index: int | None


@dataclass(frozen=True, slots=True, eq=False)
class AgentModes:
    agent_id: str
    modes_m: np.ndarray  # (K, T, 2) float64, K >= 1, T >= 1
    probs: np.ndarray  # (K,) float64


def future_agents(doc: Any, source: str) -> list[AgentFuture]:
    """Validate a prediction ground-truth document: one future of >= 1 [x, y] point per agent."""
    agents = []
    seen: set[str] = set()
    for index, entry in enumerate(_entries(doc, "agents", source)):
        agent_id = _identifier(entry, "agent_id", index, source, seen)
        where = f"{source}: agent {agent_id!r}"
        if "future" not in entry:
            raise BadInput(f"{where}: no future; give the ground-truth positions as [[x, y], ...]")
        future = _array(entry["future"], (2,), where, "future", "a list of [x, y]")
        if len(future) == 0:
            raise BadInput(f"{where}: the future is empty; give at least one [x, y] point")
        cls = class_code(entry["class"], where) if entry.get("class") is not None else None
        agents.append(AgentFuture(agent_id, future, cls))
    return agents


def mode_agents(doc: Any, source: str) -> list[AgentModes]:
    """Validate a predictions document: K >= 1 modes of equal length and K probabilities per agent."""
    agents = []
    seen: set[str] = set()
    for index, entry in enumerate(_entries(doc, "agents", source)):
        agent_id = _identifier(entry, "agent_id", index, source, seen)
        where = f"{source}: agent {agent_id!r}"
        if "modes" not in entry or "probs" not in entry:
            raise BadInput(f"{where}: needs 'modes' ([[[x, y], ...], ...]) and 'probs' (one per mode)")
        try:
            modes = np.asarray(entry["modes"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise BadInput(f"{where}: modes must be a list of modes of equal length, each a list of "
                           f"[x, y] ({exc})") from exc
        if modes.ndim != 3 or modes.shape[2] != 2 or modes.shape[0] == 0 or modes.shape[1] == 0:
            raise BadInput(f"{where}: modes must be a non-empty list of modes, each a non-empty list of "
                           f"[x, y], got an array of shape {modes.shape}")
        if not np.isfinite(modes).all():
            raise BadInput(f"{where}: modes hold NaN or infinity; every value must be a finite number")
        probs = _array(entry["probs"], (), where, "probs", "a list")
        if len(probs) != len(modes):
            raise BadInput(f"{where}: {len(modes)} modes but {len(probs)} probs; give one probability per mode")
        agents.append(AgentModes(agent_id, modes, probs))
    return agents
