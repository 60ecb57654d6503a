"""Gate reports in the workspace: `WS/reports/<report_id>/{report.json, report.md, report.html}`.

A report is written whole or not at all: its three files go to a temporary folder beside the final one,
which is then renamed into place; an existing identical report is left as it is. Reports are found by
their id or a unique prefix of it. `diff_reports` says what changed between two reports: the verdict,
each gate's outcome and numbers, gates added or removed, flips, waivers and the models judged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from andon.errors import BadInput, InternalError
from andon.gates.records import GateReport, candidate_label
from andon.gates.render_html import render_html
from andon.gates.render_markdown import render_markdown
from andon.output import info
from andon.workspace import Workspace

REPORTS_DIR = "reports"
JSON_NAME = "report.json"
MARKDOWN_NAME = "report.md"
HTML_NAME = "report.html"
_ID = re.compile(r"^[0-9a-f]{1,64}$")
_GATE_FIELDS = ("kind", "severity", "outcome", "value", "bound", "interval", "margin", "reason", "needed",
                "waived_by")


@dataclass(frozen=True, slots=True)
class StoredReport:
    """Where a report's files are.

    Attributes:
        report_id: the report's id.
        folder: WS/reports/<report_id>.
    """

    report_id: str
    folder: Path

    @property
    def json_path(self) -> Path:
        return self.folder / JSON_NAME

    @property
    def markdown_path(self) -> Path:
        return self.folder / MARKDOWN_NAME

    @property
    def html_path(self) -> Path:
        return self.folder / HTML_NAME

    def paths(self) -> dict[str, str]:
        return {"json": str(self.json_path), "markdown": str(self.markdown_path), "html": str(self.html_path)}


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """One line of `andon report list`.

    Attributes:
        report_id: the report's id.
        candidate: the candidate's label ("predictor@7", or "NAME (detector@3, predictor@7)").
        baseline: the baseline's label, or None.
        gate_set: the gate set's name.
        verdict: pass | fail | insufficient.
        html_path: absolute path of the HTML page.
    """

    report_id: str
    candidate: str
    baseline: str | None
    gate_set: str
    verdict: str
    html_path: Path

    def to_dict(self) -> dict[str, Any]:
        return {"report_id": self.report_id, "candidate": self.candidate, "baseline": self.baseline,
                "gate_set": self.gate_set, "verdict": self.verdict, "html_path": str(self.html_path)}


def reports_dir(workspace: Workspace | str | os.PathLike[str]) -> Path:
    return _root(workspace) / REPORTS_DIR


def render_files(report: GateReport, workspace: Workspace | str | os.PathLike[str]) -> dict[str, bytes]:
    """The bytes of the report's three files, by file name."""
    doc = json.dumps(report.to_dict(), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    return {JSON_NAME: doc.encode("utf-8"), MARKDOWN_NAME: render_markdown(report).encode("utf-8"),
            HTML_NAME: render_html(report, workspace).encode("utf-8")}


def write_report(workspace: Workspace | str | os.PathLike[str], report: GateReport) -> StoredReport:
    """Write the report's JSON, Markdown and HTML atomically (a whole folder renamed into place).

    Returns:
        Where the files are. A report already stored with the same bytes is left untouched.

    Raises:
        InternalError: the report's id does not match its content.
    """
    if report.computed_id() != report.report_id:
        raise InternalError(f"report {report.report_id} does not hash to its id ({report.computed_id()}): "
                            "build reports with andon.gates.report_build.build_report")
    parent = reports_dir(workspace)
    parent.mkdir(parents=True, exist_ok=True)
    stored = StoredReport(report.report_id, parent / report.report_id)
    files = render_files(report, workspace)
    if _holds(stored.folder, files):
        return stored
    tmp = Path(tempfile.mkdtemp(prefix=f".{report.report_id}.", dir=parent))
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        _move_into_place(tmp, stored.folder, files)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return stored


def _holds(folder: Path, files: Mapping[str, bytes]) -> bool:
    try:
        return all((folder / name).read_bytes() == data for name, data in files.items())
    except OSError:
        return False


def _move_into_place(tmp: Path, final: Path, files: Mapping[str, bytes]) -> None:
    """Rename tmp to final; a different folder already there (older renderer, damaged) is replaced."""
    try:
        tmp.rename(final)
        return
    except OSError:
        if _holds(final, files):  # another process wrote the same report meanwhile
            return
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def list_reports(workspace: Workspace | str | os.PathLike[str]) -> list[ReportEntry]:
    """Every stored report, sorted by candidate, gate set and id. Unreadable ones are named on stderr."""
    parent = reports_dir(workspace)
    entries = []
    for folder in sorted(parent.iterdir()) if parent.is_dir() else ():
        if folder.name.startswith(".") or not (folder / JSON_NAME).is_file():
            continue
        try:
            doc = json.loads((folder / JSON_NAME).read_text(encoding="utf-8"))
            entries.append(ReportEntry(report_id=str(doc["report_id"]), candidate=candidate_label(doc["candidate"]),
                                       baseline=None if doc.get("baseline") is None
                                       else candidate_label(doc["baseline"]),
                                       gate_set=str(doc["gate_set"]["name"]), verdict=str(doc["verdict"]),
                                       html_path=(folder / HTML_NAME).resolve()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            info(f"andon: warning: skipping unreadable report {folder}: {exc}")
    return sorted(entries, key=lambda e: (e.candidate, e.gate_set, e.report_id))


def resolve_report(workspace: Workspace | str | os.PathLike[str], ref: str) -> StoredReport:
    """The stored report whose id is `ref` or starts with it.

    Raises:
        BadInput: `ref` is not hex, matches no report (the message says `andon report list` lists them),
            or matches several (they are named).
    """
    text = str(ref).strip().lower()
    parent = reports_dir(workspace)
    if not _ID.match(text):
        raise BadInput(f"{ref!r} is not a report id (hex digits): `andon report list` shows the reports")
    names = sorted(p.name for p in parent.iterdir() if not p.name.startswith(".") and (p / JSON_NAME).is_file()) \
        if parent.is_dir() else []
    if text in names:
        return StoredReport(text, parent / text)
    matches = [n for n in names if n.startswith(text)]
    if not matches:
        raise BadInput(f"no report {ref!r} in {parent}: `andon report list` shows the reports")
    if len(matches) > 1:
        raise BadInput(f"report id {ref!r} is ambiguous ({', '.join(matches)}): give more of it")
    return StoredReport(matches[0], parent / matches[0])


def load_report(workspace: Workspace | str | os.PathLike[str], ref: str) -> GateReport:
    """Read a stored report by id or unique prefix, checking that it still hashes to its id.

    Raises:
        BadInput: see `resolve_report`.
        InternalError: the file is unreadable or was changed after it was written.
    """
    stored = resolve_report(workspace, ref)
    try:
        report = GateReport.from_dict(json.loads(stored.json_path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, BadInput) as exc:
        raise InternalError(f"{stored.json_path} is unreadable ({exc}); rerun `andon gate run` to rebuild it") from exc
    if report.report_id != stored.report_id or report.computed_id() != stored.report_id:
        raise InternalError(f"{stored.json_path} does not hash to its id {stored.report_id} (edited after it "
                            "was written?): do not trust it; rerun `andon gate run` to rebuild it")
    return report


@dataclass(frozen=True, slots=True)
class ReportDiff:
    """What changed from report `a` to report `b`.

    Attributes:
        a, b: the two report ids.
        verdict: (a's verdict, b's verdict).
        models: {"candidate": {node: [a, b]}, "baseline": {node: [a, b]}}: model references that differ
            (None where a side lacks the node).
        gate_set: {"name": [a, b], "config_hash": [a, b]} where they differ.
        gates_added, gates_removed: gate names only in b, only in a.
        gates_changed: [{"name", "changes": {field: [a, b]}}] for gates in both.
        flips_added, flips_removed: flips only in b, only in a ({direction, suite, check, scenario_id}).
        waivers_added, waivers_removed: waivers only in b, only in a.
        events: {"a": {side: count}, "b": {side: count}}.
    """

    a: str
    b: str
    verdict: tuple[str, str]
    models: dict[str, dict[str, list[str | None]]]
    gate_set: dict[str, list[str]]
    gates_added: tuple[str, ...]
    gates_removed: tuple[str, ...]
    gates_changed: tuple[dict[str, Any], ...]
    flips_added: tuple[dict[str, Any], ...]
    flips_removed: tuple[dict[str, Any], ...]
    waivers_added: tuple[dict[str, Any], ...]
    waivers_removed: tuple[dict[str, Any], ...]
    events: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether anything a reviewer reads differs (event counts included)."""
        return bool(self.verdict[0] != self.verdict[1] or any(self.models.values()) or self.gate_set
                    or self.gates_added or self.gates_removed or self.gates_changed or self.flips_added
                    or self.flips_removed or self.waivers_added or self.waivers_removed
                    or self.events.get("a") != self.events.get("b"))

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "changed": self.changed,
                "verdict": {"a": self.verdict[0], "b": self.verdict[1], "changed": self.verdict[0] != self.verdict[1]},
                "models": self.models, "gate_set": self.gate_set, "gates_added": list(self.gates_added),
                "gates_removed": list(self.gates_removed), "gates_changed": list(self.gates_changed),
                "flips_added": list(self.flips_added), "flips_removed": list(self.flips_removed),
                "waivers_added": list(self.waivers_added), "waivers_removed": list(self.waivers_removed),
                "events": self.events}


def diff_reports(a: GateReport, b: GateReport) -> ReportDiff:
    """What changed from `a` to `b` (deterministic order: gates by name, flips by key)."""
    gates_a = {g.name: g.to_dict() for g in a.gates}
    gates_b = {g.name: g.to_dict() for g in b.gates}
    changed = []
    for name in sorted(set(gates_a) & set(gates_b)):
        before, after = gates_a[name], gates_b[name]
        changes = {k: [before[k], after[k]] for k in _GATE_FIELDS if before[k] != after[k]}
        if changes:
            changed.append({"name": name, "changes": changes})
    flips_a, flips_b = _flip_keys(a), _flip_keys(b)
    waivers_a = {json.dumps(w, sort_keys=True): w for w in a.waivers}
    waivers_b = {json.dumps(w, sort_keys=True): w for w in b.waivers}
    gate_set = {k: [a.gate_set[k], b.gate_set[k]] for k in ("name", "config_hash") if a.gate_set[k] != b.gate_set[k]}
    return ReportDiff(
        a=a.report_id, b=b.report_id, verdict=(a.verdict, b.verdict),
        models={"candidate": _model_changes(a.candidate, b.candidate),
                "baseline": _model_changes(a.baseline, b.baseline)},
        gate_set=gate_set,
        gates_added=tuple(sorted(set(gates_b) - set(gates_a))),
        gates_removed=tuple(sorted(set(gates_a) - set(gates_b))),
        gates_changed=tuple(changed),
        flips_added=tuple(flips_b[k] for k in sorted(set(flips_b) - set(flips_a))),
        flips_removed=tuple(flips_a[k] for k in sorted(set(flips_a) - set(flips_b))),
        waivers_added=tuple(waivers_b[k] for k in sorted(set(waivers_b) - set(waivers_a))),
        waivers_removed=tuple(waivers_a[k] for k in sorted(set(waivers_a) - set(waivers_b))),
        events={"a": _event_counts(a), "b": _event_counts(b)})


def _flip_keys(report: GateReport) -> dict[tuple[str, ...], dict[str, Any]]:
    out = {}
    for direction in ("regressions", "improvements"):
        for flip in report.flips.get(direction, []):
            key = (direction, str(flip.get("suite", "")), str(flip["check"]), str(flip["scenario_id"]))
            out[key] = {"direction": direction, "suite": key[1], "check": key[2], "scenario_id": key[3]}
    return out


def _model_changes(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> dict[str, list[str | None]]:
    models_a = dict((a or {}).get("models") or {})
    models_b = dict((b or {}).get("models") or {})
    return {node: [models_a.get(node), models_b.get(node)] for node in sorted(set(models_a) | set(models_b))
            if models_a.get(node) != models_b.get(node)}


def _event_counts(report: GateReport) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in report.events:
        counts[event["side"]] = counts.get(event["side"], 0) + 1
    return dict(sorted(counts.items()))


def _root(workspace: Workspace | str | os.PathLike[str]) -> Path:
    return workspace.root if isinstance(workspace, Workspace) else Path(workspace)
