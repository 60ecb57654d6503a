"""Suite files: the YAML schema (dataclasses OmegaConf checks) and the frozen `Suite` record.

A suite is a YAML file, `configs/suite/NAME.yaml` (shipped with andon) or any path:

    name: pedestrian_crossings          # letters, digits, _ . - (JUnit class names and file names use it)
    owner: perception-team
    description: pedestrians near crossings are detected
    selector:                           # exactly one of query / ids / frozen
      query: "tag:pedestrian_crossing"  # the catalog's search language (andon.scenarios.query)
      # ids: [3f2a..., 91bc...]         # explicit scenario ids (or unique prefixes of 6+ characters)
      # frozen: {ids: [...], sha256: ...}  # a pinned list: sha256 = andon.ids.hash_json(sorted(ids))
    checks:
      - name: pedestrian_recall_30m
        metric: detection_recall        # a name of andon.test_suites.metrics.METRICS
        scope: per_scenario             # per_scenario | aggregate (over the suite)
        filters: {classes: [pedestrian], max_range_m: 30.0}
        params: {}                      # metric parameters (each metric lists its own, with defaults)
        comparator: ">="                # >= <= > < ==
        threshold: 0.9
        severity: blocking              # blocking | warning
        mode: null                      # open_loop | closed_loop; null: the metric's default

Filters: `classes` (andon's classes; empty = all), `min_range_m` / `max_range_m` (BEV distance from the
ego), `tags` (the check applies only to scenarios carrying every one of these tags; others are "not
applicable"), `involved_tag` (only ground-truth agents named by the log's behaviour events with that
tag, while the event lasts). A metric that cannot use a filter or a parameter refuses it at load.

What fails where (decided once):
- bad input — a typo'd or unknown key, a wrong type, a bad comparator/severity/scope/mode, a filter or
  parameter the metric does not take, a frozen list whose sha256 does not match, a bad query, no
  checks, duplicate check names — raises BadInput (exit 2) when the suite is loaded, naming the key;
- an unknown metric is not a load error: the suite is well-formed but cannot be judged, so
  `andon suite run` evaluates it as a FAILED check ("unknown metric ...", exit 1) and
  `andon suite validate` exits 1 naming it. A suite never passes a check it cannot compute.

The schema dataclasses are not frozen (OmegaConf merges the YAML into them); `load_suite` converts the
merged config into the frozen `Suite`, whose `sha256` (of its canonical JSON) names what was judged.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from andon.errors import BadInput
from andon.ids import hash_json
from andon.scenarios.query import parse_query
from andon.scenarios.records import CLASSES
from andon.simulation.trace import MODES

PER_SCENARIO = "per_scenario"
AGGREGATE = "aggregate"
SCOPES = (PER_SCENARIO, AGGREGATE)
BLOCKING = "blocking"
WARNING = "warning"
SEVERITIES = (BLOCKING, WARNING)
COMPARATORS = (">=", "<=", ">", "<", "==")
SUITE_DIR = "suite"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# ----- schema (what OmegaConf merges the YAML into) ---------------------------------------------------
@dataclass
class FiltersConfig:
    """Which objects and scenarios a check looks at (module docstring)."""

    classes: list[str] = field(default_factory=list)
    min_range_m: float | None = None
    max_range_m: float | None = None
    tags: list[str] = field(default_factory=list)
    involved_tag: str | None = None


@dataclass
class CheckConfig:
    """One check: a metric, where it is judged, against what, and how much a failure weighs."""

    name: str = MISSING
    metric: str = MISSING
    scope: str = PER_SCENARIO
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    params: dict[str, float] = field(default_factory=dict)
    comparator: str = MISSING
    threshold: float = MISSING
    severity: str = BLOCKING
    mode: str | None = None
    description: str = ""


@dataclass
class FrozenConfig:
    ids: list[str] = field(default_factory=list)
    sha256: str = MISSING


@dataclass
class SelectorConfig:
    """Exactly one of `query`, `ids`, `frozen`."""

    query: str | None = None
    ids: list[str] | None = None
    frozen: FrozenConfig | None = None


@dataclass
class SuiteConfig:
    """The schema of a suite file."""

    name: str = MISSING
    owner: str = MISSING
    description: str = ""
    selector: SelectorConfig = field(default_factory=SelectorConfig)
    checks: list[CheckConfig] = field(default_factory=list)


# ----- records ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Filters:
    """A check's filters, validated (see the module docstring). Empty `classes` means every class."""

    classes: tuple[str, ...] = ()
    min_range_m: float | None = None
    max_range_m: float | None = None
    tags: tuple[str, ...] = ()
    involved_tag: str | None = None

    def given(self) -> tuple[str, ...]:
        """Names of the filters this record sets (to check them against what a metric takes)."""
        return tuple(name for name in ("classes", "min_range_m", "max_range_m", "tags", "involved_tag")
                     if getattr(self, name) not in ((), None))

    def to_dict(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "min_range_m": self.min_range_m, "max_range_m": self.max_range_m,
                "tags": list(self.tags), "involved_tag": self.involved_tag}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Filters:
        return cls(tuple(doc.get("classes") or ()), doc.get("min_range_m"), doc.get("max_range_m"),
                   tuple(doc.get("tags") or ()), doc.get("involved_tag"))


@dataclass(frozen=True, slots=True)
class Check:
    """A validated check. `mode` None: the metric's default mode (resolved by the runner)."""

    name: str
    metric: str
    scope: str
    comparator: str
    threshold: float
    severity: str
    filters: Filters = Filters()
    params: tuple[tuple[str, float], ...] = ()
    mode: str | None = None
    description: str = ""

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCKING

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric, "scope": self.scope, "comparator": self.comparator,
                "threshold": self.threshold, "severity": self.severity, "filters": self.filters.to_dict(),
                "params": dict(self.params), "mode": self.mode, "description": self.description}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Check:
        return cls(str(doc["name"]), str(doc["metric"]), str(doc["scope"]), str(doc["comparator"]),
                   float(doc["threshold"]), str(doc["severity"]), Filters.from_dict(doc.get("filters") or {}),
                   tuple(sorted((str(k), float(v)) for k, v in (doc.get("params") or {}).items())),
                   doc.get("mode"), str(doc.get("description", "")))


@dataclass(frozen=True, slots=True)
class Selector:
    """Which scenarios: `kind` is "query", "ids" or "frozen"; `ids` holds the ids of the last two."""

    kind: str
    query: str = ""
    ids: tuple[str, ...] = ()
    sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "query":
            return {"query": self.query}
        if self.kind == "ids":
            return {"ids": list(self.ids)}
        return {"frozen": {"ids": list(self.ids), "sha256": self.sha256}}

    def describe(self) -> str:
        if self.kind == "query":
            return f"query {self.query!r}" if self.query else "every active scenario (empty query)"
        return f"{len(self.ids)} {'pinned ' if self.kind == 'frozen' else ''}scenario id(s)"


@dataclass(frozen=True, slots=True)
class Suite:
    """A loaded, validated suite; `source` is where it came from (a file path), kept out of its hash."""

    name: str
    owner: str
    description: str
    selector: Selector
    checks: tuple[Check, ...]
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "owner": self.owner, "description": self.description,
                "selector": self.selector.to_dict(), "checks": [c.to_dict() for c in self.checks]}

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical JSON of the suite's content (what it selects and checks)."""
        return hash_json(self.to_dict())

    def check(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise BadInput(f"suite {self.name} has no check {name!r}: it has {', '.join(c.name for c in self.checks)}")


def frozen_sha256(ids: list[str] | tuple[str, ...]) -> str:
    """The pin of a frozen list: SHA-256 of the canonical JSON of its sorted ids."""
    return hash_json(sorted(str(i) for i in ids))


# ----- loading ----------------------------------------------------------------------------------------
def suite_dir() -> Path:
    """The folder of the suites shipped with andon (configs/suite/)."""
    return Path(str(resources.files("andon.configs").joinpath(SUITE_DIR)))


def suite_names() -> list[str]:
    """Names of the shipped suites, sorted."""
    directory = suite_dir()
    return sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []


def suite_path(ref: str) -> Path:
    """The file a suite reference names: a path (ends in .yaml/.yml or exists) or a shipped suite's name.

    Raises:
        BadInput: no such file, or no shipped suite of that name (listing the names).
    """
    path = Path(ref).expanduser()
    if ref.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise BadInput(f"no suite file {path}: give a suite name ({', '.join(suite_names())}) or an existing file")
        return path
    if not _NAME.match(ref):
        raise BadInput(f"suite {ref!r} is neither a suite name nor a .yaml file")
    candidate = suite_dir() / f"{ref}.yaml"
    if not candidate.is_file():
        raise BadInput(f"no suite {ref!r}: choose one of {', '.join(suite_names()) or 'none'} (configs/suite/NAME.yaml), "
                       f"or give the path of a suite file (`andon suite list` shows them)")
    return candidate


def load_suite(ref: str) -> Suite:
    """Load and validate a suite by name (configs/suite/NAME.yaml) or path.

    Raises:
        BadInput: an unreadable file or any schema error, naming the file, the key and what to do.
    """
    path = suite_path(ref)
    try:
        raw = OmegaConf.load(path)
    except (OSError, OmegaConfBaseException, ValueError) as exc:
        raise BadInput(f"suite file {path} is not readable YAML: {exc}") from exc
    return suite_from_config(raw, str(path))


def suite_from_config(raw: DictConfig | dict[str, Any], source: str = "<suite>") -> Suite:
    """A validated Suite from a parsed suite document (a DictConfig or a plain dict).

    Raises:
        BadInput: naming the source, the key and what to do.
    """
    if isinstance(raw, dict):
        raw = OmegaConf.create(raw)
    if not isinstance(raw, DictConfig):
        raise BadInput(f"suite {source} must hold a mapping (name, owner, selector, checks), got a list")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(SuiteConfig), raw)
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise BadInput(f"suite {source}: {_omega_message(exc)}") from exc
    if not isinstance(config, SuiteConfig):
        raise BadInput(f"suite {source} must hold a mapping of suite fields (name, owner, selector, checks)")
    return _validate(config, source)


def _omega_message(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None)
    message = str(getattr(exc, "msg", None) or exc).split("\n")[0]
    where = f"key {key!r}: " if key else ""
    fix = " (check its spelling: the keys are those of test_suites/schema.py)" if "not in" in message.lower() else ""
    return f"{where}{message}{fix}"


def _bad(source: str, key: str, message: str) -> BadInput:
    return BadInput(f"suite {source}: {key}: {message}")


def _validate(config: SuiteConfig, source: str) -> Suite:
    if not _NAME.match(config.name or ""):
        raise _bad(source, "name", f"{config.name!r} must be letters, digits, '_', '.' or '-' (it names files)")
    if not config.owner.strip():
        raise _bad(source, "owner", "say who owns the suite (a team or a person)")
    selector = _selector(config.selector, source)
    if not config.checks:
        raise _bad(source, "checks", "a suite needs at least one check; an empty suite would pass vacuously")
    checks = tuple(_check(c, i, source) for i, c in enumerate(config.checks))
    seen: set[str] = set()
    for check in checks:
        if check.name in seen:
            raise _bad(source, "checks", f"two checks are named {check.name!r}: check names must be unique")
        seen.add(check.name)
    return Suite(config.name, config.owner.strip(), config.description.strip(), selector, checks, source)


def _selector(config: SelectorConfig, source: str) -> Selector:
    given = [k for k in ("query", "ids", "frozen") if getattr(config, k) is not None]
    if len(given) != 1:
        raise _bad(source, "selector", f"give exactly one of query, ids, frozen (got {', '.join(given) or 'none'})")
    if config.query is not None:
        parse_query(config.query)  # BadInput names the bad term
        return Selector("query", query=config.query)
    if config.ids is not None:
        return Selector("ids", ids=_ids(config.ids, source, "selector.ids"))
    frozen = config.frozen
    if frozen is None:  # unreachable: exactly one selector kind is set
        raise _bad(source, "selector", "give exactly one of query, ids, frozen")
    ids = _ids(frozen.ids, source, "selector.frozen.ids")
    digest = frozen_sha256(ids)
    if frozen.sha256 != digest:
        shown = frozen.sha256 if _SHA256.match(frozen.sha256 or "") else repr(frozen.sha256)
        raise _bad(source, "selector.frozen.sha256",
                   f"{shown} does not match the pinned ids ({len(ids)} ids hash to {digest}); the list was edited "
                   f"without re-pinning: restore the ids, or set sha256: {digest} if the change is intended")
    return Selector("frozen", ids=ids, sha256=digest)


def _ids(ids: list[str], source: str, key: str) -> tuple[str, ...]:
    cleaned = [str(i).strip() for i in ids]
    if any(not i for i in cleaned):
        raise _bad(source, key, "scenario ids must be non-empty strings")
    if len(set(cleaned)) != len(cleaned):
        dup = next(i for i in cleaned if cleaned.count(i) > 1)
        raise _bad(source, key, f"scenario id {dup!r} appears twice")
    return tuple(cleaned)


def _check(config: CheckConfig, index: int, source: str) -> Check:
    key = f"checks[{index}]"
    if not _NAME.match(config.name or ""):
        raise _bad(source, f"{key}.name", f"{config.name!r} must be letters, digits, '_', '.' or '-'")
    key = f"checks[{index}] ({config.name})"
    if not config.metric.strip():
        raise _bad(source, f"{key}.metric", "name a metric (`andon suite metrics` lists them)")
    choices = (("scope", config.scope, SCOPES), ("comparator", config.comparator, COMPARATORS),
               ("severity", config.severity, SEVERITIES))
    for name, value, allowed in choices:
        if value not in allowed:
            raise _bad(source, f"{key}.{name}", f"{value!r} is not one of {', '.join(allowed)}")
    if config.mode is not None and config.mode not in MODES:
        raise _bad(source, f"{key}.mode", f"{config.mode!r} is not one of {', '.join(MODES)} (or null: the metric's)")
    if not math.isfinite(config.threshold):
        raise _bad(source, f"{key}.threshold", f"{config.threshold!r} must be a finite number")
    filters = _filters(config.filters, source, f"{key}.filters")
    params = {}
    for name, value in config.params.items():
        if not math.isfinite(value):
            raise _bad(source, f"{key}.params.{name}", f"{value!r} must be a finite number")
        params[str(name)] = float(value)
    check = Check(config.name, config.metric.strip(), config.scope, config.comparator, float(config.threshold),
                  config.severity, filters, tuple(sorted(params.items())), config.mode, config.description.strip())
    from andon.test_suites.metrics import METRICS, check_options

    if check.metric in METRICS:
        problem = check_options(METRICS[check.metric], check)
        if problem:
            raise _bad(source, key, problem)
    return check


def _filters(config: FiltersConfig, source: str, key: str) -> Filters:
    unknown = [c for c in config.classes if c not in CLASSES]
    if unknown:
        raise _bad(source, f"{key}.classes", f"{unknown[0]!r} is not a class: use {', '.join(CLASSES)}")
    for name in ("min_range_m", "max_range_m"):
        value = getattr(config, name)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise _bad(source, f"{key}.{name}", f"{value!r} must be a distance of 0 m or more")
    if config.min_range_m is not None and config.max_range_m is not None and config.min_range_m >= config.max_range_m:
        raise _bad(source, key, f"min_range_m {config.min_range_m} must be below max_range_m {config.max_range_m}")
    if config.involved_tag is not None and not config.involved_tag.strip():
        raise _bad(source, f"{key}.involved_tag", "name a behaviour tag (e.g. cut_in) or leave it out")
    return Filters(tuple(dict.fromkeys(config.classes)), config.min_range_m, config.max_range_m,
                   tuple(dict.fromkeys(t.strip() for t in config.tags)), config.involved_tag)
