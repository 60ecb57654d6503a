"""Gate sets as configuration: Hydra schemas, the frozen GateSet the evaluator works on, validation.

A gate set (`configs/gate/NAME.yaml`, schema `GateSetSpec`, stored as `gate/base_gate_set`) lists
gates, each `blocking` or `advisory`, of five kinds:

    data           every dataset a model of the candidate stack used is accepted by validation
    provenance     every node of the DAG (`dag`) is fresh, no cascade skew, configs and code recorded
    model_metric   `metric` of node `model` on the frozen common evaluation set (`eval_dataset`, its
                   newest accepted version unless `eval_dataset_id` pins one; `split`): an absolute
                   bound (`min` for higher-is-better metrics, `max` for lower-is-better ones) and/or
                   non-regression against production (`max_regression`: candidate may be at most δ
                   worse), decided on a paired bootstrap interval, overall and per slice
    suite          every blocking check of the named `suites` passes; flips are listed
    system_metric  km_per_disengagement >= `min` (and not worse than production with
                   `non_regression`), collisions <= `max` (default 0), collisions_per_km <= `max`

Metrics of model gates: mAP and AP:<class> (detector, higher is better); minADE_k, minFDE_k, ADE, FDE
and miss_rate (predictor, lower is better). Every key of a gate that its kind does not read must be
left at its default, so a key in the wrong place fails instead of being silently ignored; an unknown
key fails in Hydra's schema merge (ConfigKeyError), reported as BadInput naming it.

The schemas are not frozen (Hydra merges YAML into them); `gate_set_from_config` converts one into a
frozen, validated `GateSet` at the entry point, and only that travels inward.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from andon.dag.run_config import RayConfig
from andon.errors import BadInput
from andon.hydra_app import add_schemas
from andon.ids import hash_json

SCHEMA_GROUP = "gate"
SCHEMA_NAME = "base_gate_set"
PRIMARY_SCHEMA_NAME = "gate_run_schema"
DATA, PROVENANCE, MODEL_METRIC, SUITE, SYSTEM_METRIC = "data", "provenance", "model_metric", "suite", "system_metric"
KINDS: tuple[str, ...] = (DATA, PROVENANCE, MODEL_METRIC, SUITE, SYSTEM_METRIC)
BLOCKING, ADVISORY = "blocking", "advisory"
SEVERITIES: tuple[str, ...] = (BLOCKING, ADVISORY)
DETECTION_METRICS: tuple[str, ...] = ("mAP",)  # and AP:<class>
AP_PREFIX = "AP:"
PREDICTION_METRICS: tuple[str, ...] = ("minADE_k", "minFDE_k", "ADE", "FDE", "miss_rate")
KM_PER_DISENGAGEMENT, COLLISIONS, COLLISIONS_PER_KM = "km_per_disengagement", "collisions", "collisions_per_km"
SYSTEM_METRICS: tuple[str, ...] = (KM_PER_DISENGAGEMENT, COLLISIONS, COLLISIONS_PER_KM)
SPLITS: tuple[str, ...] = ("train", "val", "test")
# The unit a bootstrap resamples: a scenario (each frame or agent belongs to the shortest scenario
# window of the evaluation set that contains it) or a whole log (conservative: fewer, larger units).
UNITS: tuple[str, ...] = ("scenario", "log")
DETECTION_CLASSES: tuple[str, ...] = ("vehicle", "pedestrian", "cyclist")  # andon.datasets.features
AGENT_CLASSES: tuple[str, ...] = ("vehicle", "pedestrian", "cyclist", "static")  # andon.scenarios.records
MIN_RESAMPLES = 100
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
# Fields of GateSpec each kind reads (besides name, kind, severity, description).
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    DATA: (),
    PROVENANCE: ("dag",),
    MODEL_METRIC: ("model", "metric", "eval_dataset", "eval_dataset_id", "split", "unit", "min", "max",
                   "max_regression", "require_baseline", "slices", "min_scenarios"),
    SUITE: ("suites",),
    SYSTEM_METRIC: ("metric", "min", "max", "non_regression", "max_regression", "require_baseline", "scenarios"),
}
COMMON_FIELDS: tuple[str, ...] = ("name", "kind", "severity", "description")


# ----- Hydra schemas ---------------------------------------------------------------------------------
@dataclass
class BootstrapSpec:
    """The paired bootstrap of model-metric gates: `resamples` draws of the units, seeded."""

    resamples: int = 1000
    seed: int = 0


@dataclass
class SliceSpec:
    """A slice of the evaluation set: boxes or agents of `classes`, in frames or scenarios carrying
    every tag of `tags`, whose BEV range from the ego lies in [min_range_m, max_range_m). Empty
    fields do not filter."""

    name: str = MISSING
    classes: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    min_range_m: float | None = None
    max_range_m: float | None = None


@dataclass
class GateSpec:
    """One gate; see the module docstring for which fields each kind reads.

    Model-metric fields: `unit` is what the bootstrap resamples (scenario | log); `min_scenarios` the
    fewest such units the evaluation set must hold (fewer: insufficient evidence); `require_baseline`
    fails the gate when there is no production version to compare with (else non-regression is
    skipped with a note). System-metric fields: `min` is the km-per-disengagement floor [km], `max`
    the collisions bound (count, default 0) or collisions-per-km ceiling; `max_regression` with
    `non_regression` is the tolerated rate ratio above 1 (0.2: at most 20 % more events per km).
    """

    name: str = MISSING
    kind: str = MISSING
    severity: str = BLOCKING
    description: str = ""
    # model_metric (metric, min, max, max_regression and require_baseline also for system_metric)
    model: str | None = None
    metric: str | None = None
    eval_dataset: str | None = None
    eval_dataset_id: str | None = None
    split: str = "test"
    unit: str = "scenario"
    min: float | None = None
    max: float | None = None
    max_regression: float | None = None
    require_baseline: bool = False
    slices: list[SliceSpec] = field(default_factory=list)
    min_scenarios: int = 0
    # suite
    suites: list[str] = field(default_factory=list)
    # system_metric: `scenarios` is the catalog query the closed-loop simulation replays (empty: tag:synthetic)
    non_regression: bool = False
    scenarios: str = ""
    # provenance
    dag: str = "default"


@dataclass
class GateSetSpec:
    """A gate set (group `gate`): `confidence` of each end of every interval (one-sided, so 0.95 gives
    the 5th and 95th percentiles: andon.gates.bootstrap), the bootstrap's settings, whether a reviewer
    must approve before release, and the gates."""

    name: str = "default"
    description: str = ""
    confidence: float = 0.95
    bootstrap: BootstrapSpec = field(default_factory=BootstrapSpec)
    require_approval: bool = False
    gates: list[GateSpec] = field(default_factory=list)


@dataclass
class GateRunConfig:
    """The primary config of `andon gate run` (configs/gate_run.yaml).

    Attributes:
        gate: the gate set (config group `gate`).
        candidate: the candidate, NAME@ALIAS or NAME@VERSION of a DAG node (e.g. predictor@candidate).
        baseline: what non-regression compares with; empty: the same node at `production`.
        dag: the DAG the candidate stack is read from.
        workspace: the workspace.
        json: print one JSON document on stdout.
        rerun: recompute cached evaluations, suite and simulation results.
        device: where models run (null: CUDA when available, else the CPU).
        fallback_alias: an upstream node without a version at the candidate's alias takes this alias's
            version (e.g. production), and the report lists it; null: the run refuses (BadInput).
        worker, ray: where suites and simulations replay (worker=ray|sequential, as `andon dag run`).
    """

    gate: GateSetSpec = MISSING
    worker: Any = MISSING
    ray: RayConfig = field(default_factory=RayConfig)
    candidate: str = ""
    baseline: str = ""
    dag: str = "default"
    workspace: str = "andon-workspace"
    json: bool = False
    rerun: bool = False
    device: str | None = None
    fallback_alias: str | None = None


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group=SCHEMA_GROUP, name=SCHEMA_NAME, node=GateSetSpec)
    store.store(name=PRIMARY_SCHEMA_NAME, node=GateRunConfig)


add_schemas(_register)


# ----- frozen records --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Slice:
    """A validated slice (see SliceSpec)."""

    name: str
    classes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    min_range_m: float | None = None
    max_range_m: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "classes": list(self.classes), "tags": list(self.tags),
                "min_range_m": self.min_range_m, "max_range_m": self.max_range_m}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Slice:
        return cls(str(doc["name"]), tuple(doc.get("classes") or ()), tuple(doc.get("tags") or ()),
                   _opt_float(doc.get("min_range_m")), _opt_float(doc.get("max_range_m")))


@dataclass(frozen=True, slots=True)
class Gate:
    """A validated gate (see GateSpec and the module docstring)."""

    name: str
    kind: str
    severity: str = BLOCKING
    description: str = ""
    model: str | None = None
    metric: str | None = None
    eval_dataset: str | None = None
    eval_dataset_id: str | None = None
    split: str = "test"
    unit: str = "scenario"
    min: float | None = None
    max: float | None = None
    max_regression: float | None = None
    require_baseline: bool = False
    slices: tuple[Slice, ...] = ()
    min_scenarios: int = 0
    suites: tuple[str, ...] = ()
    non_regression: bool = False
    dag: str = "default"
    scenarios: str = ""

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCKING

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger value of the metric is better (mAP, AP, km per disengagement)."""
        return self.metric is not None and (self.metric in DETECTION_METRICS or self.metric.startswith(AP_PREFIX)
                                            or self.metric == KM_PER_DISENGAGEMENT)

    @property
    def task(self) -> str | None:
        """detection | prediction for model-metric gates, else None."""
        if self.kind != MODEL_METRIC or self.metric is None:
            return None
        return "prediction" if self.metric in PREDICTION_METRICS else "detection"

    def to_dict(self) -> dict[str, Any]:
        """The gate's common fields and those of its kind."""
        doc: dict[str, Any] = {"name": self.name, "kind": self.kind, "severity": self.severity,
                               "description": self.description}
        for key in KIND_FIELDS[self.kind]:
            value = getattr(self, key)
            if key == "slices":
                value = [s.to_dict() for s in value]
            elif isinstance(value, tuple):
                value = list(value)
            doc[key] = value
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Gate:
        """A gate from its to_dict() form (validated)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise BadInput(f"gate {doc.get('name')!r}: unknown keys {unknown}; allowed: {sorted(known)}")
        values = dict(doc)
        values["slices"] = tuple(Slice.from_dict(s) for s in values.get("slices") or ())
        values["suites"] = tuple(values.get("suites") or ())
        return _validated_gate(cls(**values))


@dataclass(frozen=True, slots=True)
class GateSet:
    """A validated gate set: what `andon gate run` judges a candidate with.

    Attributes:
        name, description: the set.
        confidence: one-sided confidence of each end of every interval a gate decides on (in (0.5, 1)).
        resamples, seed: the paired bootstrap's draws and seed.
        require_approval: a reviewer must approve (andon release approve) before promotion.
        gates: the gates, in order.
    """

    name: str
    gates: tuple[Gate, ...]
    description: str = ""
    confidence: float = 0.95
    resamples: int = 1000
    seed: int = 0
    require_approval: bool = False

    def gate(self, name: str) -> Gate:
        """The gate called `name`; BadInput listing the gates when there is none."""
        for gate in self.gates:
            if gate.name == name:
                return gate
        raise BadInput(f"no gate {name!r} in gate set {self.name!r}: choose one of "
                       f"{', '.join(g.name for g in self.gates) or 'none'}")

    @property
    def sha256(self) -> str:
        """The content hash of the set (what a report records as the gate set's config hash)."""
        return hash_json(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "confidence": self.confidence,
                "bootstrap": {"resamples": self.resamples, "seed": self.seed},
                "require_approval": self.require_approval, "gates": [g.to_dict() for g in self.gates]}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> GateSet:
        """A gate set from its to_dict() form (validated)."""
        boot = doc.get("bootstrap") or {}
        gates = tuple(Gate.from_dict(g) for g in doc.get("gates") or ())
        gate_set = cls(name=str(doc.get("name", "default")), gates=gates,
                       description=str(doc.get("description") or ""), confidence=float(doc.get("confidence", 0.95)),
                       resamples=int(boot.get("resamples", 1000)), seed=int(boot.get("seed", 0)),
                       require_approval=bool(doc.get("require_approval", False)))
        _validate_set(gate_set)
        return gate_set


# ----- conversion and validation ---------------------------------------------------------------------
def gate_set_from_config(cfg: DictConfig | Mapping[str, Any]) -> GateSet:
    """A validated GateSet from a composed `gate` node (or a plain mapping shaped like GateSetSpec).

    Raises:
        BadInput: naming the unknown key (a typo), the bad value, and what to do.
    """
    try:
        merged = OmegaConf.merge(OmegaConf.structured(GateSetSpec), cfg)
        spec = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        message = str(exc).splitlines()[0]
        key = getattr(exc, "full_key", None)
        where = f" at {key}" if key and str(key) not in message else ""
        raise BadInput(f"gate set config{where}: {message} (fix or remove the key; andon.gates.spec lists "
                       f"the keys of each gate kind)") from exc
    if not isinstance(spec, GateSetSpec):
        raise BadInput(f"the gate set config must be a mapping of GateSetSpec fields, got {type(spec).__name__}")
    gates = tuple(_gate_from_spec(g, i) for i, g in enumerate(spec.gates))
    gate_set = GateSet(name=spec.name, gates=gates, description=spec.description, confidence=spec.confidence,
                       resamples=spec.bootstrap.resamples, seed=spec.bootstrap.seed,
                       require_approval=spec.require_approval)
    _validate_set(gate_set)
    return gate_set


def load_gate_set(ref: str, config_dirs: Sequence[str] = ()) -> GateSet:
    """The gate set a config name (configs/gate/NAME.yaml, or one in `config_dirs`) or a YAML file names.

    Raises:
        BadInput: an unknown name, an unreadable file, or a bad gate set.
    """
    path = Path(ref).expanduser()
    if ref.endswith((".yaml", ".yml")) or path.is_file():
        import yaml

        try:
            doc = OmegaConf.load(path)
        except (OSError, OmegaConfBaseException, ValueError, yaml.YAMLError) as exc:
            raise BadInput(f"gate set file {path} is unreadable ({exc}): give a YAML file of GateSetSpec "
                           f"fields") from exc
        if isinstance(doc, DictConfig) and "defaults" in doc:
            doc = OmegaConf.create({k: v for k, v in doc.items() if k != "defaults"})
        return gate_set_from_config(doc)
    from andon.dag.configs import ConfigSession

    with ConfigSession(config_dirs) as session:
        options = session.options(SCHEMA_GROUP)
        if ref not in options:
            raise BadInput(f"no gate set {ref!r}: choose one of {', '.join(sorted(options)) or 'none'} "
                           f"(configs/gate/NAME.yaml), or give the path of a gate set file")
        cfg = session.compose_config(None, [f"+{SCHEMA_GROUP}={ref}"])
        return gate_set_from_config(cfg[SCHEMA_GROUP])


def _gate_from_spec(spec: GateSpec, index: int) -> Gate:
    name = spec.name if isinstance(spec.name, str) else f"#{index}"
    slices = tuple(Slice(s.name, tuple(s.classes), tuple(s.tags), _opt_float(s.min_range_m), _opt_float(s.max_range_m))
                   for s in spec.slices)
    gate = Gate(name=name, kind=spec.kind, severity=spec.severity, description=spec.description, model=spec.model,
                metric=spec.metric, eval_dataset=spec.eval_dataset, eval_dataset_id=spec.eval_dataset_id,
                split=spec.split, unit=spec.unit, min=_opt_float(spec.min), max=_opt_float(spec.max),
                max_regression=_opt_float(spec.max_regression), require_baseline=spec.require_baseline,
                slices=slices, min_scenarios=spec.min_scenarios, suites=tuple(spec.suites),
                non_regression=spec.non_regression, dag=spec.dag, scenarios=spec.scenarios or "")
    return _validated_gate(gate)


_DEFAULTS = Gate(name="_", kind=DATA)


def _validated_gate(gate: Gate) -> Gate:
    """The gate, if every value is right for its kind; BadInput listing what is wrong otherwise."""
    where = f"gate {gate.name!r}"
    problems: list[str] = []
    if not _NAME.match(gate.name):
        problems.append(f"name {gate.name!r} must start with a letter and hold only letters, digits, _ and -")
    if gate.kind not in KINDS:
        raise BadInput(f"{where}: kind {gate.kind!r} is not one of {', '.join(KINDS)}")
    if gate.severity not in SEVERITIES:
        problems.append(f"severity {gate.severity!r} is not one of {', '.join(SEVERITIES)}")
    allowed = set(COMMON_FIELDS) | set(KIND_FIELDS[gate.kind])
    for f in fields(Gate):
        if f.name not in allowed and getattr(gate, f.name) != getattr(_DEFAULTS, f.name):
            problems.append(f"`{f.name}` is not a key of a {gate.kind} gate (it takes "
                            f"{', '.join(KIND_FIELDS[gate.kind]) or 'no keys'})")
    for key in ("min", "max", "max_regression"):
        value = getattr(gate, key)
        if value is not None and not math.isfinite(value):
            problems.append(f"{key}={value!r} must be a finite number")
    if gate.max_regression is not None and gate.max_regression < 0:
        problems.append(f"max_regression={gate.max_regression!r} must be >= 0 (how much worse the candidate may be)")
    if gate.kind == MODEL_METRIC:
        problems += _model_metric_problems(gate)
    elif gate.kind == SUITE:
        if not gate.suites:
            problems.append("a suite gate needs `suites`: the names of the suites whose blocking checks must pass")
        if len(set(gate.suites)) != len(gate.suites):
            problems.append(f"suites {list(gate.suites)} repeat a name")
    elif gate.kind == SYSTEM_METRIC:
        problems += _system_metric_problems(gate)
    elif gate.kind == PROVENANCE and not gate.dag:
        problems.append("a provenance gate needs `dag`: the DAG config whose nodes must be fresh")
    if problems:
        raise BadInput(f"{where}: " + "; ".join(problems))
    return gate


def _model_metric_problems(gate: Gate) -> list[str]:
    problems: list[str] = []
    metric = gate.metric
    if not gate.model:
        problems.append("`model` (the DAG node whose metric is gated, e.g. detector) is required")
    if metric is None:
        problems.append(f"`metric` is required: one of {', '.join(_model_metrics())}")
    elif metric.startswith(AP_PREFIX):
        if metric[len(AP_PREFIX):] not in DETECTION_CLASSES:
            problems.append(f"metric {metric!r}: AP of one of {', '.join(DETECTION_CLASSES)} (e.g. AP:pedestrian)")
    elif metric not in DETECTION_METRICS + PREDICTION_METRICS:
        problems.append(f"metric {metric!r} is not one of {', '.join(_model_metrics())}")
    if not gate.eval_dataset and not gate.eval_dataset_id:
        problems.append("`eval_dataset` (a dataset name: its newest accepted version is pinned) or "
                        "`eval_dataset_id` is required")
    if gate.split not in SPLITS:
        problems.append(f"split {gate.split!r} is not one of {', '.join(SPLITS)}")
    if gate.unit not in UNITS:
        problems.append(f"unit {gate.unit!r} is not one of {', '.join(UNITS)}")
    if gate.min is None and gate.max is None and gate.max_regression is None:
        problems.append("give an absolute bound (`min` or `max`) and/or `max_regression` (non-regression "
                        "against production)")
    if metric is not None and gate.min is not None and not gate.higher_is_better:
        problems.append(f"{metric} is lower-is-better: bound it with `max`, not `min`")
    if metric is not None and gate.max is not None and gate.higher_is_better:
        problems.append(f"{metric} is higher-is-better: bound it with `min`, not `max`")
    if gate.require_baseline and gate.max_regression is None:
        problems.append("require_baseline needs max_regression (the non-regression it requires a baseline for)")
    if gate.min_scenarios < 0:
        problems.append(f"min_scenarios={gate.min_scenarios} must be >= 0")
    names = [s.name for s in gate.slices]
    if len(set(names)) != len(names):
        problems.append(f"slice names {names} repeat a name")
    for s in gate.slices:
        problems += [f"slice {s.name!r}: {p}" for p in _slice_problems(s, gate.task or "detection")]
    return problems


def _slice_problems(s: Slice, task: str) -> list[str]:
    problems: list[str] = []
    if not _NAME.match(s.name) or s.name == "all":
        problems.append("name must start with a letter, hold only letters, digits, _ and -, and not be `all`")
    classes = DETECTION_CLASSES if task == "detection" else AGENT_CLASSES
    bad = [c for c in s.classes if c not in classes]
    if bad:
        problems.append(f"classes {bad} are not {task} classes ({', '.join(classes)})")
    for key in ("min_range_m", "max_range_m"):
        value = getattr(s, key)
        if value is not None and not (math.isfinite(value) and value >= 0):
            problems.append(f"{key}={value!r} must be a finite distance >= 0")
    if s.min_range_m is not None and s.max_range_m is not None and s.min_range_m >= s.max_range_m:
        problems.append(f"min_range_m {s.min_range_m} must be below max_range_m {s.max_range_m}")
    return problems


def _system_metric_problems(gate: Gate) -> list[str]:
    problems: list[str] = []
    if gate.metric not in SYSTEM_METRICS:
        return [f"metric {gate.metric!r} is not one of {', '.join(SYSTEM_METRICS)}"]
    if gate.metric == KM_PER_DISENGAGEMENT:
        if gate.max is not None:
            problems.append("km_per_disengagement is higher-is-better: its floor is `min`, not `max`")
        if gate.min is None and not gate.non_regression:
            problems.append("km_per_disengagement needs a floor `min` [km] and/or non_regression: true")
        if gate.min is not None and gate.min <= 0:
            problems.append(f"min={gate.min} km must be > 0")
    else:
        if gate.min is not None:
            problems.append(f"{gate.metric} is lower-is-better: bound it with `max`, not `min`")
        if gate.metric == COLLISIONS_PER_KM and gate.max is None and not gate.non_regression:
            problems.append("collisions_per_km needs `max` [collisions per km] and/or non_regression: true")
        if gate.max is not None and gate.max < 0:
            problems.append(f"max={gate.max} must be >= 0")
        if gate.metric == COLLISIONS and gate.non_regression:
            problems.append("collisions is a count with a fixed bound (`max`, default 0); use collisions_per_km "
                            "for non-regression")
    if gate.max_regression is not None and not gate.non_regression:
        problems.append("max_regression (a tolerated rate ratio above 1) needs non_regression: true")
    if gate.require_baseline and not gate.non_regression:
        problems.append("require_baseline needs non_regression: true")
    return problems


def _validate_set(gate_set: GateSet) -> None:
    problems: list[str] = []
    if not _NAME.match(gate_set.name):
        problems.append(f"name {gate_set.name!r} must start with a letter and hold only letters, digits, _ and -")
    if not (math.isfinite(gate_set.confidence) and 0.5 < gate_set.confidence < 1.0):
        problems.append(f"confidence {gate_set.confidence!r} must lie in (0.5, 1) (e.g. 0.95: each bound "
                        f"one-sided at 95 %)")
    if gate_set.resamples < MIN_RESAMPLES:
        problems.append(f"bootstrap.resamples={gate_set.resamples} must be >= {MIN_RESAMPLES}")
    if gate_set.seed < 0:
        problems.append(f"bootstrap.seed={gate_set.seed} must be >= 0")
    if not gate_set.gates:
        problems.append("it has no gates: a gate set that judges nothing would pass everything")
    names = [g.name for g in gate_set.gates]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"gate names used twice: {', '.join(repeated)}")
    if problems:
        raise BadInput(f"gate set {gate_set.name!r}: " + "; ".join(problems))


def _model_metrics() -> list[str]:
    return [*DETECTION_METRICS, *(AP_PREFIX + c for c in DETECTION_CLASSES), *PREDICTION_METRICS]


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
