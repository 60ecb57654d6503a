"""ETH/UCY leave-one-scene-out: the TrajectoryPredictor against constant velocity, 8 -> 12 steps at 0.4 s.

The standard protocol (Alahi et al. 2016, Gupta et al. 2018) holds out one scene at a time, trains on
the others and evaluates on every 20-step window (8 observed including t0, 12 predicted) of every
pedestrian of the held-out scene. The shared sample (../shared/data/prediction/eth_ucy, from
Trajectron++'s raw files) holds seven files; the scenes are made of them as follows:

    ETH    biwi_eth.txt
    HOTEL  biwi_hotel.txt
    UNIV   students001.txt + students003.txt
    ZARA1  crowds_zara01.txt
    (ZARA2 = crowds_zara02.txt is not in the sample, so that fold is not run)
    train only: uni_examples.txt, crowds_zara03.txt (in every fold's training set, as in Social GAN)

Everything goes through the real pipeline: each file is imported with the "eth-ucy" importer into the
workspace's catalog (one log per file), and each fold is a dataset version built from
configs/dataset/prediction_eth_ucy.yaml with the held-out scene's whole-log scenarios as the pinned
test set (`split.pinned_test`: their logs go to test) and train = 1.0 (every other log trains). Pinned
lists name exactly which logs are tested, by content-addressed scenario id, and the splits check
proves no log sits in two splits; a `log:` query per split would need two versions per fold. There is
no validation split: the model trains a fixed number of epochs and the held-out scene is only
evaluated at the end, so it never steers training. Samples load through PredictionDataModule, once
per split (`InMemorySplit`); training then re-shuffles them each epoch under the seed.

ADE/FDE use the most probable mode (DESIGN.md); minADE_k/minFDE_k take the best of K modes. Constant
velocity has one mode, so its minADE_k equals its ADE.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from andon.datasets.build import build_dataset
from andon.datasets.datamodules import PredictionDataModule
from andon.datasets.spec import DatasetSpec, spec_from_config
from andon.errors import BadInput
from andon.models.baselines import constant_velocity
from andon.models.prediction_eval import evaluate_arrays
from andon.models.predictor import TrajectoryPredictor
from andon.scenarios.catalog import Catalog
from andon.scenarios.importers import importer
from andon.scenarios.records import Provenance
from andon.workspace import Workspace

log = logging.getLogger(__name__)

SCENES: dict[str, tuple[str, ...]] = {
    "ETH": ("biwi_eth",),
    "HOTEL": ("biwi_hotel",),
    "UNIV": ("students001", "students003"),
    "ZARA1": ("crowds_zara01",),
}
TRAIN_ONLY: tuple[str, ...] = ("uni_examples", "crowds_zara03")
DATASET_CONFIG = "prediction_eth_ucy"
FORMAT = "eth-ucy"
DEFAULT_MODEL: dict[str, Any] = {"num_modes": 6, "hidden_size": 96, "neighbour_size": 32, "augment_flip": True,
                                 "top_mode_weight": 1.0, "optimizer": {"lr": 3e-3, "weight_decay": 1e-4}}
DEFAULT_EPOCHS = 30
BATCH_SIZE = 128
GATHER_BATCH_SIZE = 2048  # samples per loader call when a split is gathered into memory
METRICS = ("ADE", "FDE", "minADE_k", "minFDE_k", "miss_rate")


def import_files(workspace: Workspace, data_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Import every scene file into the workspace's catalog; {file stem: log id} (idempotent).

    Raises:
        BadInput: naming a missing file of the protocol.
    """
    data_dir = Path(data_dir)
    reader = importer(FORMAT)
    stems = [stem for files in SCENES.values() for stem in files] + list(TRAIN_ONLY)
    missing = [f"{stem}.txt" for stem in stems if not (data_dir / f"{stem}.txt").is_file()]
    if missing:
        raise BadInput(f"{data_dir} lacks {missing}: point data_dir at the ETH/UCY folder "
                       f"(../shared/data/prediction/eth_ucy)")
    provenance = Provenance("import", reader.NAME, reader.VERSION)
    log_ids: dict[str, str] = {}
    with Catalog(workspace) as catalog:
        for stem in stems:
            path = data_dir / f"{stem}.txt"
            for imported in reader.read(path):
                log_ids[stem] = catalog.add_log(imported, provenance, origin=str(path))[0]
    return log_ids


def fold_spec(scene: str, pinned_scenario_ids: Sequence[str]) -> DatasetSpec:
    """The held-out fold's dataset: prediction_eth_ucy.yaml, its scene's scenarios pinned to test."""
    text = importlib.resources.files("andon.configs").joinpath("dataset", f"{DATASET_CONFIG}.yaml").read_text()
    doc = OmegaConf.to_container(OmegaConf.create(text))
    doc.pop("defaults", None)
    doc["name"] = f"eth_ucy_loso_{scene.lower()}"
    doc["split"] = {**doc.get("split", {}), "train": 1.0, "val": 0.0, "test": 0.0,
                    "pinned_test": sorted(pinned_scenario_ids)}
    return spec_from_config(doc)


def scene_scenarios(workspace: Workspace, log_ids: dict[str, str], scene: str) -> list[str]:
    """Ids of the whole-log scenarios of a scene's files (those the import created)."""
    ids = []
    with Catalog(workspace) as catalog:
        for stem in SCENES[scene]:
            found = catalog.search(f"log:{log_ids[stem]} source:{FORMAT}")
            ids.append(max(found, key=lambda s: s.t_end_ns - s.t_start_ns).scenario_id)
    return ids


class InMemorySplit(torch.utils.data.Dataset):
    """A split's batches gathered once from the DataModule, served as batches of any size.

    The loader's features are deterministic, so gathering once and re-shuffling each epoch (seeded)
    trains on exactly what the DataModule serves, without re-reading the logs every epoch.
    """

    def __init__(self, datamodule: PredictionDataModule, split: str) -> None:
        parts: dict[str, list[torch.Tensor]] = {}
        for batch in datamodule.loader(split, shuffle=False):
            for key, value in batch.items():
                parts.setdefault(key, []).append(value.clone())
        if not parts:
            raise BadInput(f"the {split} split has no samples: nothing to train or evaluate on")
        width = max(t.shape[1] for t in parts["neighbours"])  # batches pad neighbours to their own widest
        for key in ("neighbours", "neighbours_mask"):
            parts[key] = [torch.nn.functional.pad(t, (0, 0) * (t.dim() - 2) + (0, width - t.shape[1]))
                          for t in parts[key]]
        self.tensors = {key: torch.cat(value) for key, value in parts.items()}

    def __len__(self) -> int:
        return len(self.tensors["history"])

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(indices)
        return {key: value[index] for key, value in self.tensors.items()}

    def loader(self, batch_size: int, seed: int, shuffle: bool) -> torch.utils.data.DataLoader:
        generator = torch.Generator().manual_seed(seed)
        return torch.utils.data.DataLoader(self, batch_size=batch_size, shuffle=shuffle, generator=generator,
                                           collate_fn=_whole_batch)


def _whole_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


def train_predictor(train: InMemorySplit, sampling: dict[str, Any], epochs: int, seed: int,
                    model_kwargs: dict[str, Any] | None = None, batch_size: int = BATCH_SIZE) -> TrajectoryPredictor:
    """A TrajectoryPredictor trained on a split: a plain Lightning Trainer, seeded and deterministic."""
    pl.seed_everything(seed, workers=True, verbose=False)
    model = TrajectoryPredictor(sampling=sampling, **(model_kwargs or DEFAULT_MODEL))
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, deterministic=True, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(model, train_dataloaders=train.loader(batch_size, seed, shuffle=True))
    return model


@torch.no_grad()
def evaluate_split(split: InMemorySplit, model: TrajectoryPredictor | None) -> dict[str, dict[str, float]]:
    """Metrics of constant velocity ("cv") and, when given, the model ("predictor") on a gathered split."""
    batch = split.tensors
    future, mask = batch["future"].double().numpy(), batch["future_mask"].numpy()
    cv = constant_velocity(batch["history"].double(), future.shape[1]).numpy()[:, None]
    results = {"cv": _metrics(evaluate_arrays(cv, np.ones(cv.shape[:2]), future, mask))}
    if model is not None:
        model.eval()
        modes, logits = model(batch["history"], batch["history_mask"], batch["neighbours"], batch["neighbours_mask"])
        results["predictor"] = _metrics(evaluate_arrays(modes.double().numpy(), torch.softmax(logits, -1).double().numpy(),
                                                        future, mask))
    return results


def leave_one_scene_out(workspace: Workspace | str | os.PathLike[str], data_dir: str | os.PathLike[str],
                        epochs: int = DEFAULT_EPOCHS, seed: int = 0, scenes: Sequence[str] | None = None,
                        model_kwargs: dict[str, Any] | None = None, batch_size: int = BATCH_SIZE,
                        echo: bool = True) -> list[dict[str, Any]]:
    """Run the protocol (module docstring); one row per held-out scene, then their average.

    Args:
        workspace: an andon workspace (or its directory); its catalog receives the seven files.
        data_dir: the folder of the ETH/UCY files.
        epochs: training epochs per fold.
        seed: seeds training and the loaders.
        scenes: which folds (default all of SCENES).
        model_kwargs: TrajectoryPredictor arguments besides the step counts (default DEFAULT_MODEL).
        batch_size: training batch size.
        echo: print the table.

    Returns:
        Rows {"scene", "files", "dataset_id", "n_train", "n_test", "cv_ADE", ..., "predictor_minFDE_k", ...};
        the last row, scene "average", averages the scenes (each scene weighs 1, as the literature does).

    Raises:
        BadInput: an unknown scene, a missing file, or a fold whose dataset version is rejected.
    """
    workspace = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    chosen = list(scenes) if scenes is not None else list(SCENES)
    unknown = [scene for scene in chosen if scene not in SCENES]
    if unknown:
        raise BadInput(f"unknown ETH/UCY scenes {unknown}: choose among {list(SCENES)} (ZARA2, crowds_zara02.txt, "
                       f"is not in the shared sample)")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise BadInput(f"epochs={epochs!r} must be a whole number >= 1")
    log_ids = import_files(workspace, data_dir)
    rows = []
    for scene in chosen:
        spec = fold_spec(scene, scene_scenarios(workspace, log_ids, scene))
        document = build_dataset(workspace, spec, progress=False)
        if document["status"] != "accepted":
            raise BadInput(f"the {scene} fold's dataset {document['dataset_id']} was rejected: {document['reasons']}")
        datamodule = PredictionDataModule(workspace, document["dataset_id"], batch_size=GATHER_BATCH_SIZE,
                                          num_workers=0, seed=seed)
        datamodule.setup("fit")
        model = train_predictor(InMemorySplit(datamodule, "train"), datamodule.sampling, epochs, seed, model_kwargs,
                                batch_size)
        results = evaluate_split(InMemorySplit(datamodule, "test"), model)
        row: dict[str, Any] = {"scene": scene, "files": [f"{stem}.txt" for stem in SCENES[scene]],
                               "dataset_id": document["dataset_id"], "n_train": document["samples"]["train"],
                               "n_test": document["samples"]["test"]}
        for who, metrics in results.items():
            row.update({f"{who}_{name}": value for name, value in metrics.items()})
        rows.append(row)
        log.info("ETH/UCY %s: %s", scene, row)
    average: dict[str, Any] = {"scene": "average", "files": [], "dataset_id": "", "n_train": 0,
                               "n_test": sum(r["n_test"] for r in rows)}
    for key in rows[0]:
        if key.startswith(("cv_", "predictor_")):
            average[key] = float(np.mean([r[key] for r in rows]))
    rows.append(average)
    if echo:
        print(format_table(rows))
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Per-scene ADE/FDE/minADE_k/minFDE_k of constant velocity and the predictor, as a Markdown table."""
    header = ("| scene | test agents | CV ADE | CV FDE | pred ADE | pred FDE | pred minADE_k | pred minFDE_k "
              "| pred miss rate |")
    lines = [header, "|" + " --- |" * 9]
    for r in rows:
        lines.append(f"| {r['scene']} | {r['n_test']} | {r['cv_ADE']:.3f} | {r['cv_FDE']:.3f} | "
                     f"{r.get('predictor_ADE', float('nan')):.3f} | {r.get('predictor_FDE', float('nan')):.3f} | "
                     f"{r.get('predictor_minADE_k', float('nan')):.3f} | {r.get('predictor_minFDE_k', float('nan')):.3f} "
                     f"| {r.get('predictor_miss_rate', float('nan')):.3f} |")
    return "\n".join(lines)


def _metrics(result: dict[str, Any]) -> dict[str, float]:
    return {name: float(result[name]) for name in METRICS}
