"""Gate results and gate reports: what `andon gate run` decides and what `andon report` reads.

A `GateResult` is one gate's outcome with the number it judged, the bound it was held to, the confidence
interval of that number and the margin to the bound, plus the inputs the number came from. A
`GateReport` gathers a gate set's results for one candidate (against a baseline, usually production)
with everything needed to reproduce them: model versions, dataset ids, the gate set's config and its
hash, the code version, seeds, the suite runs and simulations read, the flips, every disengagement with
its picture, waivers, approvals and the MLflow runs. Its id is the hash of its content
(`andon.gates.report_build.build_report` makes one), so the same inputs give the same report.

Values are plain JSON: a NaN or an infinity is never written (`None` instead), so every document passes
`json.dumps(..., allow_nan=False)`. An interval's missing end (`None`) is unbounded, e.g. the upper bound
of km per disengagement when nothing disengaged.

Detail keys the report renders (`GateResult.details`; any other key is kept and shown as JSON):
    slices: [{"slice": str, "candidate": float | None, "baseline": float | None,
              "candidate_interval": [low, high] | None, "baseline_interval": [low, high] | None}]
        per-slice values of the gate's metric, drawn as a candidate-vs-baseline chart;
        "metric" (str) names the metric in the chart's title.
    km_per_disengagement: {"candidate": {"value", "interval", "km", "disengagements"},
                           "baseline": {...} | None}
        drawn in the km-per-disengagement chart with its intervals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from andon.errors import BadInput
from andon.ids import hash_json

PASS = "pass"
FAIL = "fail"
INSUFFICIENT = "insufficient"
OUTCOMES = (PASS, FAIL, INSUFFICIENT)
BLOCKING = "blocking"
ADVISORY = "advisory"
SEVERITIES = (BLOCKING, ADVISORY)
KINDS = ("data", "provenance", "model_metric", "suite", "system_metric")
SCHEMA_VERSION = 1
REPORT_ID_HEX = 16


def finite_or_none(value: Any) -> float | None:
    """A float, or None for None, NaN and ±infinity.

    Raises:
        BadInput: the value is not a number (a bool counts as not a number).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) and not hasattr(value, "__float__"):
        raise BadInput(f"{value!r} is not a number")
    number = float(value)
    return number if math.isfinite(number) else None


def plain(value: Any) -> Any:
    """A deep copy of `value` as plain JSON: str-keyed dicts, lists, str, int, finite float, bool, None.

    Tuples become lists, sets sorted lists, numpy scalars and arrays Python values and lists, paths POSIX
    strings, NaN and infinities None.

    Raises:
        BadInput: a value that has no JSON form (named with its type).
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((plain(v) for v in value), key=lambda v: (type(v).__name__, str(v)))
    if isinstance(value, PurePath):
        return value.as_posix()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return plain(value.tolist())
    raise BadInput(f"{value!r} ({type(value).__name__}) cannot be written to a report: give plain JSON values")


def _choice(value: Any, allowed: tuple[str, ...], what: str, gate: str) -> str:
    if value not in allowed:
        raise BadInput(f"gate {gate!r}: {what} {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _interval(value: Any, gate: str) -> tuple[float | None, float | None] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not hasattr(value, "__len__") or len(value) != 2:
        raise BadInput(f"gate {gate!r}: interval {value!r} must be [low, high] (None for an open end)")
    return finite_or_none(value[0]), finite_or_none(value[1])


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate's outcome.

    Attributes:
        name: the gate's name, unique within its gate set.
        kind: data | provenance | model_metric | suite | system_metric.
        severity: blocking (decides the verdict) | advisory (shown only).
        outcome: pass | fail | insufficient (not enough evidence to decide, see `needed`).
        value: the number judged (None when the gate has none, or it is not finite).
        bound: the threshold it was held to.
        interval: the confidence interval of `value` as (low, high); None ends are unbounded.
        margin: how far the value (or the interval's conservative end) is on the good side of the bound;
            negative when it is on the bad side.
        reason: one line for people, with the numbers.
        inputs: what the number was computed from (run ids, sim ids, model versions, config, seeds).
        needed: for insufficient: how much more evidence would decide, e.g. {"km": 35.2}.
        details: slices, flips, events... (see the module docstring for the keys the report draws).
        waived_by: reviewers who waived this gate (sorted); a waived gate counts as passed but stays visible.
    """

    name: str
    kind: str
    severity: str
    outcome: str
    value: float | None
    bound: float | None
    interval: tuple[float | None, float | None] | None
    margin: float | None
    reason: str
    inputs: dict[str, Any] = field(default_factory=dict)
    needed: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    waived_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise BadInput(f"a gate needs a non-empty name, got {self.name!r}")
        _choice(self.kind, KINDS, "kind", self.name)
        _choice(self.severity, SEVERITIES, "severity", self.name)
        _choice(self.outcome, OUTCOMES, "outcome", self.name)
        for attr in ("value", "bound", "margin"):
            object.__setattr__(self, attr, finite_or_none(getattr(self, attr)))
        object.__setattr__(self, "interval", _interval(self.interval, self.name))
        object.__setattr__(self, "reason", str(self.reason))
        object.__setattr__(self, "inputs", plain(dict(self.inputs or {})))
        object.__setattr__(self, "needed", None if self.needed is None else plain(dict(self.needed)))
        object.__setattr__(self, "details", plain(dict(self.details or {})))
        if isinstance(self.waived_by, str):
            raise BadInput(f"gate {self.name!r}: waived_by must be a list of reviewers, got {self.waived_by!r}")
        object.__setattr__(self, "waived_by", tuple(sorted({str(r) for r in self.waived_by})))

    @property
    def waived(self) -> bool:
        return bool(self.waived_by)

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCKING

    @property
    def effective_outcome(self) -> str:
        """The outcome the verdict uses: a waived gate counts as passed."""
        return PASS if self.waived else self.outcome

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "severity": self.severity, "outcome": self.outcome,
                "value": self.value, "bound": self.bound,
                "interval": None if self.interval is None else list(self.interval), "margin": self.margin,
                "reason": self.reason, "inputs": self.inputs, "needed": self.needed, "details": self.details,
                "waived_by": list(self.waived_by)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> GateResult:
        """Read a gate result written by `to_dict`.

        Raises:
            BadInput: a required key is missing or a value is out of range.
        """
        missing = [k for k in ("name", "kind", "severity", "outcome", "reason") if k not in doc]
        if missing:
            raise BadInput(f"gate result {doc.get('name', '?')!r} lacks {', '.join(missing)}")
        return cls(name=doc["name"], kind=doc["kind"], severity=doc["severity"], outcome=doc["outcome"],
                   value=doc.get("value"), bound=doc.get("bound"), interval=doc.get("interval"),
                   margin=doc.get("margin"), reason=doc["reason"], inputs=doc.get("inputs") or {},
                   needed=doc.get("needed"), details=doc.get("details") or {},
                   waived_by=tuple(doc.get("waived_by") or ()))


def verdict_of(gates: Iterable[GateResult]) -> str:
    """The report's verdict from its gates.

    "pass" when every blocking gate passes or is waived; "insufficient" when no blocking gate fails
    but one is insufficient; else "fail". Advisory gates never change the verdict. A gate set without
    a blocking gate judged nothing, so its verdict is "insufficient" (fail closed: never a pass).
    """
    outcomes = [g.effective_outcome for g in gates if g.blocking]
    if FAIL in outcomes:
        return FAIL
    if INSUFFICIENT in outcomes or not outcomes:
        return INSUFFICIENT
    return PASS


def verdict_summary(gates: Iterable[GateResult]) -> str:
    """One line saying why the verdict is what it is, naming the gates that decided it."""
    gates = list(gates)
    blocking = [g for g in gates if g.blocking]
    waived = [g.name for g in blocking if g.waived and g.outcome != PASS]
    waived_text = f" ({len(waived)} waived: {', '.join(waived)})" if waived else ""
    failed = [g.name for g in blocking if g.effective_outcome == FAIL]
    if failed:
        return f"{len(failed)} blocking gate{'s' if len(failed) > 1 else ''} failed: {', '.join(failed)}"
    short = [g for g in blocking if g.effective_outcome == INSUFFICIENT]
    if short:
        needs = "; ".join(f"{g.name} needs {_needed_text(g.needed)}" if g.needed else g.name for g in short)
        return f"not enough evidence: {needs}"
    if not blocking:
        return "no blocking gate was evaluated: nothing was judged"
    return f"all {len(blocking)} blocking gates passed{waived_text}"


def _needed_text(needed: Mapping[str, Any]) -> str:
    return ", ".join(f"{value} {key}" for key, value in sorted(needed.items()))


def candidate_label(candidate: Mapping[str, Any] | None) -> str:
    """A short name for a candidate or baseline: "predictor@7" for one model of its name, else
    "NAME (detector@3, predictor@7)"; "-" for None."""
    if not candidate:
        return "-"
    name = str(candidate.get("name", ""))
    refs = sorted(str(v) for v in (candidate.get("models") or {}).values())
    if len(refs) == 1 and refs[0].split("@", 1)[0] == name:
        return refs[0]
    return f"{name} ({', '.join(refs)})" if refs else name


@dataclass(frozen=True, slots=True)
class GateReport:
    """A gate set's decision on one candidate, with everything it was computed from.

    Attributes:
        report_id: first 16 hex of the SHA-256 of the canonical JSON of the other fields.
        candidate: {"name": str, "models": {node: "name@version"}}.
        baseline: the same for the baseline (usually production), or None.
        gate_set: {"name": str, "config": {...}, "config_hash": sha256 of the config's canonical JSON}.
        verdict: pass | fail | insufficient (`verdict_of(gates)`).
        gates: the results, sorted by name.
        inputs: {"models": {"candidate": {...}, "baseline": {...} | None}, "datasets": [ids],
            "code_version": str, "seeds": {...}, "suites": [{run_id, suite, passed, path}],
            "simulations": [{sim_id, path, sensor_approximation}], ...}; paths relative to the workspace.
        flips: {"regressions": [...], "improvements": [...]}: scenario checks that passed in the baseline
            and fail in the candidate, and the reverse; each {suite, run_id, scenario_id, check, value,
            baseline_value, picture, picture_sha256}.
        events: every disengagement: {side, sim_id, scenario_id, time_ns, cause, causes, track_ids,
            frame_index, detail, picture (relative to the workspace) | None, picture_sha256 | None}.
        waivers: [{gate, reviewers, reason}].
        approvals: [{reviewer, ...}].
        mlflow_runs: [{model, version, run_id, url}].
        notes: lines the reviewer must read, e.g. the closed-loop sensor approximation.
        schema_version: the report format's version.
    """

    report_id: str
    candidate: dict[str, Any]
    baseline: dict[str, Any] | None
    gate_set: dict[str, Any]
    verdict: str
    gates: tuple[GateResult, ...]
    inputs: dict[str, Any]
    flips: dict[str, Any]
    events: tuple[dict[str, Any], ...]
    waivers: tuple[dict[str, Any], ...]
    approvals: tuple[dict[str, Any], ...]
    mlflow_runs: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.verdict not in OUTCOMES:
            raise BadInput(f"report {self.report_id}: verdict {self.verdict!r} is not one of {', '.join(OUTCOMES)}")
        expected = verdict_of(self.gates)
        if self.verdict != expected:
            raise BadInput(f"report {self.report_id}: verdict {self.verdict!r} contradicts its gates, "
                           f"which give {expected!r}")

    @property
    def candidate_label(self) -> str:
        return candidate_label(self.candidate)

    @property
    def baseline_label(self) -> str:
        return candidate_label(self.baseline)

    def gate(self, name: str) -> GateResult:
        """The gate of that name.

        Raises:
            BadInput: no such gate (the message lists the report's gates).
        """
        for gate in self.gates:
            if gate.name == name:
                return gate
        raise BadInput(f"report {self.report_id} has no gate {name!r}; its gates: "
                       f"{', '.join(g.name for g in self.gates) or 'none'}")

    def content(self) -> dict[str, Any]:
        """Everything but the id: what the id hashes."""
        return {"schema_version": self.schema_version, "candidate": self.candidate, "baseline": self.baseline,
                "gate_set": self.gate_set, "verdict": self.verdict, "gates": [g.to_dict() for g in self.gates],
                "inputs": self.inputs, "flips": self.flips, "events": list(self.events),
                "waivers": list(self.waivers), "approvals": list(self.approvals),
                "mlflow_runs": list(self.mlflow_runs), "notes": list(self.notes)}

    def computed_id(self) -> str:
        """The id the content hashes to (equal to `report_id` for an untouched report)."""
        return content_id(self.content())

    def to_dict(self) -> dict[str, Any]:
        return {"report_id": self.report_id, **self.content()}

    def summary(self) -> dict[str, Any]:
        """The `andon gate run --json` document: report id, verdict and each gate's numbers."""
        keys = ("name", "kind", "severity", "outcome", "value", "bound", "interval", "margin", "reason",
                "needed", "waived_by")
        return {"report_id": self.report_id, "verdict": self.verdict, "candidate": self.candidate_label,
                "baseline": None if self.baseline is None else self.baseline_label,
                "gate_set": self.gate_set["name"], "summary": verdict_summary(self.gates),
                "gates": [{k: v for k, v in g.to_dict().items() if k in keys} for g in self.gates]}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> GateReport:
        """Read a report written by `to_dict` (the id is not checked here: see `computed_id`).

        Raises:
            BadInput: a required key is missing or a value is out of range.
        """
        missing = [k for k in ("report_id", "candidate", "gate_set", "verdict", "gates", "inputs") if k not in doc]
        if missing:
            raise BadInput(f"report {doc.get('report_id', '?')} lacks {', '.join(missing)}")
        return cls(report_id=str(doc["report_id"]), candidate=dict(doc["candidate"]),
                   baseline=None if doc.get("baseline") is None else dict(doc["baseline"]),
                   gate_set=dict(doc["gate_set"]), verdict=doc["verdict"],
                   gates=tuple(GateResult.from_dict(g) for g in doc["gates"]), inputs=dict(doc["inputs"]),
                   flips=dict(doc.get("flips") or {"regressions": [], "improvements": []}),
                   events=tuple(doc.get("events") or ()), waivers=tuple(doc.get("waivers") or ()),
                   approvals=tuple(doc.get("approvals") or ()), mlflow_runs=tuple(doc.get("mlflow_runs") or ()),
                   notes=tuple(doc.get("notes") or ()), schema_version=int(doc.get("schema_version", SCHEMA_VERSION)))


def content_id(content: Mapping[str, Any]) -> str:
    """A report id: the first 16 hex of the SHA-256 of the content's canonical JSON."""
    return hash_json(content)[:REPORT_ID_HEX]
