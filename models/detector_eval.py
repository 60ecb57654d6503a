"""A detector's nuScenes metrics on a split of any detection dataset version (synthetic or real).

`evaluate_on_version(model_or_ref, workspace, dataset_ref, split)` loads the detector (a model in
hand, a registry reference `detector@candidate` / `detector@3`, or a checkpoint path), feeds it the
version's frames through the same DataModule and feature transform as training, decodes, and scores
the detections with `andon.models.detection_metrics`.

Train/serve parity holds here as everywhere: the version must have been built with the feature code
in use and with the detector's own pillar grid (point-cloud range and pillar size), since the
network's weights are tied to that grid. To evaluate a fleet-trained detector on real logs, build the
real dataset with the detector's sampling, e.g.

    andon dataset build dataset=detection_real dataset.name=detection_real_fleet_grid \
        'dataset.sampling.point_cloud_range_m=[-51.2,-51.2,-3.0,51.2,51.2,3.0]' \
        'dataset.sampling.voxel_size_m=[0.4,0.4,6.0]' dataset.validation.blocking.point_cloud_range=false

(the last override because real labels reach far beyond 51.2 m; those boxes are not learnt targets).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from andon.datasets.features import check_parity, module_code_hash
from andon.errors import BadInput
from andon.models.detector import PillarDetector, detection_arrays, evaluate_frames
from andon.models.train import resolve_dataset
from andon.workspace import Workspace


def default_device() -> torch.device:
    """CUDA when there is a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_detector(model_or_ref: PillarDetector | str | os.PathLike[str], workspace: Workspace,
                  device: torch.device) -> tuple[PillarDetector, str]:
    """The detector and a name for reports, from a model, a checkpoint path or a registry reference.

    Raises:
        BadInput: the reference names no version, the file is not a detector checkpoint, or the
            registered version was trained with another feature transform than the code in use.
    """
    if isinstance(model_or_ref, PillarDetector):
        return model_or_ref.to(device), type(model_or_ref).__name__
    text = str(model_or_ref)
    if text.endswith(".ckpt") or Path(text).is_file():
        try:
            return PillarDetector.load_from_checkpoint(text, map_location=device), text
        except (OSError, RuntimeError, KeyError, TypeError) as exc:
            raise BadInput(f"{text} is not a loadable PillarDetector checkpoint ({exc}): give the checkpoint a "
                           f"detector training run wrote, or a registry reference such as detector@candidate") from exc
    import mlflow.pytorch

    from andon.models.registry import Registry

    version = Registry(workspace).resolve(text)
    recorded = version.tags.get("transform_code_hash")
    if recorded and recorded != module_code_hash():
        raise BadInput(f"{text} (version {version.version}) was trained with feature code {recorded} but the code in "
                       f"use is {module_code_hash()}: retrain it on a dataset built with this code")
    model = mlflow.pytorch.load_model(f"models:/{version.name}/{version.version}", map_location=device)
    if not isinstance(model, PillarDetector):
        raise BadInput(f"{text} is a {type(model).__name__}, not a detector")
    return model, f"{version.name}@{version.version}"


def evaluate_on_version(model_or_ref: PillarDetector | str | os.PathLike[str],
                        workspace: Workspace | str | os.PathLike[str], dataset_ref: str, split: str = "test",
                        batch_size: int = 4, device: str | torch.device | None = None) -> dict[str, Any]:
    """nuScenes metrics of a detector on one split of a detection dataset version.

    Args:
        model_or_ref: a PillarDetector, a checkpoint path, or a registry reference (NAME@ALIAS|VERSION).
        workspace: the workspace (or its directory).
        dataset_ref: dataset id, unique prefix or name (its latest accepted version).
        split: train, val or test.
        batch_size: frames per forward pass.
        device: where to run; None picks CUDA when available, else the CPU.

    Returns:
        {"model", "dataset_id", "dataset_name", "split", "frames", "seconds", "frames_per_s", "mAP"
        (None when the split has no ground-truth box of the detector's classes), "ap", "ap_mean",
        "tp_errors", "n_gt", "n_pred"} (the last five as evaluate_detection gives them, else empty).

    Raises:
        BadInput: unknown model or dataset, a dataset of another task, an empty split, or a version
            whose feature transform or pillar grid differs from the detector's (module docstring).
        CheckFailed: the dataset version is rejected.
    """
    from andon.datasets.datamodules import DetectionDataModule

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    where = torch.device(device) if device is not None else default_device()
    model, name = load_detector(model_or_ref, ws, where)
    version = resolve_dataset(ws, dataset_ref, task=PillarDetector.task)
    # The version's transform must be this code's with the detector's own grid (not merely its own).
    check_parity(version.transform, "detection", dict(model.sampling))
    datamodule = DetectionDataModule(ws, version, batch_size=batch_size, num_workers=0)
    datamodule.setup("test")
    if len(datamodule.samples(split)) == 0:
        raise BadInput(f"split {split!r} of dataset version {version.dataset_id} has no frames: choose another split")
    model.eval()
    gt_parts, pred_parts = [], []
    started = time.perf_counter()
    with torch.no_grad():
        for batch in datamodule.loader(split, shuffle=False):
            batch = {key: value.to(where) for key, value in batch.items()}
            gt, pred = detection_arrays(batch, model.detect(batch))
            gt_parts.append(gt)
            pred_parts.append(pred)
    seconds = time.perf_counter() - started
    frames = sum(len(part["frame_ids"]) for part in gt_parts)
    result = evaluate_frames(gt_parts, pred_parts) or {}
    return {"model": name, "dataset_id": version.dataset_id, "dataset_name": version.name, "split": split,
            "frames": frames, "seconds": seconds, "frames_per_s": frames / seconds if seconds > 0 else None,
            "mAP": result.get("mAP"), "ap": result.get("ap", {}), "ap_mean": result.get("ap_mean", {}),
            "tp_errors": result.get("tp_errors", {}), "n_gt": result.get("n_gt", {}),
            "n_pred": result.get("n_pred", {})}
