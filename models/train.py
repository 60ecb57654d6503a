"""Training a model of the cascade: dataset version -> Lightning fit -> MLflow run -> `candidate` version.

`run_training(cfg)` is the one entry: `andon train` (a Hydra app, andon.models.train_cli) calls it,
and so do Ray Tune sweeps (with a callback reporting metrics) and the DAG executor. In order:

1. The config is typed (`train_config_from`) and the dataset reference resolved to one version; a
   rejected version stops the line (CheckFailed, exit 1), a missing one is bad input (exit 2).
2. The model class comes from the model config's `_target_`; its `task` picks the DataModule, whose
   setup checks the version's feature transform against the code in use (train/serve parity).
3. `pl.seed_everything(seed, workers=True)`, then the model is instantiated with the version's
   sampling and the optimizer settings; on CPU the Trainer is deterministic (same seed, same metrics).
4. Tracking: MLflow experiment `andon/<model name>`, the resolved config flattened into params and
   logged whole as `config.yaml`, tags naming the dataset version, transform, config hash and code
   version (and upstream model versions). Checkpoints go to
   WORKSPACE/checkpoints/<model>/<config hash>/ with last.ckpt; `run.json` there says whether the
   run finished. A run that did not finish resumes from its last.ckpt, in the same MLflow run.
5. After fit the best checkpoint's weights are logged as an MLflow model (with a batched input
   example and pinned requirements) beside the checkpoint, and registered as a new version with
   alias `candidate` (never `production`).

Model classes follow a small contract (`TrainableModel`): class attributes `task` and `monitor`
(metric name, "max"|"min"), a constructor taking the model config's fields plus `optimizer`
(OptimizerConfig's fields) and, when it declares it, `sampling` (the version's sampling spec), and
`example_input(batch)` (a batched model input as numpy arrays, for MLflow).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import logging
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytorch_lightning as pl
import torch
import yaml
from omegaconf import DictConfig

from andon.datasets.features import check_parity
from andon.datasets.versions import DatasetVersion, load_version
from andon.errors import AndonError, BadInput, CheckFailed
from andon.models.lineage import code_version, config_hash, flatten
from andon.models.train_config import TrainConfig, model_dict, train_config_from
from andon.workspace import Workspace

log = logging.getLogger("andon.train")

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "run.json"
LAST_CHECKPOINT = "last.ckpt"
MODEL_ARTIFACT = "model"
RUNNING, FINISHED = "running", "finished"
# Pinned, never inferred: MLflow's inference imports the model's modules in a subprocess (~10 s).
REQUIREMENT_PACKAGES: tuple[str, ...] = ("torch", "pytorch-lightning", "numpy")


class TrainableModel(Protocol):
    """What the training app needs of a model class (besides being a LightningModule).

    The constructor takes the model config's fields, `optimizer` (OptimizerConfig's fields) and,
    if it has such a parameter, `sampling` (the dataset version's sampling spec).
    """

    task: ClassVar[str]
    monitor: ClassVar[tuple[str, str]]

    def example_input(self, batch: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        model: the registered model name (model.name).
        version: the registered version, None when not registered.
        run_id: the MLflow run.
        metrics: final metrics (`val/mAP`, `train/loss`, ...), `best/<monitor>` and, with
            baseline_validation, `untrained/<metric>`.
        dataset_id: the dataset version trained on.
        checkpoint: path of the checkpoint whose weights were logged (the best by the monitor).
        resumed: whether the run resumed a killed run's last.ckpt.
        resumed_from_step: the global step it resumed from (None for a fresh run).
        config_hash: the hash naming the checkpoint directory and tagged on the run.
    """

    model: str
    version: str | None
    run_id: str
    metrics: dict[str, float]
    dataset_id: str
    checkpoint: str
    resumed: bool
    resumed_from_step: int | None = None
    config_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_dataset(workspace: Workspace, ref: str, task: str | None = None) -> DatasetVersion:
    """The accepted version a reference names.

    Raises:
        BadInput: nothing matches, or the version is of another task.
        CheckFailed: the version is rejected (the line stops; a model is never trained on it).
    """
    version = load_version(workspace, ref)
    if not version.accepted:
        reasons = "; ".join(version.reasons) or "its blocking checks failed"
        raise CheckFailed(f"dataset version {version.dataset_id} ({version.name}) is {version.status}: {reasons}. "
                          f"The line stops: nothing is trained on a rejected version; fix what its checks report "
                          f"and rebuild it (`andon dataset build`), or train on an accepted one (dataset=ID)")
    if task is not None and version.task != task:
        raise BadInput(f"dataset version {version.dataset_id} ({version.name}) is a {version.task!r} dataset but the "
                       f"model trains on {task!r} data: choose a {task} dataset (andon dataset list)")
    return version


def model_class(target: str) -> type:
    """The class a model config's `_target_` names, checked against the TrainableModel contract."""
    from hydra.utils import get_class

    try:
        cls = get_class(target)
    except Exception as exc:  # Hydra wraps the ImportError; the user's fix is the same either way
        raise BadInput(f"model._target_ {target!r} is not an importable class: {exc}".replace("\n", "; ")) from exc
    missing = [name for name in ("task", "monitor", "example_input") if not hasattr(cls, name)]
    if missing or not issubclass(cls, pl.LightningModule):
        raise BadInput(f"model._target_ {target!r} is not a trainable andon model (a LightningModule with task, "
                       f"monitor and example_input; missing {missing or ['LightningModule']})")
    return cls


def build_datamodule(workspace: Workspace, version: DatasetVersion, cfg: TrainConfig) -> pl.LightningDataModule:
    """The task's DataModule over the version, seeded by the run's seed, set up (parity checked)."""
    from andon.datasets.datamodules import DetectionDataModule, PredictionDataModule

    modules = {"detection": DetectionDataModule, "prediction": PredictionDataModule}
    if version.task not in modules:
        raise BadInput(f"dataset version {version.dataset_id} has task {version.task!r}; training knows "
                       f"{', '.join(modules)}")
    datamodule = modules[version.task](workspace, version, batch_size=cfg.trainer.batch_size,
                                       num_workers=cfg.trainer.num_workers, seed=cfg.seed)
    datamodule.setup("fit")
    check_parity(version.transform, version.task, dict(version.spec.get("sampling") or {}))
    return datamodule


def instantiate_model(model_cfg: Mapping[str, Any], sampling: Mapping[str, Any], optimizer: Mapping[str, Any]) -> Any:
    """`hydra.utils.instantiate` of the model config with the version's sampling and the optimizer."""
    from hydra.errors import InstantiationException
    from hydra.utils import get_class, instantiate

    extra: dict[str, Any] = {"optimizer": dict(optimizer)}
    # The version's sampling is offered to models that take it (the detector's grid comes from it).
    if "sampling" in inspect.signature(get_class(model_cfg["_target_"])).parameters:
        extra["sampling"] = dict(sampling)
    try:
        return instantiate({**model_cfg, **extra}, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, AndonError):
            raise cause from None
        if isinstance(cause, TypeError):  # an argument the model does not take: a key of the config
            raise BadInput(f"model config {model_cfg.get('name')!r} does not build its model: {cause}") from exc
        raise cause or exc from None


def config_document(cfg: TrainConfig) -> dict[str, Any]:
    """The resolved config as plain data (what is hashed, flattened into params and saved as config.yaml)."""
    doc = dataclasses.asdict(dataclasses.replace(cfg, model=None))
    doc["model"] = model_dict(cfg.model)
    return doc


# ----- checkpoints and resume --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ResumePoint:
    """A killed run to continue: its last checkpoint, MLflow run and the step it had reached."""

    checkpoint: Path
    run_id: str | None
    global_step: int
    epoch: int


def checkpoint_dir(workspace: Workspace, model_name: str, hash_: str) -> Path:
    return workspace.root / CHECKPOINTS_DIR / model_name / hash_[:20]


def read_state(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def write_state(directory: Path, **state: Any) -> None:
    """run.json, written to a temp name and renamed (a crash never leaves half a file)."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, sort_keys=True, indent=2))
    tmp.replace(directory / STATE_FILE)


def find_resume_point(directory: Path) -> ResumePoint | None:
    """The last checkpoint of an unfinished run in `directory`, if it loads; else None (train afresh)."""
    state = read_state(directory)
    last = directory / LAST_CHECKPOINT
    if state.get("status") != RUNNING or not last.is_file():
        return None
    try:
        # The checkpoint may be one written by a process killed mid-write: read it before trusting it.
        saved = torch.load(last, map_location="cpu", weights_only=False)
    except Exception as exc:  # any unreadable checkpoint means the same thing: start again
        log.warning("ignoring unreadable checkpoint %s (%s); training from scratch", last, exc)
        return None
    return ResumePoint(checkpoint=last, run_id=state.get("run_id"), global_step=int(saved.get("global_step", 0)),
                       epoch=int(saved.get("epoch", 0)))


def clear_checkpoints(directory: Path) -> None:
    """Checkpoints of a finished (already logged to MLflow) or unreadable run, before training afresh."""
    for path in directory.glob("*.ckpt"):
        path.unlink()


# ----- MLflow ------------------------------------------------------------------------------------
def pinned_requirements() -> list[str]:
    """`package==installed version` for the packages the logged model needs."""
    return [f"{name}=={metadata.version(name)}" for name in REQUIREMENT_PACKAGES]


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Raise named loggers to ERROR for a block (MLflow's expected warnings, explained where used)."""
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def log_trained_model(run_id: str, model: Any, example: Mapping[str, Any], checkpoint: Path, tmp_dir: Path) -> None:
    """Log the model (weights of `checkpoint`) as the run's `model/` artefact, and the checkpoint.

    The model is an MLflow model (MLmodel, pinned requirements, the batched input example) saved
    with `mlflow.pytorch.save_model` and logged as the run's artefacts: MLflow 3's `log_model` would
    file it as a separate LoggedModel outside the run's artefacts, where the registry's source
    `runs:/<run>/model` (andon.models.registry) does not find it.
    """
    import mlflow.pytorch
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow.get_tracking_uri())
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp, _quiet(
            "mlflow.models.signature", "mlflow.models.model", "mlflow.pytorch", "mlflow.utils.requirements_utils"):
        local = Path(tmp) / MODEL_ARTIFACT
        # "pickle": MLflow's default "pt2" (torch.export) takes only array inputs and cannot trace the
        # detector's data-dependent scatter. MLflow accepts the batched dict example and stores it
        # (input_example.json); its pyfunc wrapper for PyTorch refuses dict inputs, which it warns
        # about (silenced here): load the model with mlflow.pytorch.load_model and call it on a batch.
        mlflow.pytorch.save_model(model, str(local), pip_requirements=pinned_requirements(),
                                  input_example=dict(example), serialization_format="pickle")
        client.log_artifacts(run_id, str(local), MODEL_ARTIFACT)
    client.log_artifact(run_id, str(checkpoint), "checkpoints")


def open_run(registry: Any, name: str, tags: dict[str, str], document: dict[str, Any], resume: ResumePoint | None,
             tmp_dir: Path) -> Any:
    """The MLFlowLogger of the run: a new run with params and config.yaml, or the resumed run itself."""
    from pytorch_lightning.loggers import MLFlowLogger

    registry.experiment_id(f"andon/{name}")  # created with its artefacts inside the workspace
    logger = MLFlowLogger(experiment_name=f"andon/{name}", tracking_uri=registry.tracking_uri,
                          run_id=resume.run_id if resume else None, tags=tags)
    if resume is not None:
        log.info("resuming %s from %s (epoch %d, step %d)", name, resume.checkpoint, resume.epoch, resume.global_step)
        return logger
    logger.log_hyperparams(flatten(document))
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=True))
        logger.experiment.log_artifact(logger.run_id, str(path))
    return logger


def run_tags(cfg: TrainConfig, version: DatasetVersion, hash_: str, model_name: str) -> dict[str, str]:
    """Tags of the MLflow run and the registered version: lineage of the model."""
    tags = {"model_name": model_name, "dataset_id": version.dataset_id, "dataset_name": version.name,
            "transform_name": str(version.transform.get("name")),
            "transform_code_hash": str(version.transform.get("code_hash")), "config_hash": hash_,
            "code_version": code_version(), "seed": str(cfg.seed)}
    tags.update({f"upstream_{name}": str(value) for name, value in sorted(cfg.upstream.items())})
    return tags


# ----- the run -----------------------------------------------------------------------------------
def _trainer(cfg: TrainConfig, logger: Any, callbacks: list[pl.Callback], root: Path) -> pl.Trainer:
    t = cfg.trainer
    return pl.Trainer(accelerator="gpu" if t.accelerator == "cuda" else t.accelerator, devices=t.devices,
                      precision=t.precision, max_epochs=t.max_epochs, max_steps=t.max_steps,
                      limit_train_batches=t.limit_train_batches, limit_val_batches=t.limit_val_batches,
                      fast_dev_run=t.fast_dev_run, deterministic=t.deterministic,
                      log_every_n_steps=t.log_every_n_steps, check_val_every_n_epoch=t.check_val_every_n_epoch,
                      gradient_clip_val=t.gradient_clip_val, enable_progress_bar=t.enable_progress_bar,
                      enable_model_summary=False, num_sanity_val_steps=0, logger=logger, callbacks=callbacks,
                      default_root_dir=str(root))


def _floats(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        try:
            out[f"{prefix}{key}"] = float(value)
        except (TypeError, ValueError):
            continue
    return out


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads set for a block (None leaves them), restored after."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_training(cfg: TrainConfig | DictConfig, callbacks: Sequence[pl.Callback] = (),
                 register: bool = True) -> TrainResult:
    """Train, track and register one model (module docstring).

    Args:
        cfg: a composed `train` config (DictConfig) or a TrainConfig.
        callbacks: extra Lightning callbacks (e.g. a Ray Tune reporter); not part of the config hash.
        register: False skips the registration whatever `cfg.register` says (sweeps register the winner).

    Raises:
        BadInput: a bad config, a missing dataset, a dataset of another task, broken parity.
        CheckFailed: the dataset version is rejected.
    """
    cfg = train_config_from(cfg)
    with cpu_threads(cfg.trainer.num_threads):
        return _run_training(cfg, callbacks, register)


def _run_training(cfg: TrainConfig, callbacks: Sequence[pl.Callback], register: bool) -> TrainResult:
    from pytorch_lightning.callbacks import ModelCheckpoint

    from andon.models.registry import Registry

    workspace = Workspace.open(cfg.workspace)
    model_cfg = model_dict(cfg.model)
    name = model_cfg["name"]
    cls = model_class(model_cfg["_target_"])
    version = resolve_dataset(workspace, cfg.dataset_ref, task=cls.task)
    datamodule = build_datamodule(workspace, version, cfg)
    document = config_document(cfg)
    hash_ = config_hash(document, version.dataset_id)

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    model = instantiate_model(model_cfg, datamodule.sampling, dataclasses.asdict(cfg.optimizer))

    directory = checkpoint_dir(workspace, name, hash_)
    resume = find_resume_point(directory)
    if resume is None:
        clear_checkpoints(directory)
    registry = Registry(workspace)
    tags = run_tags(cfg, version, hash_, name)
    logger = open_run(registry, name, tags, document, resume, workspace.tmp_dir)
    run_id = logger.run_id
    write_state(directory, status=RUNNING, run_id=run_id, config_hash=hash_, dataset_id=version.dataset_id)

    metric, mode = cls.monitor
    has_val = len(version.samples("val")) > 0 and cfg.trainer.limit_val_batches != 0
    # Two checkpointers: Lightning's save_last writes last.ckpt only when a top-k checkpoint is
    # saved, i.e. when the monitored metric improves; resuming needs the latest epoch every time.
    latest = ModelCheckpoint(dirpath=str(directory), filename=LAST_CHECKPOINT.removesuffix(".ckpt"), monitor=None,
                             save_top_k=1, enable_version_counter=False)
    best = ModelCheckpoint(dirpath=str(directory), filename="best-{epoch:03d}", monitor=metric, mode=mode,
                           save_top_k=1, auto_insert_metric_name=False, enable_version_counter=False)
    checkpointers = [latest, best] if has_val else [latest]
    trainer = _trainer(cfg, logger, [*checkpointers, *callbacks], directory)
    if cfg.trainer.deterministic:
        # Deterministic mode also fills every new tensor with NaN to expose reads of uninitialised
        # memory (a debugging aid, ~25% of a CPU step here); results are deterministic without it.
        torch.utils.deterministic.fill_uninitialized_memory = False
    metrics: dict[str, float] = {}
    # stdout is reserved for `json=true`'s document: progress bars and tables print to stderr.
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        # run.json lives in the checkpoint directory; stale checkpoints were cleared above.
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        if cfg.baseline_validation and resume is None and has_val:
            (baseline,) = trainer.validate(model, datamodule=datamodule, verbose=False)
            metrics.update(_floats(baseline, prefix="untrained/"))
        trainer.fit(model, datamodule=datamodule, ckpt_path=str(resume.checkpoint) if resume else None)

    metrics.update(_floats(trainer.callback_metrics))
    metrics.update({"epoch": float(trainer.current_epoch), "global_step": float(trainer.global_step)})
    chosen = Path(best.best_model_path if has_val and best.best_model_path else directory / LAST_CHECKPOINT)
    if has_val and best.best_model_score is not None:
        metrics[f"best/{metric}"] = float(best.best_model_score)
    if cfg.trainer.fast_dev_run or not chosen.is_file():
        # A dry run (Lightning writes no checkpoint and logs nothing): nothing to log or register.
        write_state(directory, status=FINISHED, run_id=run_id, config_hash=hash_, dataset_id=version.dataset_id)
        return TrainResult(model=name, version=None, run_id=run_id, metrics=metrics, dataset_id=version.dataset_id,
                           checkpoint="", resumed=resume is not None,
                           resumed_from_step=resume.global_step if resume else None, config_hash=hash_)

    # The logged model is the best checkpoint's, loaded on the CPU so it loads anywhere.
    logged = type(model).load_from_checkpoint(str(chosen), map_location="cpu")
    with contextlib.redirect_stdout(sys.stderr):
        log_trained_model(run_id, logged, logged.example_input(example_batch(datamodule, "val" if has_val else "train")),
                          chosen, workspace.tmp_dir)
    for key, value in metrics.items():
        if key.startswith(("best/", "untrained/")):
            registry.client.log_metric(run_id, key, value)
    registered = None
    if register and cfg.register:
        registered = registry.register(name, run_id, MODEL_ARTIFACT, tags)
        log.info("registered %s version %s (alias candidate), run %s", name, registered, run_id)
    write_state(directory, status=FINISHED, run_id=run_id, config_hash=hash_, dataset_id=version.dataset_id,
                version=registered)
    return TrainResult(model=name, version=registered, run_id=run_id, metrics=metrics, dataset_id=version.dataset_id,
                       checkpoint=str(chosen), resumed=resume is not None,
                       resumed_from_step=resume.global_step if resume else None, config_hash=hash_)


def example_batch(datamodule: Any, split: str, frames: int = 2) -> dict[str, Any]:
    """A batch of the split's first frames, collated in this process (no loader workers to start)."""
    dataset = datamodule.dataset(split)
    return datamodule.collate_fn([dataset[i] for i in range(min(frames, len(dataset)))])


def summary(result: TrainResult) -> dict[str, Any]:
    """The JSON document of `andon train ... json=true` (an undefined metric, NaN, is null)."""
    metrics = {key: (value if math.isfinite(value) else None) for key, value in result.metrics.items()}
    return {"model": result.model, "version": result.version, "run_id": result.run_id, "metrics": metrics,
            "dataset_id": result.dataset_id, "checkpoint": result.checkpoint, "resumed": result.resumed,
            "resumed_from_step": result.resumed_from_step, "config_hash": result.config_hash}


def _environment_defaults() -> None:
    # MLflow's async logging would let a killed run lose its last metrics; andon wants them written.
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


_environment_defaults()
