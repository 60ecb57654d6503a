"""Building gate results: the record every evaluator returns, the inputs it carries, combining outcomes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from andon.gates.records import FAIL, INSUFFICIENT, PASS, GateResult
from andon.gates.spec import Gate, GateSet


def gate_inputs(gate: Gate, gate_set: GateSet, **more: Any) -> dict[str, Any]:
    """The inputs every result records: the gate's config, the set's hash, confidence and bootstrap seeds."""
    return {"gate": gate.to_dict(), "gate_set": gate_set.name, "gate_set_sha256": gate_set.sha256,
            "confidence": gate_set.confidence, "seed": gate_set.seed, "resamples": gate_set.resamples, **more}


def result(gate: Gate, outcome: str, reason: str, *, value: float | None = None, bound: float | None = None,
           interval: tuple[float | None, float | None] | None = None, margin: float | None = None,
           inputs: Mapping[str, Any] | None = None, needed: Mapping[str, Any] | None = None,
           details: Mapping[str, Any] | None = None) -> GateResult:
    """A GateResult of `gate` (its name, kind and severity)."""
    return GateResult(name=gate.name, kind=gate.kind, severity=gate.severity, outcome=outcome, value=value,
                      bound=bound, interval=interval, margin=margin, reason=reason, inputs=dict(inputs or {}),
                      needed=None if needed is None else dict(needed), details=dict(details or {}))


def failed(gate: Gate, reason: str, inputs: Mapping[str, Any] | None = None,
           details: Mapping[str, Any] | None = None) -> GateResult:
    """A failed gate with its reason (what every fail-closed path returns)."""
    return result(gate, FAIL, reason, inputs=inputs, details=details)


def worst(outcomes: Sequence[str]) -> str:
    """fail over insufficient over pass; no outcome at all judged nothing, so it fails."""
    if not outcomes or FAIL in outcomes:
        return FAIL
    return INSUFFICIENT if INSUFFICIENT in outcomes else PASS


def refs(stack: Mapping[str, str] | None) -> dict[str, str] | None:
    """{node: "node@version"} of a stack (None stays None)."""
    return None if stack is None else {n: f"{n}@{v}" for n, v in sorted(stack.items())}


def is_finite(value: Any) -> bool:
    """A real, finite number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value))
