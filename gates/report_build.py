"""Assemble a `GateReport` from gate results and the inputs they were computed from.

Everything is normalised and sorted, so the same inputs give the same report and the same id whatever
order they came in. Pictures (bird's-eye views of disengagements and flips) are referenced by their path
relative to the workspace; the SHA-256 of their bytes goes into the hashed content, so a changed
picture changes the report's id. The HTML page embeds them (andon.gates.render_html).

The gate evaluator calls `build_report`; `events_from_simulation` and `flips_from_suite` turn a
simulation's or a suite run's result file (contracts: WS/simulations/<sim_id>/result.json,
WS/suites/<run_id>/result.json) into the report's events and flips.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from andon.errors import BadInput
from andon.gates.records import GateReport, GateResult, content_id, plain, verdict_of
from andon.ids import canonical_json, hash_json
from andon.workspace import Workspace

CANDIDATE = "candidate"
BASELINE = "baseline"
SIDES = (CANDIDATE, BASELINE)
REGRESSIONS = "regressions"
IMPROVEMENTS = "improvements"


def build_report(workspace: Workspace | str | os.PathLike[str], *, candidate: Mapping[str, Any],
                 gate_set: str, gate_config: Mapping[str, Any], gates: Sequence[GateResult],
                 inputs: Mapping[str, Any], baseline: Mapping[str, Any] | None = None,
                 flips: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                 events: Sequence[Mapping[str, Any]] = (), waivers: Sequence[Mapping[str, Any]] = (),
                 approvals: Sequence[Mapping[str, Any]] = (), mlflow_runs: Sequence[Mapping[str, Any]] = (),
                 notes: Sequence[str] = ()) -> GateReport:
    """A deterministic report: sorted, normalised, its id the hash of its content.

    Args:
        workspace: the workspace (or its root) that picture and result paths are relative to.
        candidate: {"name": str, "models": {node: "name@version"}}.
        gate_set: the gate set's name.
        gate_config: the gate set's resolved config (hashed into `gate_set.config_hash`).
        gates: the gate results; names must be unique.
        inputs: at least {"code_version": str}; also "datasets" (ids), "seeds", "suites"
            ([{run_id, suite, passed, path}]), "simulations" ([{sim_id, path, sensor_approximation}]);
            more keys are kept. "models" defaults to the candidate's and baseline's models.
        baseline: the baseline, shaped like `candidate`, or None.
        flips: {"regressions": [...], "improvements": [...]} (see `flips_from_suite`).
        events: disengagements (see `events_from_simulation`); "picture" relative to the workspace.
        waivers: [{"gate", "reviewers", "reason"}]: each marks its gate waived by its reviewers.
        approvals: [{"reviewer", ...}].
        mlflow_runs: [{"model", "version", "run_id", "url"}].
        notes: lines the reviewer must read; the sensor approximations of the simulations and any
            missing picture are added.

    Returns:
        The report, `verdict_of` its gates (after waivers).

    Raises:
        BadInput: a malformed candidate, duplicate gate names, a waiver of an unknown gate or without
            reviewers or reason, a gate marked waived without a waiver, a path outside the workspace,
            or no code_version in inputs.
    """
    root = workspace.root if isinstance(workspace, Workspace) else Path(workspace)
    candidate_doc = _side(candidate, "candidate")
    baseline_doc = None if baseline is None else _side(baseline, "baseline")
    waiver_docs = _waivers(waivers, gates)
    gate_list = _apply_waivers(gates, waiver_docs)
    pictures = _Pictures(root)
    event_docs = sorted((_event(e, pictures) for e in events), key=_event_key)
    flip_docs = _flips(flips or {}, pictures)
    input_doc = _inputs(inputs, candidate_doc, baseline_doc, root)
    config = plain(dict(gate_config))
    content = {
        "candidate": candidate_doc, "baseline": baseline_doc,
        "gate_set": {"name": str(gate_set), "config": config, "config_hash": hash_json(config)},
        "verdict": verdict_of(gate_list), "gates": gate_list, "inputs": input_doc, "flips": flip_docs,
        "events": tuple(event_docs), "waivers": tuple(waiver_docs),
        "approvals": tuple(_sorted_docs(_approval(a) for a in approvals)),
        "mlflow_runs": tuple(sorted((_mlflow_run(r) for r in mlflow_runs),
                                    key=lambda r: (r["model"], str(r["version"]), r["run_id"]))),
        "notes": tuple(sorted({str(n) for n in [*notes, *_sensor_notes(input_doc), *pictures.notes]})),
    }
    report = GateReport(report_id="", **content)
    return dataclasses.replace(report, report_id=content_id(report.content()))


def events_from_simulation(result: Mapping[str, Any], side: str = CANDIDATE) -> list[dict[str, Any]]:
    """The report events of a simulation result (its pictures made relative to the workspace).

    Args:
        result: a `WS/simulations/<sim_id>/result.json` document.
        side: "candidate" or "baseline": whose run it was.
    """
    if side not in SIDES:
        raise BadInput(f"side {side!r} is not one of {', '.join(SIDES)}")
    sim_id = str(result["sim_id"])
    out = []
    for event in result.get("events", ()):
        picture = event.get("picture")
        out.append({**event, "side": side, "sim_id": sim_id,
                    "picture": None if not picture else f"simulations/{sim_id}/{picture}"})
    return out


def flips_from_suite(result: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The report flips of a suite result, each with its scenario's picture when the run kept one.

    Args:
        result: a `WS/suites/<run_id>/result.json` document.
    """
    run_id, suite = str(result["run_id"]), str(result.get("suite", ""))
    pictures = {(r.get("scenario_id"), r.get("check")): r.get("picture") for r in result.get("results", ())}
    flips: dict[str, list[dict[str, Any]]] = {REGRESSIONS: [], IMPROVEMENTS: []}
    for direction in flips:
        for flip in (result.get("flips") or {}).get(direction, ()):
            picture = pictures.get((flip.get("scenario_id"), flip.get("check")))
            flips[direction].append({**flip, "suite": suite, "run_id": run_id,
                                     "picture": None if not picture else f"suites/{run_id}/{picture}"})
    return flips


# ----- normalisation ---------------------------------------------------------------------------------
def _side(doc: Mapping[str, Any], what: str) -> dict[str, Any]:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("name"), str) or not doc["name"]:
        raise BadInput(f"the {what} must be {{'name': str, 'models': {{node: 'name@version'}}}}, got {doc!r}")
    models = doc.get("models") or {}
    if not isinstance(models, Mapping):
        raise BadInput(f"the {what}'s models must map node -> 'name@version', got {models!r}")
    bad = [f"{k}={v!r}" for k, v in models.items() if not isinstance(v, str) or "@" not in v]
    if bad:
        raise BadInput(f"the {what}'s models must be 'name@version' references: {', '.join(bad)}")
    return {**plain(dict(doc)), "name": doc["name"], "models": {str(k): models[k] for k in sorted(models)}}


def _waivers(waivers: Iterable[Mapping[str, Any]], gates: Sequence[GateResult]) -> list[dict[str, Any]]:
    names = [g.name for g in gates]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BadInput(f"gate names must be unique in a report; repeated: {', '.join(duplicates)}")
    out = []
    for waiver in waivers:
        gate = waiver.get("gate")
        if gate not in names:
            raise BadInput(f"waiver of unknown gate {gate!r}: the gates are {', '.join(sorted(names)) or 'none'}")
        reviewers = waiver.get("reviewers") or ()
        if isinstance(reviewers, str):
            reviewers = (reviewers,)
        reviewers = sorted({str(r) for r in reviewers if str(r).strip()})
        reason = str(waiver.get("reason") or "").strip()
        if not reviewers or not reason:
            raise BadInput(f"the waiver of gate {gate!r} needs reviewers and a reason, got {dict(waiver)!r}")
        out.append({**plain(dict(waiver)), "gate": gate, "reviewers": reviewers, "reason": reason})
    return _sorted_docs(out, key=lambda w: (w["gate"], canonical_json(w)))


def _apply_waivers(gates: Sequence[GateResult], waivers: Sequence[Mapping[str, Any]]) -> tuple[GateResult, ...]:
    out = []
    for gate in sorted(gates, key=lambda g: g.name):
        recorded = {r for w in waivers if w["gate"] == gate.name for r in w["reviewers"]}
        unrecorded = sorted(set(gate.waived_by) - recorded)
        if unrecorded:
            raise BadInput(f"gate {gate.name!r} says it is waived by {', '.join(unrecorded)} but no waiver "
                           "(reviewers and reason) was given for it: pass it in waivers")
        out.append(dataclasses.replace(gate, waived_by=tuple(sorted(recorded))) if recorded else gate)
    return tuple(out)


def _event(event: Mapping[str, Any], pictures: _Pictures) -> dict[str, Any]:
    side = event.get("side", CANDIDATE)
    if side not in SIDES:
        raise BadInput(f"event side {side!r} is not one of {', '.join(SIDES)}")
    for key in ("scenario_id", "time_ns", "cause"):
        if key not in event:
            raise BadInput(f"a disengagement event needs {key!r}: {dict(event)!r}")
    doc = {**plain(dict(event)), "side": side, "time_ns": int(event["time_ns"])}
    return pictures.attach(doc, f"event {event['scenario_id']} at {event['time_ns']} ns")


def _event_key(event: Mapping[str, Any]) -> tuple[Any, ...]:
    return (SIDES.index(event["side"]), str(event["scenario_id"]), event["time_ns"], str(event["cause"]),
            canonical_json(event))


def _flips(flips: Mapping[str, Sequence[Mapping[str, Any]]], pictures: _Pictures) -> dict[str, Any]:
    unknown = sorted(set(flips) - {REGRESSIONS, IMPROVEMENTS})
    if unknown:
        raise BadInput(f"flips has unknown keys {', '.join(unknown)}: use {REGRESSIONS} and {IMPROVEMENTS}")
    out: dict[str, Any] = {}
    for direction in (REGRESSIONS, IMPROVEMENTS):
        docs = []
        for flip in flips.get(direction, ()):
            if "scenario_id" not in flip or "check" not in flip:
                raise BadInput(f"a flip needs scenario_id and check: {dict(flip)!r}")
            doc = {"suite": "", "run_id": "", **plain(dict(flip))}
            docs.append(pictures.attach(doc, f"flip {flip['check']} on {flip['scenario_id']}"))
        out[direction] = _sorted_docs(docs, key=lambda f: (str(f["suite"]), str(f["check"]),
                                                           str(f["scenario_id"]), canonical_json(f)))
    return out


def _inputs(inputs: Mapping[str, Any], candidate: Mapping[str, Any], baseline: Mapping[str, Any] | None,
            root: Path) -> dict[str, Any]:
    doc = plain(dict(inputs))
    if not isinstance(doc.get("code_version"), str) or not doc["code_version"]:
        raise BadInput("inputs need code_version (andon.models.lineage.code_version()): every number in a "
                       "report names the code that computed it")
    doc.setdefault("models", {CANDIDATE: candidate["models"], BASELINE: None if baseline is None
                              else baseline["models"]})
    doc["datasets"] = sorted({str(d) for d in doc.get("datasets") or ()})
    doc.setdefault("seeds", {})
    doc["suites"] = sorted((_with_relative_path(s, root, "suite run") for s in doc.get("suites") or ()),
                           key=lambda s: (str(s.get("suite", "")), str(s.get("run_id", ""))))
    doc["simulations"] = sorted((_with_relative_path(s, root, "simulation") for s in doc.get("simulations") or ()),
                                key=lambda s: (str(s.get("sim_id", "")), canonical_json(s)))
    return doc


def _with_relative_path(doc: Mapping[str, Any], root: Path, what: str) -> dict[str, Any]:
    out = dict(doc)
    if out.get("path"):
        out["path"] = relative_path(out["path"], root, what)
    return out


def _sensor_notes(inputs: Mapping[str, Any]) -> list[str]:
    return [f"simulation {s.get('sim_id')}: closed-loop sensors approximated ({s['sensor_approximation']})"
            for s in inputs["simulations"] if s.get("sensor_approximation")]


def _approval(approval: Mapping[str, Any]) -> dict[str, Any]:
    if not str(approval.get("reviewer") or "").strip():
        raise BadInput(f"an approval needs a reviewer: {dict(approval)!r}")
    return plain(dict(approval))


def _mlflow_run(run: Mapping[str, Any]) -> dict[str, Any]:
    missing = [k for k in ("model", "version", "run_id") if run.get(k) in (None, "")]
    if missing:
        raise BadInput(f"an MLflow run needs {', '.join(missing)}: {dict(run)!r}")
    return {"url": None, **plain(dict(run))}


def _sorted_docs(docs: Iterable[dict[str, Any]], key: Any = canonical_json) -> list[dict[str, Any]]:
    return sorted(docs, key=key)


def relative_path(path: str | os.PathLike[str], root: Path, what: str) -> str:
    """`path` as a POSIX path relative to the workspace root (absolute paths must lie inside it).

    Raises:
        BadInput: the path leaves the workspace.
    """
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            candidate = candidate.resolve().relative_to(root.resolve())
        except ValueError:
            raise BadInput(f"{what} path {str(path)!r} lies outside the workspace {root}: "
                           "keep report inputs inside the workspace") from None
    posix = PurePosixPath(candidate.as_posix())
    if ".." in posix.parts or str(posix) in ("", "."):
        raise BadInput(f"{what} path {str(path)!r} must name a file inside the workspace (no '..')")
    return str(posix)


class _Pictures:
    """Makes picture paths workspace-relative and hashes their bytes (once per file)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.notes: list[str] = []
        self._digests: dict[str, str | None] = {}

    def attach(self, doc: dict[str, Any], what: str) -> dict[str, Any]:
        picture = doc.get("picture")
        if not picture:
            return {**doc, "picture": None, "picture_sha256": None}
        rel = relative_path(picture, self.root, f"picture of {what}")
        if rel not in self._digests:
            path = self.root / rel
            self._digests[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        if self._digests[rel] is None:
            self.notes.append(f"picture missing: {rel} ({what})")
        return {**doc, "picture": rel, "picture_sha256": self._digests[rel]}
