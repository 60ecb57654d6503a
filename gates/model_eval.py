"""Per-scenario evidence of model-metric gates, on the frozen common evaluation set, cached.

A model-metric gate compares models on one pinned dataset version (the common evaluation set) and one
split. The evidence is kept at the finest grain, so any slice and any bootstrap resample is a mask
over the same arrays and nothing is re-run:

- detector: every frame of the split, its ground truth (the boxes a detector learns:
  andon.datasets.features.detection_targets, i.e. inside the pillar grid, of the detection classes)
  and the detector's kept detections, in the ego frame. A registered detector runs through the
  training DataModule and feature transform (exactly what `andon eval` scores); a stand-in detect
  function (frame -> boxes, classes, scores, as andon.models.autolabel.detector_fn) runs frame by frame;
- predictor: every agent sample of the split, its per-agent ADE, FDE, minADE_k, minFDE_k and miss
  flag (andon.models.prediction_metrics' definitions), its class and BEV range from the ego at t0.

Each frame or agent belongs to one *scenario unit*: the shortest scenario window of the dataset
version that contains its timestamp (ties by scenario id), else its whole log. Its tags are the union
of the tags of every scenario window that contains it. The bootstrap resamples units (`unit:
scenario`) or whole logs (`unit: log`, conservative).

The records (DetectionEval, PredictionEval, Units) and their npz cache, `WS/gates/evals/`, are in
andon.gates.model_eval_cache; `model_evaluation` reads and fills that cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.gates.model_eval_cache import (
    CLASSES,
    DETECTION,
    PREDICTION,
    PREDICTION_METRICS,
    DetectionEval,
    PredictionEval,
    Units,
    cache_path,
    cached,
    load_eval,
    save_eval,
)
from andon.workspace import Workspace

__all__ = [  # the evaluation, and the cache's names callers import from here
    "CLASSES", "DetectFn", "DetectionEval", "PredictionEval", "Units", "assign_units", "cache_path", "load_eval",
    "model_evaluation", "per_agent_metrics", "save_eval",
]

MISS_THRESHOLD_M = 2.0  # andon.models.prediction_metrics.MISS_THRESHOLD_M
LOG_UNIT_PREFIX = "log:"
DetectFn = Callable[[Any], tuple[np.ndarray, Sequence[str], np.ndarray] | None]


# ----- units -----------------------------------------------------------------------------------------
def assign_units(scenarios: Sequence[Mapping[str, Any]], log_ids: Sequence[str],
                 timestamps_ns: Sequence[int] | np.ndarray) -> Units:
    """Units and tags of items at (log, timestamp), from a dataset version's scenario windows.

    Args:
        scenarios: DatasetVersion.scenarios(): {scenario_id, log_id, t_start_ns, t_end_ns, tags}.
        log_ids: each item's log.
        timestamps_ns: each item's timestamp.
    """
    item_log_ids = np.asarray([str(x) for x in log_ids], dtype=np.str_)
    stamps = np.asarray(timestamps_ns, dtype=np.int64).reshape(-1)
    logs = tuple(sorted(set(item_log_ids.tolist())))
    item_log = np.searchsorted(np.asarray(logs, dtype=np.str_), item_log_ids) if len(logs) else np.zeros(0, np.int64)
    members = {log_id: np.flatnonzero(item_log == i) for i, log_id in enumerate(logs)}  # each log's items
    windows = [s for s in scenarios if str(s["log_id"]) in members]
    tags = tuple(sorted({str(t) for s in windows for t in s.get("tags", ())}))
    item_tags = np.zeros((len(stamps), len(tags)), dtype=bool)
    best_len = np.full(len(stamps), np.iinfo(np.int64).max)
    best_id = np.full(len(stamps), "", dtype=object)
    for s in sorted(windows, key=lambda s: str(s["scenario_id"])):
        rows = members[str(s["log_id"])]
        inside = rows[(stamps[rows] >= int(s["t_start_ns"])) & (stamps[rows] <= int(s["t_end_ns"]))]
        if not len(inside):
            continue
        for tag in s.get("tags", ()):
            item_tags[inside, tags.index(str(tag))] = True
        length = int(s["t_end_ns"]) - int(s["t_start_ns"])
        better = inside[length < best_len[inside]]
        best_len[better] = length
        best_id[better] = str(s["scenario_id"])
    unit_names = np.where(best_id == "", np.char.add(LOG_UNIT_PREFIX, item_log_ids), best_id).astype(str)
    scenario_ids, item_scenario = np.unique(unit_names, return_inverse=True) if len(stamps) else ([], np.zeros(0))
    return Units(logs, np.asarray(item_log, dtype=np.int64), tuple(str(s) for s in scenario_ids),
                 np.asarray(item_scenario, dtype=np.int64).reshape(-1), tags, item_tags)


# ----- detector --------------------------------------------------------------------------------------
def _detection_samples(version: Any, split: str) -> Any:
    """The split's sample table of a detection version (its row order is the frames' order).

    Raises:
        BadInput: a dataset of another task, or an empty split.
    """
    if version.task != DETECTION:
        raise BadInput(f"dataset version {version.dataset_id} ({version.name}) is a {version.task!r} dataset: a "
                       f"detector gate needs a detection dataset as its eval_dataset")
    samples = version.samples(split)
    if len(samples) == 0:
        raise BadInput(f"split {split!r} of dataset version {version.dataset_id} has no frames: choose another split")
    return samples


def _detection_eval(version: Any, split: str, samples: Any, model: str, gt: Mapping[str, np.ndarray],
                    pred: Mapping[str, np.ndarray]) -> DetectionEval:
    """A DetectionEval of the sample table's frames (in its row order) from flat box columns."""
    frame_ids = tuple(f"{log_id}:{int(index)}" for log_id, index in zip(samples["log_id"], samples["frame_index"],
                                                                          strict=True))
    units = assign_units(version.scenarios(), samples["log_id"].astype(str).tolist(),
                         samples["timestamp_ns"].to_numpy(dtype=np.int64))
    return DetectionEval(model=model, dataset_id=version.dataset_id, split=split, frame_ids=frame_ids, units=units,
                         gt_frame=gt["frame"], gt_boxes=gt["boxes"], gt_class=gt["class"], pred_frame=pred["frame"],
                         pred_boxes=pred["boxes"], pred_class=pred["class"], pred_score=pred["score"])


def evaluate_detector_model(workspace: Workspace, version: Any, split: str, detector: Any, model: str,
                            batch_size: int = 8) -> DetectionEval:
    """A PillarDetector on every frame of a split, through the training DataModule and feature transform:
    the same frames, ground truth and detections as `andon eval` (andon.models.detector_eval).

    Raises:
        BadInput: a dataset of another task, an empty split, or a version whose feature transform or
            pillar grid is not the detector's.
    """
    import torch

    from andon.datasets.datamodules import DetectionDataModule
    from andon.datasets.features import DETECTION_CLASSES, check_parity
    from andon.models.detector import detection_arrays

    samples = _detection_samples(version, split)
    check_parity(version.transform, DETECTION, dict(detector.sampling))
    datamodule = DetectionDataModule(workspace, version, batch_size=batch_size, num_workers=0)
    datamodule.setup("test")
    codes = np.array([CLASSES.index(name) for name in DETECTION_CLASSES], dtype=np.int64)
    gt: dict[str, list[np.ndarray]] = {"frame": [], "boxes": [], "class": []}
    pred: dict[str, list[np.ndarray]] = {"frame": [], "boxes": [], "class": [], "score": []}
    detector.eval()
    with torch.no_grad():
        for batch in datamodule.loader(split, shuffle=False):
            batch = {key: value.to(detector.device) for key, value in batch.items()}
            truth, found = detection_arrays(batch, detector.detect(batch))
            rows = truth["frame_ids"]  # each batch frame's sample index: its row of the table
            gt["frame"].append(rows[truth["frame"]])
            gt["boxes"].append(truth["boxes"])
            gt["class"].append(codes[truth["labels"]])
            pred["frame"].append(rows[found["frame"]])
            pred["boxes"].append(found["boxes"])
            pred["class"].append(codes[found["labels"]])
            pred["score"].append(found["scores"])
    return _detection_eval(version, split, samples, model, _columns(gt), _columns(pred))


def evaluate_detector(workspace: Workspace, version: Any, split: str, detect: DetectFn, model: str) -> DetectionEval:
    """Run a detect function over every frame of a detection dataset version's split (module docstring);
    the ground truth is what a detector learns (andon.datasets.features.detection_targets).

    Args:
        workspace: the workspace whose blob store holds the logs.
        version: the DatasetVersion (a detection dataset).
        split: train | val | test.
        detect: frame -> (boxes (N, 7), class names, scores) | None (a frame it cannot see: no detections).
        model: "name@version", recorded.

    Raises:
        BadInput: a dataset of another task, an empty split, or a detector output of the wrong shape.
    """
    from andon.datasets.features import DETECTION_CLASSES, detection_targets
    from andon.scenarios.blobstore import BlobStore
    from andon.scenarios.logstore import load_log

    samples = _detection_samples(version, split)
    sampling = dict(version.spec.get("sampling") or {})
    blobs = BlobStore(workspace.blobs_dir)
    code = {name: i for i, name in enumerate(CLASSES)}
    gt: dict[str, list[np.ndarray]] = {"frame": [], "boxes": [], "class": []}
    pred: dict[str, list[np.ndarray]] = {"frame": [], "boxes": [], "class": [], "score": []}
    logs: dict[str, Any] = {}
    for index, (log_id, manifest, frame_index) in enumerate(zip(samples["log_id"], samples["log_manifest"],
                                                                samples["frame_index"], strict=True)):
        if log_id not in logs:
            logs[log_id] = load_log(blobs, str(log_id), str(manifest))  # annotations only; points load per frame
        frame = logs[log_id].frames[int(frame_index)]
        target = detection_targets(frame.boxes, frame.classes, sampling)
        names = np.asarray(DETECTION_CLASSES)[target["labels"]]
        gt["frame"].append(np.full(len(names), index, dtype=np.int64))
        gt["boxes"].append(np.asarray(target["boxes"], dtype=np.float64).reshape(-1, 7))
        gt["class"].append(np.array([code[c] for c in names], dtype=np.int64))
        boxes, classes, scores = _detections(detect(frame), f"{log_id}:{int(frame_index)}")
        pred["frame"].append(np.full(len(boxes), index, dtype=np.int64))
        pred["boxes"].append(boxes)
        pred["class"].append(np.array([code[c] for c in classes], dtype=np.int64))
        pred["score"].append(scores)
    return _detection_eval(version, split, samples, model, _columns(gt), _columns(pred))


def _columns(parts: Mapping[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenated box columns: frame and class int64, boxes (N, 7) and score float64."""
    dtypes = {"frame": np.int64, "class": np.int64, "boxes": np.float64, "score": np.float64}
    return {key: _cat(list(values), dtypes[key], 7 if key == "boxes" else None) for key, values in parts.items()}


def _detections(output: Any, frame_id: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    if output is None:
        return np.zeros((0, 7)), [], np.zeros(0)
    boxes, classes, scores = output
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    classes = [str(c) for c in classes]
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(classes) != len(boxes) or len(scores) != len(boxes):
        raise BadInput(f"the detector gave {len(boxes)} boxes, {len(classes)} classes and {len(scores)} scores "
                       f"for frame {frame_id}: one class and one score per box")
    unknown = sorted(set(classes) - set(CLASSES))
    if unknown:
        raise BadInput(f"the detector gave unknown classes {unknown} for frame {frame_id}: use {', '.join(CLASSES)}")
    if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
        raise BadInput(f"the detector gave non-finite boxes or scores for frame {frame_id}")
    return boxes, classes, scores


# ----- predictor -------------------------------------------------------------------------------------
def per_agent_metrics(modes_m: np.ndarray, probs: np.ndarray, future_m: np.ndarray,
                      future_mask: np.ndarray, miss_threshold_m: float = MISS_THRESHOLD_M
                      ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-agent errors (andon.models.prediction_metrics' definitions), vectorised.

    A future counts up to its first unobserved step; agents without an observed step are dropped.

    Args:
        modes_m: (B, K, F, 2); probs: (B, K); future_m: (B, F, 2); future_mask: (B, F) bool.

    Returns:
        (kept rows (A,), {"ADE", "FDE", "minADE_k", "minFDE_k", "miss_rate"} -> (A,) float64).
    """
    modes = np.asarray(modes_m, dtype=np.float64)
    future = np.asarray(future_m, dtype=np.float64)
    n_steps = np.cumprod(np.asarray(future_mask, dtype=bool), axis=1).sum(axis=1)
    keep = np.flatnonzero(n_steps > 0)
    modes, future, n_steps = modes[keep], future[keep], n_steps[keep]
    probs = np.asarray(probs, dtype=np.float64)[keep]
    valid = np.arange(future.shape[1])[None, :] < n_steps[:, None]  # (A, F)
    disp = np.linalg.norm(modes - future[:, None], axis=-1)  # (A, K, F)
    disp = np.where(valid[:, None, :], disp, 0.0)
    ade_k = disp.sum(axis=2) / n_steps[:, None]
    rows = np.arange(len(keep))
    fde_k = disp[rows, :, n_steps - 1]
    top = np.argmax(probs, axis=1)  # first of equal highest probabilities
    min_fde = fde_k.min(axis=1)
    metrics = {"ADE": ade_k[rows, top], "FDE": fde_k[rows, top], "minADE_k": ade_k.min(axis=1), "minFDE_k": min_fde,
               "miss_rate": (min_fde > miss_threshold_m).astype(np.float64)}
    return keep, metrics


def evaluate_predictor(workspace: Workspace, version: Any, split: str, predictor: Any, model: str,
                       batch_size: int = 256) -> PredictionEval:
    """Per-agent errors of a TrajectoryPredictor on every agent sample of a prediction version's split.

    Raises:
        BadInput: a dataset of another task, a split without an agent with an observed future, or a
            predictor whose step counts differ from the dataset's sampling.
    """
    import torch

    from andon.datasets.datamodules import PredictionDataModule

    if version.task != PREDICTION:
        raise BadInput(f"dataset version {version.dataset_id} ({version.name}) is a {version.task!r} dataset: a "
                       f"predictor gate needs a prediction dataset as its eval_dataset")
    sampling = dict(version.spec.get("sampling") or {})
    for key in ("history_steps", "horizon_steps"):
        mine, theirs = getattr(predictor, key, None), sampling.get(key)
        if mine is not None and theirs is not None and int(mine) != int(theirs):
            raise BadInput(f"{model} takes {key}={mine} but evaluation set {version.dataset_id} ({version.name}) was "
                           f"sampled with {key}={theirs}: evaluate it on a dataset with the sampling it was trained on")
    datamodule = PredictionDataModule(workspace, version, batch_size=batch_size, num_workers=0)
    datamodule.setup("test")
    samples = datamodule.samples(split)
    rows: list[np.ndarray] = []
    parts: list[dict[str, np.ndarray]] = []
    predictor.eval()
    with torch.no_grad():
        for batch in datamodule.loader(split, shuffle=False):
            modes, logits = predictor(*(batch[k].to(predictor.device) for k in
                                        ("history", "history_mask", "neighbours", "neighbours_mask")))
            keep, metrics = per_agent_metrics(modes.double().cpu().numpy(),
                                              torch.softmax(logits, -1).double().cpu().numpy(),
                                              batch["future"].double().numpy(), batch["future_mask"].numpy())
            rows.append(batch["sample_index"].numpy()[keep])
            parts.append(metrics)
    index = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    if len(index) == 0:
        raise BadInput(f"split {split!r} of dataset version {version.dataset_id} has no agent with an observed "
                       f"future: choose another split or dataset")
    order = np.argsort(index, kind="stable")
    index = index[order]
    metrics = {name: np.concatenate([p[name] for p in parts])[order] for name in PREDICTION_METRICS}
    chosen = samples.iloc[index]
    agent_class, agent_range = _agent_attributes(workspace, chosen)
    keys = tuple(f"{a}:{int(b)}:{c}" for a, b, c in zip(chosen["log_id"], chosen["frame_index"], chosen["track_id"],
                                                         strict=True))
    units = assign_units(version.scenarios(), chosen["log_id"].astype(str).tolist(),
                         chosen["timestamp_ns"].to_numpy(dtype=np.int64))
    return PredictionEval(model=model, dataset_id=version.dataset_id, split=split, agent_keys=keys, units=units,
                          agent_class=agent_class, agent_range_m=agent_range, metrics=metrics,
                          k=int(getattr(predictor, "num_modes", 0) or 0))


def _agent_attributes(workspace: Workspace, samples: Any) -> tuple[np.ndarray, np.ndarray]:
    """(class index, BEV range from the ego [m]) of each agent sample at its t0 frame (-1, NaN unknown)."""
    from andon.scenarios.blobstore import BlobStore
    from andon.scenarios.logstore import boxes_table, load_log

    blobs = BlobStore(workspace.blobs_dir)
    agent_class = np.full(len(samples), -1, dtype=np.int64)
    agent_range = np.full(len(samples), np.nan)
    code = {name: i for i, name in enumerate(CLASSES)}
    positions = np.arange(len(samples))
    for log_id, rows in samples.assign(_pos=positions).groupby("log_id", sort=True):
        table = boxes_table(load_log(blobs, str(log_id), str(rows["log_manifest"].iloc[0])))
        lookup = {(int(f), str(t)): i for i, (f, t) in enumerate(zip(table["frame_index"], table["track_ids"],
                                                                     strict=True))}
        for pos, frame_index, track in zip(rows["_pos"], rows["frame_index"], rows["track_id"], strict=True):
            i = lookup.get((int(frame_index), str(track)))
            if i is not None:
                agent_class[pos] = code.get(str(table["classes"][i]), -1)
                agent_range[pos] = float(np.hypot(*table["boxes"][i, :2]))
    return agent_class, agent_range


def load_predictor(workspace: Workspace, name: str, version: str, device: str | None = None) -> Any:
    """A registered TrajectoryPredictor version.

    Raises:
        BadInput: no such version, or the version is not a predictor.
    """
    import mlflow.pytorch
    import torch

    from andon.models.detector_eval import default_device
    from andon.models.predictor import TrajectoryPredictor
    from andon.models.registry import Registry

    resolved = Registry(workspace).resolve(f"{name}@{version}")
    where = torch.device(device) if device else default_device()
    model = mlflow.pytorch.load_model(f"models:/{resolved.name}/{resolved.version}", map_location=where)
    if not isinstance(model, TrajectoryPredictor):
        raise BadInput(f"{name}@{version} is a {type(model).__name__}, not a TrajectoryPredictor: a prediction "
                       f"metric gates a predictor node")
    return model


# ----- entry point -----------------------------------------------------------------------------------
def model_evaluation(workspace: Workspace, task: str, name: str, version: str, dataset: Any, split: str = "test",
                     rerun: bool = False, device: str | None = None, detect: DetectFn | None = None,
                     predictor: Any = None) -> DetectionEval | PredictionEval:
    """The cached evaluation of registered model `name@version` on a dataset version's split.

    Args:
        workspace: the workspace.
        task: detection | prediction (what the gate's metric needs).
        name, version: the registered model (the DAG node's name and its version).
        dataset: the pinned DatasetVersion.
        split: the split evaluated.
        rerun: recompute even when cached.
        device: where the model runs (None: CUDA when available, else the CPU).
        detect, predictor: stand-ins for the registered model (tests); None loads it.

    Raises:
        BadInput: an unreadable cache, an unknown model or a dataset of another task.
    """
    path = cache_path(workspace, name, version, dataset.dataset_id, split)
    label = f"{name}@{version}"

    def compute() -> DetectionEval | PredictionEval:
        if task == DETECTION:
            if detect is not None:
                return evaluate_detector(workspace, dataset, split, detect, label)
            import torch

            from andon.models.detector_eval import default_device, load_detector

            where = torch.device(device) if device else default_device()
            model, _ = load_detector(label, workspace, where)
            return evaluate_detector_model(workspace, dataset, split, model, label)
        model = predictor if predictor is not None else load_predictor(workspace, name, version, device)
        return evaluate_predictor(workspace, dataset, split, model, label)

    evaluation = cached(path, compute, rerun)
    if (evaluation.kind, evaluation.model, evaluation.dataset_id, evaluation.split) != \
            (task, label, dataset.dataset_id, split):
        raise BadInput(f"evaluation cache {path} holds a {evaluation.kind} evaluation of {evaluation.model} on "
                       f"{evaluation.dataset_id} ({evaluation.split}), not {task} of {label} on {dataset.dataset_id} "
                       f"({split}): recompute it with rerun=true, or delete the file")
    return evaluation


def _cat(parts: list[np.ndarray], dtype: Any, width: int | None = None) -> np.ndarray:
    if not parts:
        return np.zeros((0, width) if width else 0, dtype=dtype)
    out = np.concatenate(parts).astype(dtype)
    return out.reshape(-1, width) if width else out

