"""Hyperparameter sweeps of a model of the cascade: Ray Tune driven directly from a Hydra app.

`andon tune` (andon.models.tune_cli) composes the `andon train` config plus a `tune` node and a `ray`
node (TuneAppConfig). hydra-ray-launcher is not used: it pins old Ray and breaks with current Hydra,
so the app starts (or joins) Ray itself and runs `ray.tune.Tuner` over `run_training`. In order:

1. The search space (`tune.search_space`: train-config override key -> sampler expression such as
   `loguniform(1e-4,1e-2)`, `choice(32,64)`, `uniform(0,1)`, `randint(1,4)`) is parsed without eval
   (`parse_search_space`, Python's `ast` on the text, then literal arguments only), and every key is
   applied to the base config and validated by the TrainConfig schema: a typo is BadInput naming the
   key, before Ray starts. The dataset reference is resolved once, so every trial trains on one version.
2. Ray: `ray.address` null starts a local Ray (`ray.init(num_cpus=ray.num_cpus)`) and shuts it down
   after; otherwise the sweep joins that cluster and leaves it running.
3. Each trial composes its config (`trial_config`: base + its sampled overrides, validated again),
   and calls `run_training(register=False)` with `tune_reporter`'s callback, which tags the MLflow run with the
   sweep id and reports the monitored metric to Tune after each validation epoch (ASHA decides on it).
   Every trial is an MLflow run (config, metrics, model artefact when it finishes).
4. After the sweep the best finished trial's model is registered as a new version with alias
   `candidate` from the artefacts its run already logged (`runs:/<run>/model`, the weights of its
   best checkpoint): no retraining, and the version is exactly the model whose metric won.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import logging
import math
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from andon.dag.run_config import RayConfig
from andon.errors import BadInput
from andon.hydra_app import add_schemas
from andon.models.train_config import TrainConfig

log = logging.getLogger("andon.tune")

PRIMARY_SCHEMA_NAME = "tune_schema"
SAMPLERS = ("choice", "uniform", "loguniform", "randint")
OBJECTIVE = "objective"  # the key trials report the monitored metric under ("val/mAP" has Tune's "/" delimiter)
SWEEP_TAG = "andon_sweep_id"
TRIAL_TAG = "andon_trial_id"
# Tags of a trial's run copied onto the registered version (train.run_tags's lineage and the sweep).
LINEAGE_TAGS = ("model_name", "dataset_id", "dataset_name", "transform_name", "transform_code_hash", "config_hash",
                "code_version", "seed", SWEEP_TAG, TRIAL_TAG)


@dataclass
class ResourcesConfig:
    """What one trial asks of Ray: CPUs and GPUs (fractions allowed)."""

    cpu: float = 1.0
    gpu: float = 0.0


@dataclass
class TuneConfig:
    """The `tune` node of `andon tune`.

    `search_space` is a mapping (or its text, `{optimizer.lr: loguniform(1e-4,1e-2), ...}`) from
    train-config keys to sampler expressions; a plain value fixes the key for every trial. `metric`
    and `mode` default to the model class's `monitor`. ASHA stops poor trials at rungs of
    `grace_period` * `reduction_factor`^k epochs, up to `trainer.max_epochs`.
    """

    num_samples: int = 8
    search_space: Any = field(default_factory=dict)
    metric: str | None = None
    mode: str | None = None
    grace_period: int = 1
    reduction_factor: float = 2.0
    max_concurrent_trials: int | None = None
    resources_per_trial: ResourcesConfig = field(default_factory=ResourcesConfig)
    register: bool = True


@dataclass
class TuneAppConfig(TrainConfig):
    """The primary config of `andon tune`: the train config (the base of every trial), `tune`, `ray`."""

    tune: TuneConfig = field(default_factory=TuneConfig)
    ray: RayConfig = field(default_factory=RayConfig)


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=PRIMARY_SCHEMA_NAME, node=TuneAppConfig)


add_schemas(_register)


# ----- the search space --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sampler:
    """One parsed search-space entry: `kind` is a sampler name, or "fixed" for a plain value."""

    kind: str
    args: tuple[Any, ...]

    def to_tune(self) -> Any:
        from ray import tune

        if self.kind == "fixed":
            return self.args[0]
        if self.kind == "choice":
            return tune.choice(list(self.args))
        if self.kind == "randint":  # inclusive upper bound, as written; Tune's randint excludes it
            return tune.randint(int(self.args[0]), int(self.args[1]) + 1)
        return getattr(tune, self.kind)(float(self.args[0]), float(self.args[1]))

    def example(self) -> Any:
        """A value the sampler can draw (to validate the key and the value's type before Ray starts)."""
        return self.args[0]

    def __str__(self) -> str:
        return repr(self.args[0]) if self.kind == "fixed" else f"{self.kind}({', '.join(map(repr, self.args))})"


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise ValueError(f"{ast.unparse(node)!r} is not a config key")


_NAMES = {"true": True, "True": True, "false": False, "False": False, "null": None, "None": None}


def _literal(node: ast.expr) -> Any:
    """A literal value: numbers, strings, bare words (strings; true/false/null), lists of them."""
    if isinstance(node, ast.Name):
        return _NAMES.get(node.id, node.id)
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(item) for item in node.elts]
    try:
        return ast.literal_eval(node)
    except ValueError as exc:
        raise ValueError(f"{ast.unparse(node)!r} is not a literal value") from exc


def parse_sampler(key: str, expression: Any) -> Sampler:
    """One entry's expression (text like `choice(32,64)`, or a plain YAML value) as a Sampler.

    Raises:
        BadInput: naming the key, the expression and the samplers known.
    """
    if not isinstance(expression, str):
        return Sampler("fixed", (expression,))
    try:
        node = ast.parse(expression.strip(), mode="eval").body
    except SyntaxError as exc:
        raise BadInput(f"tune.search_space.{key}: {expression!r} is not an expression: {exc.msg}") from exc
    if not isinstance(node, ast.Call):
        try:
            return Sampler("fixed", (_literal(node),))
        except ValueError as exc:
            raise BadInput(f"tune.search_space.{key}: {exc}; write a sampler "
                           f"({', '.join(s + '(...)' for s in SAMPLERS)}) or a plain value") from exc
    name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
    if name not in SAMPLERS or node.keywords:
        raise BadInput(f"tune.search_space.{key}: {expression!r}: unknown sampler {name!r} (or keyword arguments); "
                       f"use one of {', '.join(s + '(...)' for s in SAMPLERS)}")
    try:
        args = tuple(_literal(arg) for arg in node.args)
    except ValueError as exc:
        raise BadInput(f"tune.search_space.{key}: {expression!r}: {exc}") from exc
    if name == "choice":
        if not args:
            raise BadInput(f"tune.search_space.{key}: choice() needs at least one value, e.g. choice(32,64)")
        return Sampler(name, args)
    if len(args) != 2 or not all(isinstance(a, int | float) and not isinstance(a, bool) for a in args):
        raise BadInput(f"tune.search_space.{key}: {name} takes two numbers (low, high), got {expression!r}")
    low, high = args
    if not low < high:
        raise BadInput(f"tune.search_space.{key}: {expression!r}: low must be below high")
    if name == "loguniform" and low <= 0:
        raise BadInput(f"tune.search_space.{key}: {expression!r}: loguniform needs low > 0")
    if name == "randint" and not all(isinstance(a, int) for a in args):
        raise BadInput(f"tune.search_space.{key}: {expression!r}: randint takes two whole numbers")
    return Sampler(name, args)


def parse_search_space(space: Any) -> dict[str, Sampler]:
    """The search space (a mapping of key -> expression, or its `{key: expr, ...}` text) as Samplers.

    Parsed with `ast` and literal arguments only: nothing in it is evaluated.

    Raises:
        BadInput: an empty space, a malformed text, a bad key or expression (named).
    """
    if isinstance(space, DictConfig):
        space = OmegaConf.to_container(space, resolve=True)
    if isinstance(space, str):
        text = space.strip()
        if not text:
            space = {}
        else:
            try:
                node = ast.parse(text if text.startswith("{") else "{" + text + "}", mode="eval").body
            except SyntaxError as exc:
                raise BadInput(f"tune.search_space {space!r} is not a mapping: {exc.msg}; write "
                               f"'{{optimizer.lr: loguniform(1e-4,1e-2), model.hidden_size: choice(32,64)}}'") from exc
            if not isinstance(node, ast.Dict) or any(k is None for k in node.keys):
                raise BadInput(f"tune.search_space {space!r} must be a mapping {{key: sampler, ...}}")
            parsed: dict[str, Sampler] = {}
            for key_node, value_node in zip(node.keys, node.values, strict=True):
                try:
                    key = _dotted(key_node)  # type: ignore[arg-type]
                except ValueError as exc:
                    raise BadInput(f"tune.search_space: {exc}") from exc
                if key in parsed:
                    raise BadInput(f"tune.search_space: key {key!r} is given twice")
                parsed[key] = parse_sampler(key, ast.unparse(value_node))
            space = parsed
    if not isinstance(space, Mapping):
        raise BadInput(f"tune.search_space must be a mapping of config keys to samplers, got {space!r}")
    out = {str(k): (v if isinstance(v, Sampler) else parse_sampler(str(k), v)) for k, v in space.items()}
    if not out:
        raise BadInput("tune.search_space is empty: give at least one key, e.g. "
                       "tune.search_space='{optimizer.lr: loguniform(1e-4,1e-2)}'")
    reserved = [k for k in out if k.split(".")[0] in ("tune", "ray", "workspace", "dataset_ref", "json", "register")]
    if reserved:
        raise BadInput(f"tune.search_space keys {reserved} are not hyperparameters of a trial: sweep model.*, "
                       f"optimizer.*, trainer.*, seed")
    return out


# ----- configs -----------------------------------------------------------------------------------
def base_config(cfg: DictConfig) -> DictConfig:
    """The train config every trial starts from: `cfg` without `tune` and `ray`, resolved, typed."""
    base = OmegaConf.merge(OmegaConf.structured(TrainConfig), {k: v for k, v in cfg.items()
                                                               if k not in ("tune", "ray")})
    OmegaConf.resolve(base)
    OmegaConf.set_struct(base, True)
    return base  # type: ignore[return-value]


def trial_config(base: DictConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """A trial's TrainConfig: `base` with its sampled `overrides` applied, validated by the schema.

    Raises:
        BadInput: a key the schema does not have or a value it refuses, naming the key.
    """
    from andon.models.train_config import train_config_from

    cfg = copy.deepcopy(base)
    for key, value in overrides.items():
        try:
            if OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT:
                raise BadInput(f"tune.search_space key {key!r} is not a key of the train config (model "
                               f"{cfg.model.get('name')!r}); see `andon tune --cfg job` for the keys")
            OmegaConf.update(cfg, key, value, merge=False)
        except OmegaConfBaseException as exc:
            raise BadInput(f"tune.search_space key {key!r} = {value!r}: {exc}".replace("\n", "; ")) from exc
    if not overrides:
        return train_config_from(cfg)
    try:
        return train_config_from(cfg)
    except BadInput as exc:
        raise BadInput(f"tune.search_space {dict(overrides)}: {exc}") from exc


_ABSENT = object()


def check_space(base: DictConfig, space: Mapping[str, Sampler]) -> None:
    """Compose one trial per sampler value (first choice, both bounds) before Ray starts."""
    for key, sampler in space.items():
        values: tuple[Any, ...] = sampler.args
        if sampler.kind in ("uniform", "loguniform"):  # Tune draws floats, whatever the bounds' spelling
            values = tuple(float(v) for v in values)
        for value in values:
            trial_config(base, {key: value})


# ----- a trial -----------------------------------------------------------------------------------
def tune_reporter(metric: str, sweep_id: str, trial_id: str) -> Any:
    """A Lightning callback that tags the trial's MLflow run with the sweep and reports the monitored
    metric to Tune after each validation epoch of the fit.

    The last epoch is not reported by it: ASHA stops a trial whose report reaches max_t, which would
    kill it before run_training logs its model; `run_trial` reports it after training. (Built on
    call so that importing this module, which holds the schema, does not import Lightning.)
    """
    import pytorch_lightning as pl

    class TuneReporter(pl.Callback):
        def __init__(self) -> None:
            self.run_id: str | None = None

        def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            logger = trainer.logger
            self.run_id = getattr(logger, "run_id", None)
            if self.run_id:
                client = logger.experiment  # type: ignore[union-attr]
                client.set_tag(self.run_id, SWEEP_TAG, sweep_id)
                client.set_tag(self.run_id, TRIAL_TAG, trial_id)

        def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            # (on_validation_end: a callback's on_validation_epoch_end runs before the module logs its metrics)
            if trainer.sanity_checking or trainer.state.fn != "fit":
                return
            if trainer.current_epoch + 1 >= (trainer.max_epochs or 0) > 0:
                return
            value = trainer.callback_metrics.get(metric)
            if value is None:
                return
            from ray import tune

            tune.report({OBJECTIVE: float(value), "epoch": trainer.current_epoch + 1, "run_id": self.run_id or ""})

    return TuneReporter()


def run_trial(config: dict[str, Any], base: DictConfig, metric: str, sweep_id: str, cpus: float) -> None:
    """The Tune trainable: train the trial's config (not registered) and report its final result."""
    from ray import tune

    from andon.models.train import run_training

    trial_id = tune.get_context().get_trial_id() or uuid.uuid4().hex[:8]
    cfg = trial_config(base, config)
    if cfg.trainer.num_threads is None:
        cfg.trainer.num_threads = max(1, int(cpus))
    reporter = tune_reporter(metric, sweep_id, trial_id)
    result = run_training(cfg, callbacks=[reporter], register=False)
    final = result.metrics.get(metric, math.nan)
    best = result.metrics.get(f"best/{metric}", final)
    tune.report({OBJECTIVE: float(final), "best": float(best), "epoch": int(result.metrics.get("epoch", 0)),
                 "run_id": result.run_id, "finished": bool(result.checkpoint)})


# ----- the sweep ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TrialOutcome:
    """One trial of a sweep: its sampled config, its best metric, Tune's status and its MLflow run."""

    trial_id: str
    config: dict[str, Any]
    metric: float | None
    status: str
    run_id: str | None
    finished: bool
    error: str | None = None
    reports: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "config": self.config, "metric": self.metric, "status": self.status,
                "run_id": self.run_id, "finished": self.finished, "error": self.error,
                "reports": self.reports}


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What a sweep produced; `best` is None when no trial finished."""

    sweep_id: str
    model: str
    metric: str
    mode: str
    trials: list[TrialOutcome]
    best: TrialOutcome | None
    version: str | None
    wall_s: float
    ray_init_s: float | None

    def to_dict(self) -> dict[str, Any]:
        best = None if self.best is None else {"config": self.best.config, "metric": self.best.metric,
                                               "run_id": self.best.run_id, "version": self.version,
                                               "trial_id": self.best.trial_id}
        return {"sweep_id": self.sweep_id, "model": self.model, "metric": self.metric, "mode": self.mode,
                "best": best, "trials": [t.to_dict() for t in self.trials], "wall_s": round(self.wall_s, 3),
                "ray_init_s": None if self.ray_init_s is None else round(self.ray_init_s, 3)}


def new_sweep_id(model: str) -> str:
    return f"{model}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


@contextlib.contextmanager
def ray_session(settings: RayConfig) -> Any:
    """Ray for the sweep: a local one (shut down after) or the cluster at `settings.address` (left running).

    Yields the seconds ray.init took (None when Ray was already initialised).
    """
    import ray

    from andon.dag.workers import start_ray

    owns = False
    init_s = None
    if not ray.is_initialized():
        init_s = start_ray(settings.address, settings.num_cpus, settings.num_gpus, settings.include_dashboard)
        owns = True
        log.info("ray: %s in %.1f s", "started locally" if settings.address is None else
                 f"joined {settings.address}", init_s)
    try:
        yield init_s
    finally:
        if owns:
            ray.shutdown()


def run_sweep(cfg: DictConfig) -> SweepResult:
    """Run the sweep `cfg` (a composed `tune` config) and register the best trial (module docstring).

    Raises:
        BadInput: a bad search space, key, tune setting or dataset, before Ray starts.
        CheckFailed: the dataset version is rejected.
    """
    from andon.models.train import model_class, resolve_dataset
    from andon.models.train_config import model_dict
    from andon.workspace import Workspace, resolve_root

    tune_cfg: TuneConfig = OmegaConf.to_object(cfg.tune)  # type: ignore[assignment]
    ray_cfg: RayConfig = OmegaConf.to_object(cfg.ray)  # type: ignore[assignment]
    _validate_tune(tune_cfg)
    space = parse_search_space(tune_cfg.search_space)

    base = base_config(cfg)
    base.workspace = str(resolve_root(base.workspace))  # trials run in Tune's trial directories
    typed = trial_config(base, {})  # the base itself first: its errors are not the search space's
    check_space(base, space)
    model_cfg = model_dict(typed.model)
    cls = model_class(model_cfg["_target_"])
    workspace = Workspace.open(typed.workspace)
    version = resolve_dataset(workspace, typed.dataset_ref, task=cls.task)
    base.dataset_ref = version.dataset_id  # every trial trains on this one version
    metric = tune_cfg.metric or cls.monitor[0]
    mode = tune_cfg.mode or (cls.monitor[1] if metric == cls.monitor[0] else "max")

    sweep_id = new_sweep_id(model_cfg["name"])
    started = time.perf_counter()
    # stdout is reserved for json=true's document: Ray's and Tune's output goes to stderr.
    with contextlib.redirect_stdout(sys.stderr), ray_session(ray_cfg) as init_s:
        grid = _tune(base, space, tune_cfg, metric, mode, sweep_id, typed.trainer.max_epochs,
                     workspace.root / "ray" / "tune")
    outcomes = [_outcome(result, space, mode) for result in grid]
    outcomes.sort(key=lambda t: t.trial_id)
    _close_runs(workspace, outcomes)
    finished = [t for t in outcomes if t.finished and t.metric is not None]
    best = None
    if finished:
        best = (max if mode == "max" else min)(finished, key=lambda t: t.metric)  # type: ignore[arg-type,return-value]
    version_ = None
    if best is not None and tune_cfg.register and typed.register:
        version_ = register_best(workspace, model_cfg["name"], best.run_id)  # type: ignore[arg-type]
    return SweepResult(sweep_id=sweep_id, model=model_cfg["name"], metric=metric, mode=mode, trials=outcomes,
                       best=best, version=version_, wall_s=time.perf_counter() - started, ray_init_s=init_s)


def _validate_tune(t: TuneConfig) -> None:
    if t.num_samples < 1:
        raise BadInput(f"tune.num_samples {t.num_samples} must be >= 1")
    if t.mode not in (None, "min", "max"):
        raise BadInput(f"tune.mode {t.mode!r}: choose min or max (null: the model's monitor)")
    if t.grace_period < 1 or t.reduction_factor <= 1:
        raise BadInput(f"tune.grace_period {t.grace_period} must be >= 1 and tune.reduction_factor "
                       f"{t.reduction_factor} > 1")
    if t.max_concurrent_trials is not None and t.max_concurrent_trials < 1:
        raise BadInput(f"tune.max_concurrent_trials {t.max_concurrent_trials} must be >= 1, or null")
    if t.resources_per_trial.cpu < 0 or t.resources_per_trial.gpu < 0 or (
            t.resources_per_trial.cpu == 0 and t.resources_per_trial.gpu == 0):
        raise BadInput(f"tune.resources_per_trial {t.resources_per_trial} must ask for some CPU or GPU")


def _tune(base: DictConfig, space: Mapping[str, Sampler], t: TuneConfig, metric: str, mode: str, sweep_id: str,
          max_epochs: int, storage: Any) -> Any:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    storage.mkdir(parents=True, exist_ok=True)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, base=base, metric=metric, sweep_id=sweep_id, cpus=t.resources_per_trial.cpu),
        {"cpu": t.resources_per_trial.cpu, "gpu": t.resources_per_trial.gpu})
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max_epochs,
                              grace_period=min(t.grace_period, max_epochs), reduction_factor=t.reduction_factor)
    tuner = tune.Tuner(
        trainable, param_space={key: s.to_tune() for key, s in space.items()},
        tune_config=tune.TuneConfig(metric=OBJECTIVE, mode=mode, scheduler=scheduler, num_samples=t.num_samples,
                                    max_concurrent_trials=t.max_concurrent_trials,
                                    search_alg=BasicVariantGenerator(random_state=int(base.seed))),
        run_config=tune.RunConfig(name=sweep_id, storage_path=str(storage), verbose=1,
                                  failure_config=tune.FailureConfig(max_failures=0)))
    return tuner.fit()


def _outcome(result: Any, space: Mapping[str, Sampler], mode: str) -> TrialOutcome:
    """A trial's outcome from its Tune result: the best value it reported, its run, whether it finished."""
    config = {key: result.config.get(key) for key in space}
    last = result.metrics or {}
    trial_id = str(last.get("trial_id") or "?")
    values = []
    frame = result.metrics_dataframe
    if frame is not None and OBJECTIVE in frame:
        values = [float(v) for v in frame[OBJECTIVE] if v == v]
    if "best" in last and last["best"] == last["best"]:
        values.append(float(last["best"]))
    value = (max if mode == "max" else min)(values) if values else None
    finished = bool(last.get("finished")) and result.error is None
    if result.error is not None:
        status, error = "ERROR", str(result.error).strip().splitlines()[-1][:300]
    else:
        status, error = ("TERMINATED" if finished else "STOPPED"), None
    return TrialOutcome(trial_id=trial_id, config=config, metric=value, status=status,
                        run_id=str(last["run_id"]) if last.get("run_id") else None,
                        finished=finished, error=error, reports=0 if frame is None else len(frame))


def _close_runs(workspace: Any, outcomes: Sequence[TrialOutcome]) -> None:
    """Mark the MLflow runs of trials ASHA stopped KILLED (and failed ones FAILED), tagged with their status."""
    from andon.models.registry import Registry

    open_ = [t for t in outcomes if t.run_id and not t.finished]
    if not open_:
        return
    client = Registry(workspace).client
    for t in open_:
        with contextlib.suppress(Exception):  # the run may be gone or already ended
            # Lightning ends an interrupted run FAILED; a trial the scheduler stopped was not a failure.
            if t.status == "STOPPED":
                client.set_terminated(t.run_id, "KILLED")
            elif client.get_run(t.run_id).info.status == "RUNNING":
                client.set_terminated(t.run_id, "FAILED")
            client.set_tag(t.run_id, "andon_trial_status", t.status)
            _retire_checkpoints(workspace, client.get_run(t.run_id).data.tags, t.run_id)


def _retire_checkpoints(workspace: Any, tags: Mapping[str, str], run_id: str) -> None:
    """A stopped trial's run.json says `stopped`: `andon train` of that config starts afresh rather
    than resuming into the closed MLflow run."""
    from andon.models.train import checkpoint_dir, read_state, write_state

    if not tags.get("model_name") or not tags.get("config_hash"):
        return
    directory = checkpoint_dir(workspace, tags["model_name"], tags["config_hash"])
    state = read_state(directory)
    if state.get("run_id") == run_id and state.get("status") == "running":
        write_state(directory, **{**state, "status": "stopped"})


def register_best(workspace: Any, model_name: str, run_id: str) -> str:
    """Register the run's logged model (its best checkpoint's weights) as a new version, alias candidate."""
    from andon.models.registry import Registry
    from andon.models.train import MODEL_ARTIFACT

    registry = Registry(workspace)
    run_tags = registry.client.get_run(run_id).data.tags
    tags = {k: v for k, v in run_tags.items() if k in LINEAGE_TAGS or k.startswith("upstream_")}
    version = registry.register(model_name, run_id, MODEL_ARTIFACT, tags)
    log.info("registered %s version %s (alias candidate) from run %s", model_name, version, run_id)
    return version
