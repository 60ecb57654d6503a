"""DatasetSpec: what a dataset is (a catalog query, sampling, split, validation), as Hydra schemas.

The dataclasses are the schemas of the `dataset` config group (stored as `dataset/base_dataset`) and
of the primary config `dataset_build` (stored as `dataset_build_schema`), so a typo in a key fails
at composition. They are not frozen: Hydra merges the YAML files into them. `spec_from_config`
turns a composed config into a typed, validated DatasetSpec; `spec_to_dict` gives the resolved spec
that a version stores and hashes.

Prediction windows: `history_steps` counts the observed timestamps *including* t0 and
`horizon_steps` the future ones, so ETH/UCY's "8 observed, 12 predicted" at 0.4 s is
`step_s=0.4, history_steps=8, horizon_steps=12`: the agent must be seen at t0 - 7 * 0.4 s ... t0 and
at t0 + 0.4 s ... t0 + 12 * 0.4 s.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from andon.errors import BadInput
from andon.hydra_app import add_schemas
from andon.scenarios.query import parse_query
from andon.scenarios.records import CLASSES

TASKS = ("detection", "prediction")
SPLITS = ("train", "val", "test")
DRIFT_METRICS = ("psi",)
SCHEMA_GROUP = "dataset"
SCHEMA_NAME = "base_dataset"
PRIMARY_SCHEMA_NAME = "dataset_build_schema"
FRACTION_TOLERANCE = 1e-6


@dataclass
class QuerySpec:
    """Which scenarios: the catalog query language plus structured terms, all of which must hold.

    `sources` are alternatives (any of them); `include_ids` are added even when the query misses them,
    `exclude_ids` are dropped. With `t_start_ns`/`t_end_ns`, scenarios outside [start, end] are dropped
    and the rest are clipped to it.
    """

    query: str = ""
    tags: list[str] = field(default_factory=list)
    exclude_tags: list[str] = field(default_factory=list)
    qa_min: float | None = None
    sources: list[str] = field(default_factory=list)
    include_ids: list[str] = field(default_factory=list)
    exclude_ids: list[str] = field(default_factory=list)
    t_start_ns: int | None = None
    t_end_ns: int | None = None


@dataclass
class SamplingSpec:
    """How samples are enumerated inside the scenarios' windows.

    Detection: every `stride`-th frame with lidar points; the point-cloud range and voxel size are
    what the loader crops and voxelises to. Prediction: every `stride`-th frame is a candidate t0; an
    agent of `agent_classes` is a sample when it is observed at every history and horizon timestamp.
    `max_agents_per_frame` keeps the nearest agents to the ego per t0 (None: all).
    """

    stride: int = 1
    point_cloud_range_m: list[float] = field(default_factory=lambda: [-51.2, -51.2, -3.0, 51.2, 51.2, 3.0])
    voxel_size_m: list[float] = field(default_factory=lambda: [0.4, 0.4, 6.0])
    step_s: float = 0.5
    history_steps: int = 4
    horizon_steps: int = 6
    max_agents_per_frame: int | None = 32
    agent_classes: list[str] = field(default_factory=lambda: ["vehicle", "pedestrian", "cyclist"])


@dataclass
class SplitSpec:
    """Fractions of logs per split, by a salted hash of the log id (never by frame).

    `pinned_test` is the frozen evaluation set: a list of scenario ids, or the path of a JSON file
    holding one. Their whole logs go to test; the list is stored by its SHA-256.
    """

    train: float = 0.7
    val: float = 0.15
    test: float = 0.15
    salt: str = "andon"
    pinned_test: Any = field(default_factory=list)


@dataclass
class BlockingSpec:
    """Which checks stop the line when they fail (a non-blocking failure is reported, not enforced)."""

    schema: bool = True
    point_cloud_range: bool = True
    splits: bool = True
    exclusion: bool = True
    drift: bool = True


@dataclass
class ValidationSpec:
    """Thresholds of the checks (see andon.datasets.validation).

    `acknowledge` entries accept a named change against the previous accepted version:
    `removed_tag:night`, `removed_class:cyclist`, `removed_share<=0.3`.
    Drift: PSI per histogram against the previous accepted version; the threshold is
    max(drift_floor, mean + drift_k * std) of the PSIs between consecutive accepted versions once
    there are drift_min_history of them, else drift_default_threshold. Histograms with fewer than
    drift_min_count values on either side are not compared (PSI of a handful of values is noise).
    """

    exclusion_max_share: float = 0.10
    acknowledge: list[str] = field(default_factory=list)
    drift_metric: str = "psi"
    drift_k: float = 3.0
    drift_floor: float = 0.1
    drift_min_history: int = 3
    drift_default_threshold: float = 0.25
    drift_min_count: int = 30
    max_outside_range_share: float = 0.5
    blocking: BlockingSpec = field(default_factory=BlockingSpec)


@dataclass
class DatasetSpec:
    """A dataset: its name (versions of one name are compared), task, query, sampling, split, checks.

    `seed` is for the loaders (shuffling, augmentation); the build itself is deterministic without it.
    """

    name: str = MISSING
    task: str = MISSING
    query: QuerySpec = field(default_factory=QuerySpec)
    sampling: SamplingSpec = field(default_factory=SamplingSpec)
    split: SplitSpec = field(default_factory=SplitSpec)
    validation: ValidationSpec = field(default_factory=ValidationSpec)
    seed: int = 0


@dataclass
class DatasetBuildConfig:
    """The primary config of `andon dataset build`."""

    dataset: DatasetSpec = MISSING
    workspace: str = "andon-workspace"
    json: bool = False


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group=SCHEMA_GROUP, name=SCHEMA_NAME, node=DatasetSpec)
    store.store(name=PRIMARY_SCHEMA_NAME, node=DatasetBuildConfig)


add_schemas(_register)


def spec_from_config(cfg: DictConfig | dict[str, Any]) -> DatasetSpec:
    """A typed, validated DatasetSpec from a composed `dataset` node (or a plain dict of one).

    Raises:
        BadInput: naming the bad key or value and what to do.
    """
    try:
        merged = OmegaConf.merge(OmegaConf.structured(DatasetSpec), cfg)
        spec = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise BadInput(f"dataset spec: {exc}".replace("\n", "; ")) from exc
    if not isinstance(spec, DatasetSpec):
        raise BadInput(f"dataset spec must be a mapping of DatasetSpec fields, got {type(spec).__name__}")
    validate_spec(spec)
    return spec


def spec_to_dict(spec: DatasetSpec) -> dict[str, Any]:
    """The resolved spec as plain JSON-able data (what a version stores and hashes)."""
    return dataclasses.asdict(spec)


def validate_spec(spec: DatasetSpec) -> None:
    """Refuse a spec that cannot build a meaningful dataset, naming the value and the fix."""
    if not spec.name or any(ch in spec.name for ch in "/\\ \t") or spec.name.startswith("."):
        raise BadInput(f"dataset.name {spec.name!r} must be a non-empty name without spaces or slashes, "
                       f"e.g. dataset.name=prediction_city")
    if spec.task not in TASKS:
        raise BadInput(f"dataset.task {spec.task!r} is not one of {', '.join(TASKS)}")
    _validate_query(spec.query)
    _validate_sampling(spec.task, spec.sampling)
    _validate_split(spec.split)
    _validate_validation(spec.validation)


def query_text(query: QuerySpec) -> str:
    """The QuerySpec as one catalog query (andon.scenarios.query), validated by the catalog's parser."""
    terms = [query.query.strip()] if query.query.strip() else []
    terms += [f"tag:{tag}" for tag in query.tags]
    terms += [f"-tag:{tag}" for tag in query.exclude_tags]
    terms += [f"source:{source}" for source in query.sources]
    if query.qa_min is not None:
        terms.append(f"qa>={query.qa_min!r}")
    text = " ".join(terms)
    parse_query(text)  # raises BadInput naming the bad term
    return text


def _validate_query(query: QuerySpec) -> None:
    for key, values in (("tags", query.tags), ("exclude_tags", query.exclude_tags), ("sources", query.sources)):
        bad = [v for v in values if not v or any(ch.isspace() for ch in v)]
        if bad:
            raise BadInput(f"dataset.query.{key} holds {bad[0]!r}: each entry is one word without spaces")
    if query.qa_min is not None and not (math.isfinite(query.qa_min) and 0.0 <= query.qa_min <= 1.0):
        raise BadInput(f"dataset.query.qa_min {query.qa_min!r} must be in [0, 1] (or null for no bound)")
    if query.t_start_ns is not None and query.t_end_ns is not None and query.t_end_ns < query.t_start_ns:
        raise BadInput(f"dataset.query.t_end_ns {query.t_end_ns} is before t_start_ns {query.t_start_ns}")
    overlap = sorted(set(query.include_ids) & set(query.exclude_ids))
    if overlap:
        raise BadInput(f"scenario {overlap[0]} is in both dataset.query.include_ids and exclude_ids: keep one")
    query_text(query)


def _validate_sampling(task: str, sampling: SamplingSpec) -> None:
    if sampling.stride < 1:
        raise BadInput(f"dataset.sampling.stride {sampling.stride} must be >= 1 (1 = every frame)")
    if task == "detection":
        rng = [float(v) for v in sampling.point_cloud_range_m]
        voxel = [float(v) for v in sampling.voxel_size_m]
        if len(rng) != 6 or not all(math.isfinite(v) for v in rng):
            raise BadInput(f"dataset.sampling.point_cloud_range_m {rng} must be 6 finite numbers "
                           f"[x0, y0, z0, x1, y1, z1] in metres")
        if len(voxel) != 3 or not all(math.isfinite(v) and v > 0 for v in voxel):
            raise BadInput(f"dataset.sampling.voxel_size_m {voxel} must be 3 positive numbers [dx, dy, dz] in metres")
        for axis in range(3):
            extent = rng[axis + 3] - rng[axis]
            if extent <= 0:
                raise BadInput(f"dataset.sampling.point_cloud_range_m {rng}: axis {'xyz'[axis]} has max <= min")
            cells = extent / voxel[axis]
            if abs(cells - round(cells)) > 1e-6:
                raise BadInput(f"dataset.sampling.point_cloud_range_m {rng}: the {'xyz'[axis]} extent {extent:g} m "
                               f"is not a whole number of voxels of {voxel[axis]:g} m; adjust one of them")
    else:
        if not (math.isfinite(sampling.step_s) and sampling.step_s > 0):
            raise BadInput(f"dataset.sampling.step_s {sampling.step_s} must be a positive number of seconds")
        if sampling.history_steps < 1:
            raise BadInput(f"dataset.sampling.history_steps {sampling.history_steps} must be >= 1 (it counts t0)")
        if sampling.horizon_steps < 1:
            raise BadInput(f"dataset.sampling.horizon_steps {sampling.horizon_steps} must be >= 1")
        if sampling.max_agents_per_frame is not None and sampling.max_agents_per_frame < 1:
            raise BadInput(f"dataset.sampling.max_agents_per_frame {sampling.max_agents_per_frame} must be >= 1, "
                           f"or null for every agent")
        unknown = sorted(set(sampling.agent_classes) - set(CLASSES))
        if unknown or not sampling.agent_classes:
            raise BadInput(f"dataset.sampling.agent_classes {list(sampling.agent_classes)}: use some of {list(CLASSES)}")


def _validate_split(split: SplitSpec) -> None:
    fractions = {name: getattr(split, name) for name in SPLITS}
    for name, value in fractions.items():
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise BadInput(f"dataset.split.{name} {value} must be a fraction in [0, 1]")
    total = sum(fractions.values())
    if abs(total - 1.0) > FRACTION_TOLERANCE:
        raise BadInput(f"dataset.split fractions train={split.train} val={split.val} test={split.test} "
                       f"sum to {total:g}, not 1: adjust them")
    pinned = split.pinned_test
    if not (isinstance(pinned, str) or (isinstance(pinned, list) and all(isinstance(v, str) for v in pinned))):
        raise BadInput(f"dataset.split.pinned_test {pinned!r} must be a list of scenario ids or the path "
                       f"of a JSON file holding one")


def _validate_validation(validation: ValidationSpec) -> None:
    if not 0.0 <= validation.exclusion_max_share <= 1.0:
        raise BadInput(f"dataset.validation.exclusion_max_share {validation.exclusion_max_share} must be in [0, 1]")
    if validation.drift_metric not in DRIFT_METRICS:
        raise BadInput(f"dataset.validation.drift_metric {validation.drift_metric!r}: choose one of "
                       f"{', '.join(DRIFT_METRICS)}")
    for key in ("drift_k", "drift_floor", "drift_default_threshold", "max_outside_range_share"):
        value = getattr(validation, key)
        if not (math.isfinite(value) and value >= 0):
            raise BadInput(f"dataset.validation.{key} {value} must be a finite number >= 0")
    for key in ("drift_min_history", "drift_min_count"):
        if getattr(validation, key) < 1:
            raise BadInput(f"dataset.validation.{key} {getattr(validation, key)} must be >= 1")
    from andon.datasets.exclusion import parse_acknowledgements

    parse_acknowledgements(validation.acknowledge)


def load_pinned_test(pinned: list[str] | str, base_dir: Path | None = None) -> list[str]:
    """The pinned scenario ids: the list itself, or the JSON list in the named file.

    Raises:
        BadInput: for a missing or malformed file, naming it.
    """
    if isinstance(pinned, list):
        return [str(v) for v in pinned]
    path = Path(pinned).expanduser()
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"dataset.split.pinned_test: no file {path}; give a JSON list of scenario ids") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"dataset.split.pinned_test: {path} is not a readable JSON list ({exc})") from exc
    if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
        raise BadInput(f"dataset.split.pinned_test: {path} must hold a JSON list of scenario id strings")
    return data
