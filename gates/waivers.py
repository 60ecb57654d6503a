"""Waivers: a reviewer's written decision that one gate does not stop one candidate.

Rules (enforced when a waiver is recorded, under the ledger's lock):
- a reason of at least MIN_REASON_CHARS characters;
- an advisory gate is waived by one reviewer; a blocking gate by two distinct reviewers: the first
  `andon release waive --blocking` records a pending waiver, a second reviewer's completes it;
  the same reviewer waiving the same gate for the same candidate twice is refused;
- a waiver names the exact candidate versions ({node: version} of the whole stack); a new version of
  any node is another candidate, which no earlier waiver covers.

Whether the gate is blocking comes from `--blocking` or from a severity lookup (gate name ->
"blocking" | "advisory") that the gate set provides; either one saying blocking makes it blocking.
Every waiver is a ledger entry (action "waive"); `active_waivers` reads them back for the evaluator and
the report. The evaluator must call `Waiver.applies_to(gate severity)`, so that a waiver recorded
without `--blocking` never lifts a blocking gate on one signature.

The candidate is named by the report the reviewer read (`--report ID`: exactly the versions it judged,
and the gate's severity from it) or by a reference NAME@ALIAS | NAME@VERSION resolved by a Resolver:
`andon release waive` resolves NAME's whole stack in the DAG (andon.gates.candidates.resolve_stack);
`resolve_single_model` here is the one-model resolver for a model outside any DAG.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from andon.errors import BadInput
from andon.gates.ledger import WAIVE, Ledger, LedgerEntry, normalise_candidate, resolve_who, show_candidate
from andon.workspace import Workspace

MIN_REASON_CHARS = 10
BLOCKING, ADVISORY = "blocking", "advisory"
REVIEWERS_NEEDED = {ADVISORY: 1, BLOCKING: 2}

Resolver = Callable[[Workspace, str], dict[str, str]]  # (workspace, "NAME@ALIAS|NAME@VERSION") -> {node: version}
SeverityLookup = Callable[[str], str]  # gate name -> "blocking" | "advisory"


@dataclass(frozen=True, slots=True)
class Waiver:
    """One gate waived (or pending) for one candidate, gathered from the ledger's waive entries."""

    gate: str
    candidate: Mapping[str, str]
    reviewers: tuple[str, ...]
    reasons: tuple[str, ...]
    blocking: bool
    seqs: tuple[int, ...]  # the ledger entries that recorded it

    @property
    def reason(self) -> str:
        return self.reasons[0]

    @property
    def complete(self) -> bool:
        """Whether enough reviewers signed for the severity it was recorded with."""
        return self.applies_to(BLOCKING if self.blocking else ADVISORY)

    def applies_to(self, severity: str) -> bool:
        """Whether it lifts a gate of `severity`: 1 reviewer for advisory, 2 distinct for blocking."""
        return len(self.reviewers) >= REVIEWERS_NEEDED.get(severity, REVIEWERS_NEEDED[BLOCKING])

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "candidate": dict(self.candidate), "reviewers": list(self.reviewers),
                "reasons": list(self.reasons), "reason": self.reason, "blocking": self.blocking,
                "complete": self.complete, "ledger_seqs": list(self.seqs)}


def resolve_single_model(workspace: Workspace, ref: str) -> dict[str, str]:
    """The default Resolver: {NAME: version} of the one model the reference names."""
    from andon.models.registry import ModelRef, Registry

    parsed = ModelRef.parse(ref)
    return {parsed.name: str(Registry(workspace).resolve(parsed).version)}


def collect_waivers(entries: Sequence[LedgerEntry], candidate: Mapping[str, str]) -> list[Waiver]:
    """The waivers the ledger's entries record for exactly `candidate`, by gate."""
    wanted = normalise_candidate(candidate)
    by_gate: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        if entry.action == WAIVE and dict(entry.candidate) == wanted and isinstance(entry.details.get("gate"), str):
            by_gate.setdefault(entry.details["gate"], []).append(entry)
    return [_waiver(gate, wanted, by_gate[gate]) for gate in sorted(by_gate)]


def _waiver(gate: str, candidate: dict[str, str], entries: list[LedgerEntry]) -> Waiver:
    reviewers: list[str] = []
    reasons: list[str] = []
    for entry in entries:
        if entry.who not in reviewers:
            reviewers.append(entry.who)
            reasons.append(str(entry.details.get("reason", "")))
    return Waiver(gate, candidate, tuple(reviewers), tuple(reasons),
                  any(bool(e.details.get("blocking")) for e in entries), tuple(e.seq for e in entries))


def active_waivers(workspace: Workspace, candidate_versions: Mapping[str, str]) -> list[Waiver]:
    """Every waiver (complete or pending) recorded for exactly these candidate versions, by gate."""
    return collect_waivers(Ledger(workspace).entries(), candidate_versions)


def check_reason(reason: str | None) -> str:
    """The reason, stripped; BadInput when it is shorter than MIN_REASON_CHARS."""
    text = (reason or "").strip()
    if len(text) < MIN_REASON_CHARS:
        raise BadInput(f"a waiver needs a written reason of at least {MIN_REASON_CHARS} characters (got "
                       f"{text!r}): say why this gate may be passed over for this candidate")
    return text


def is_blocking(gate: str, blocking: bool, severity: SeverityLookup | None) -> bool:
    """Blocking when the flag says so or the gate set's lookup does."""
    if severity is None:
        return blocking
    level = severity(gate)
    if level not in REVIEWERS_NEEDED:
        raise BadInput(f"gate {gate!r} has severity {level!r}; expected {BLOCKING} or {ADVISORY}")
    return blocking or level == BLOCKING


def waive(workspace: Workspace, name: str, candidate_versions: Mapping[str, str], gate: str, reviewer: str,
          reason: str, *, blocking: bool = False, severity: SeverityLookup | None = None,
          report_id: str | None = None) -> tuple[LedgerEntry, Waiver]:
    """Record one reviewer's waiver of `gate` for exactly `candidate_versions` (ledger action "waive").

    Args:
        workspace: the workspace whose ledger records it.
        name: the release name the candidate was given as (NAME of NAME@VERSION).
        candidate_versions: {node: version} of the candidate.
        gate: the gate's name in the gate set.
        reviewer: who waives (distinct reviewers count for blocking gates).
        reason: why, at least MIN_REASON_CHARS characters.
        blocking: the gate is blocking (two reviewers needed).
        severity: the gate set's severity lookup; blocking when either says so.
        report_id: the report the reviewer read, when given.

    Returns:
        The ledger entry and the waiver as it now stands (complete or pending a second reviewer).

    Raises:
        BadInput: short reason, empty gate, or the reviewer has already waived this gate for this candidate.
    """
    text = check_reason(reason)
    gate = (gate or "").strip()
    if not gate:
        raise BadInput("name the gate to waive (--gate NAME, as in the gate set and the report)")
    who = resolve_who(reviewer, workspace)
    versions = normalise_candidate(candidate_versions)
    block = is_blocking(gate, blocking, severity)
    with Ledger(workspace).transaction() as writer:
        before = {w.gate: w for w in collect_waivers(writer.entries, versions)}.get(gate)
        if before is not None and who in before.reviewers:
            more = " a blocking gate needs a second, different reviewer" if block else ""
            raise BadInput(f"{who} already waived gate {gate!r} for {show_candidate(versions)} (ledger entry "
                           f"{before.seqs[-1]});{more or ' nothing to add'}")
        reviewers = (*(before.reviewers if before else ()), who)
        needed = REVIEWERS_NEEDED[BLOCKING if block or (before and before.blocking) else ADVISORY]
        entry = writer.append(WAIVE, name, versions, who=who, report_id=report_id,
                              details={"gate": gate, "reason": text, "blocking": block,
                                       "reviewers": list(reviewers), "complete": len(reviewers) >= needed})
        waiver = {w.gate: w for w in collect_waivers(writer.entries, versions)}[gate]
    return entry, waiver


def report_waivers(waivers: Sequence[Waiver], severities: Mapping[str, str]) -> list[dict[str, Any]]:
    """The report's `waivers` ([{gate, reviewers, reason}]): those that lift their gate at its severity.

    Args:
        waivers: from `active_waivers` for the candidate judged.
        severities: {gate: "blocking" | "advisory"} of the gate set; waivers of other gates are left out.
    """
    return [{"gate": w.gate, "reviewers": list(w.reviewers), "reason": " / ".join(w.reasons)}
            for w in waivers if w.gate in severities and w.applies_to(severities[w.gate])]
