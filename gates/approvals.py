"""Approvals: a safety reviewer's sign-off on one passing report for one candidate.

A gate set that requires approval lets `andon release NAME` promote only once a reviewer has signed off
the report that passed (ledger action "approve", keyed by the report id and the exact candidate
versions the report judged). Only a report whose verdict is "pass" can be approved. Reports are read
with andon.gates.report_store.load_report: by id or unique prefix, and only when they still hash to
their id (an edited report is never approved).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from andon.errors import BadInput, CheckFailed
from andon.gates.ledger import APPROVE, Ledger, LedgerEntry, normalise_candidate, resolve_who, show_candidate
from andon.workspace import Workspace

PASS = "pass"


@dataclass(frozen=True, slots=True)
class Approval:
    """A recorded sign-off (`new` is False when this reviewer had signed this report already)."""

    report_id: str
    candidate: Mapping[str, str]
    reviewer: str
    reason: str | None
    ledger_seq: int
    new: bool

    def to_dict(self) -> dict[str, Any]:
        return {"report_id": self.report_id, "candidate": dict(self.candidate), "reviewer": self.reviewer,
                "reason": self.reason, "ledger_seq": self.ledger_seq, "new": self.new}


def report_versions(candidate: Mapping[str, Any] | None) -> dict[str, str]:
    """{node: version} of a report's candidate ({"name", "models": {node: "name@version"}})."""
    models = (candidate or {}).get("models")
    if not isinstance(models, Mapping) or not models:
        return {}
    return normalise_candidate({str(node): str(ref).rpartition("@")[2] for node, ref in models.items()})


def checked_candidate(report_id: str, judged: Mapping[str, str], given: Mapping[str, str] | None) -> dict[str, str]:
    """The report's candidate versions; `given` (when any) must agree with them node by node."""
    if not judged:
        raise BadInput(f"report {report_id} names no candidate models: rebuild it with `andon gate run`")
    if given:
        wrong = {node: version for node, version in normalise_candidate(given).items() if judged.get(node) != version}
        if wrong:
            raise BadInput(f"report {report_id} judged {show_candidate(judged)}, not {show_candidate(wrong)}: use "
                           f"the report of that candidate (`andon report list`)")
    return normalise_candidate(judged)


def approve(workspace: Workspace, report_ref: str, reviewer: str | None, *, reason: str | None = None,
            candidate: Mapping[str, str] | None = None) -> Approval:
    """Record `reviewer`'s sign-off of a passing report (ledger action "approve").

    Args:
        workspace: the workspace holding the report and the ledger.
        report_ref: the report's id or a unique prefix of it.
        reviewer: who signs (else $ANDON_USER, $USER, git's user.name).
        reason: an optional note.
        candidate: {node: version} the reviewer means; must agree with the report's candidate.

    Returns:
        The approval; `new` is False when this reviewer had already signed this report (nothing appended).

    Raises:
        BadInput: no such report, or a candidate that is not the report's.
        CheckFailed: the report's verdict is not "pass".
        InternalError: the report no longer hashes to its id.
    """
    from andon.gates.report_store import load_report

    report = load_report(workspace, report_ref)
    if report.verdict != PASS:
        raise CheckFailed(f"report {report.report_id} has verdict {report.verdict!r}: only a passing report can be "
                          f"approved. Fix what failed, or waive a gate (`andon release waive`), and run the "
                          f"release again")
    versions = checked_candidate(report.report_id, report_versions(report.candidate), candidate)
    who = resolve_who(reviewer, workspace)
    name = str(report.candidate.get("name") or ",".join(versions))
    with Ledger(workspace).transaction() as writer:
        for entry in _approvals(writer.entries, report.report_id, versions):
            if entry.who == who:
                return Approval(report.report_id, versions, who, entry.details.get("reason"), entry.seq, new=False)
        entry = writer.append(APPROVE, name, versions, who=who, report_id=report.report_id, verdict=report.verdict,
                              details={"reason": (reason or "").strip() or None,
                                       "gate_set": report.gate_set.get("name")})
    return Approval(report.report_id, versions, who, entry.details.get("reason"), entry.seq, new=True)


def _approvals(entries: Sequence[LedgerEntry], report_id: str, versions: Mapping[str, str]) -> list[LedgerEntry]:
    return [e for e in entries if e.action == APPROVE and e.report_id == report_id and dict(e.candidate) == versions]


def approvals(workspace: Workspace, report_id: str, candidate_versions: Mapping[str, str]) -> list[LedgerEntry]:
    """The approve entries of this report id and exactly these candidate versions, in order."""
    return _approvals(Ledger(workspace).entries(), report_id, normalise_candidate(candidate_versions))


def approved(workspace: Workspace, report_id: str, candidate_versions: Mapping[str, str]) -> bool:
    """Whether a reviewer signed off this report for exactly these candidate versions."""
    return bool(approvals(workspace, report_id, candidate_versions))
