"""The records of model-metric gate evaluations and their npz cache.

A `DetectionEval` holds a detector's detections and the ground truth of every frame of an evaluation
split, a `PredictionEval` a predictor's per-agent errors; `Units` says where each frame or agent sits
(andon.gates.model_eval computes them).

Evaluations are cached as `WS/gates/evals/<name>-<version>-<dataset_id>.npz` (split test; other
splits add `-<split>`), written to a temp name and renamed. A cache that cannot be read is not
silently recomputed: it raises BadInput naming the file (the gate fails closed), and `rerun=True`
recomputes it.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from andon.errors import BadInput
from andon.workspace import Workspace

FORMAT = 1
EVALS_DIR = ("gates", "evals")
DETECTION, PREDICTION = "detection", "prediction"
CLASSES: tuple[str, ...] = ("vehicle", "pedestrian", "cyclist", "static")  # andon.scenarios.records.CLASSES


# ----- records ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class Units:
    """Where each item (frame or agent) sits: its log, its scenario unit and its tags.

    Attributes:
        log_ids: the logs; `item_log` (N,) int64 indexes them.
        scenario_ids: the scenario units; `item_scenario` (N,) int64 indexes them.
        tag_names: the tags; `item_tags` (N, T) bool.
    """

    log_ids: tuple[str, ...]
    item_log: np.ndarray
    scenario_ids: tuple[str, ...]
    item_scenario: np.ndarray
    tag_names: tuple[str, ...]
    item_tags: np.ndarray

    def groups(self, unit: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """(group of each item (N,), group names) for unit `scenario` or `log`."""
        if unit == "log":
            return self.item_log, self.log_ids
        if unit == "scenario":
            return self.item_scenario, self.scenario_ids
        raise BadInput(f"unit {unit!r} is not one of scenario, log")

    def with_tags(self, tags: Sequence[str]) -> np.ndarray:
        """(N,) bool: items carrying every tag of `tags` (all items for no tags)."""
        mask = np.ones(len(self.item_log), dtype=bool)
        for tag in tags:
            if tag not in self.tag_names:
                return np.zeros(len(self.item_log), dtype=bool)
            mask &= self.item_tags[:, self.tag_names.index(tag)]
        return mask


@dataclass(frozen=True, slots=True, eq=False)
class DetectionEval:
    """A detector's detections and the ground truth of every frame of an evaluation split.

    Attributes:
        model: "name@version"; dataset_id, split: the evaluation set.
        frame_ids: "<log_id>:<frame_index>" per frame; units: where each frame sits.
        gt_frame, gt_boxes (G, 7), gt_class: ground-truth boxes (class indexes CLASSES).
        pred_frame, pred_boxes (P, 7), pred_class, pred_score: kept detections.
    """

    model: str
    dataset_id: str
    split: str
    frame_ids: tuple[str, ...]
    units: Units
    gt_frame: np.ndarray
    gt_boxes: np.ndarray
    gt_class: np.ndarray
    pred_frame: np.ndarray
    pred_boxes: np.ndarray
    pred_class: np.ndarray
    pred_score: np.ndarray

    kind = DETECTION

    @property
    def n_items(self) -> int:
        return len(self.frame_ids)


@dataclass(frozen=True, slots=True, eq=False)
class PredictionEval:
    """A predictor's per-agent errors on every agent sample of an evaluation split.

    Attributes:
        model: "name@version"; dataset_id, split: the evaluation set.
        agent_keys: "<log_id>:<frame_index>:<track_id>" per agent sample; units: where each sits.
        agent_class: (A,) int64 index into CLASSES, -1 when unknown.
        agent_range_m: (A,) BEV distance from the ego at t0 [m], NaN when unknown.
        metrics: {"ADE", "FDE", "minADE_k", "minFDE_k", "miss_rate"} -> (A,) float64 (miss_rate: 0 or 1).
        k: modes per agent.
    """

    model: str
    dataset_id: str
    split: str
    agent_keys: tuple[str, ...]
    units: Units
    agent_class: np.ndarray
    agent_range_m: np.ndarray
    metrics: Mapping[str, np.ndarray]
    k: int

    kind = PREDICTION

    @property
    def n_items(self) -> int:
        return len(self.agent_keys)


PREDICTION_METRICS: tuple[str, ...] = ("ADE", "FDE", "minADE_k", "minFDE_k", "miss_rate")


# ----- cache -----------------------------------------------------------------------------------------
def cache_path(workspace: Workspace, name: str, version: str, dataset_id: str, split: str = "test") -> Path:
    """WS/gates/evals/<name>-<version>-<dataset_id>[-<split>].npz."""
    suffix = "" if split == "test" else f"-{split}"
    return workspace.root.joinpath(*EVALS_DIR, f"{name}-{version}-{dataset_id}{suffix}.npz")


def save_eval(evaluation: DetectionEval | PredictionEval, path: Path) -> None:
    """Write an evaluation as npz (no pickles), to a temp name renamed into place."""
    arrays = _to_arrays(evaluation)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(tmp, path)


def load_eval(path: Path) -> DetectionEval | PredictionEval:
    """Read an evaluation written by `save_eval`.

    Raises:
        BadInput: the file is unreadable, truncated, of another format or inconsistent (naming it and
            saying to recompute it with rerun=true, or to delete it).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        return _from_arrays(arrays)
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, zipfile.BadZipFile,
            json.JSONDecodeError, BadInput) as exc:
        raise BadInput(f"evaluation cache {path} is unreadable ({type(exc).__name__}: {exc}): recompute it "
                       f"with rerun=true, or delete the file") from exc


def _to_arrays(evaluation: DetectionEval | PredictionEval) -> dict[str, np.ndarray]:
    u = evaluation.units
    meta = {"format": FORMAT, "kind": evaluation.kind, "model": evaluation.model,
            "dataset_id": evaluation.dataset_id, "split": evaluation.split}
    arrays: dict[str, np.ndarray] = {
        "meta": np.array(json.dumps(meta, sort_keys=True)),
        "log_ids": _strings(u.log_ids), "item_log": u.item_log.astype(np.int64),
        "scenario_ids": _strings(u.scenario_ids), "item_scenario": u.item_scenario.astype(np.int64),
        "tag_names": _strings(u.tag_names), "item_tags": u.item_tags.astype(bool),
    }
    if isinstance(evaluation, DetectionEval):
        arrays["frame_ids"] = _strings(evaluation.frame_ids)
        for f in ("gt_frame", "gt_boxes", "gt_class", "pred_frame", "pred_boxes", "pred_class", "pred_score"):
            arrays[f] = np.asarray(getattr(evaluation, f))
    else:
        meta["k"] = evaluation.k
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
        arrays["agent_keys"] = _strings(evaluation.agent_keys)
        arrays["agent_class"] = evaluation.agent_class.astype(np.int64)
        arrays["agent_range_m"] = evaluation.agent_range_m.astype(np.float64)
        for name in PREDICTION_METRICS:
            arrays[f"metric_{name}"] = np.asarray(evaluation.metrics[name], dtype=np.float64)
    return arrays


def _from_arrays(arrays: Mapping[str, np.ndarray]) -> DetectionEval | PredictionEval:
    meta = json.loads(str(arrays["meta"]))
    if meta.get("format") != FORMAT:
        raise BadInput(f"format {meta.get('format')!r}, this code reads format {FORMAT}")
    units = Units(_tuple(arrays["log_ids"]), arrays["item_log"].astype(np.int64), _tuple(arrays["scenario_ids"]),
                  arrays["item_scenario"].astype(np.int64), _tuple(arrays["tag_names"]),
                  arrays["item_tags"].astype(bool).reshape(len(arrays["item_log"]), -1))
    common = {"model": str(meta["model"]), "dataset_id": str(meta["dataset_id"]), "split": str(meta["split"])}
    if meta["kind"] == DETECTION:
        evaluation: DetectionEval | PredictionEval = DetectionEval(
            **common, frame_ids=_tuple(arrays["frame_ids"]), units=units,
            **{f.name: arrays[f.name] for f in fields(DetectionEval) if f.name.startswith(("gt_", "pred_"))})
    elif meta["kind"] == PREDICTION:
        evaluation = PredictionEval(**common, agent_keys=_tuple(arrays["agent_keys"]), units=units,
                                    agent_class=arrays["agent_class"].astype(np.int64),
                                    agent_range_m=arrays["agent_range_m"].astype(np.float64),
                                    metrics={n: arrays[f"metric_{n}"].astype(np.float64) for n in PREDICTION_METRICS},
                                    k=int(meta["k"]))
    else:
        raise BadInput(f"unknown evaluation kind {meta['kind']!r}")
    check_eval(evaluation)
    return evaluation


def check_eval(evaluation: DetectionEval | PredictionEval) -> None:
    """Refuse arrays whose lengths or indices disagree (a damaged or foreign file).

    Raises:
        BadInput: naming the first inconsistency.
    """
    u = evaluation.units
    n = evaluation.n_items
    problems = []
    if u.item_log.shape != (n,) or u.item_scenario.shape != (n,) or u.item_tags.shape != (n, len(u.tag_names)):
        problems.append("unit arrays do not have one row per item")
    elif n and (u.item_log.min() < 0 or u.item_log.max() >= len(u.log_ids) or u.item_scenario.min() < 0
                or u.item_scenario.max() >= len(u.scenario_ids)):
        problems.append("unit indices point outside their names")
    if isinstance(evaluation, DetectionEval):
        for side in ("gt", "pred"):
            frame, boxes = getattr(evaluation, f"{side}_frame"), getattr(evaluation, f"{side}_boxes")
            klass = getattr(evaluation, f"{side}_class")
            if boxes.ndim != 2 or boxes.shape[1] != 7 or frame.shape != (len(boxes),) or klass.shape != (len(boxes),):
                problems.append(f"{side} arrays disagree in shape")
            elif len(frame) and (frame.min() < 0 or frame.max() >= n):
                problems.append(f"{side} boxes point outside the frames")
        if evaluation.pred_score.shape != evaluation.pred_frame.shape:
            problems.append("pred_score does not have one score per detection")
    else:
        bad = [k for k, v in evaluation.metrics.items() if np.shape(v) != (n,)]
        if bad or evaluation.agent_class.shape != (n,) or evaluation.agent_range_m.shape != (n,):
            problems.append(f"per-agent arrays do not have one row per agent ({bad or 'class/range'})")
    if problems:
        raise BadInput("; ".join(problems))


def cached(path: Path, compute: Callable[[], DetectionEval | PredictionEval],
           rerun: bool) -> DetectionEval | PredictionEval:
    """The evaluation at `path`, computed and stored when absent (or when `rerun`)."""
    if path.is_file() and not rerun:
        return load_eval(path)
    evaluation = compute()
    save_eval(evaluation, path)
    return evaluation


def _strings(values: Sequence[str]) -> np.ndarray:
    return np.asarray([str(v) for v in values], dtype=np.str_).reshape(-1)


def _tuple(array: np.ndarray) -> tuple[str, ...]:
    return tuple(str(v) for v in np.asarray(array).reshape(-1).tolist())
