"""The release ledger: an append-only, hash-chained log of every release decision.

Layout, inside the workspace:
    ledger/ledger.jsonl   one entry per line, canonical JSON (ASCII, sorted keys)
    ledger/HEAD           {"seq": N, "hash": H} of the last entry, replaced atomically
    ledger/ledger.lock    the lock appenders take (fcntl.flock); git-ignored

An entry is {seq, prev_hash, time, who, action, name, candidate {node: version}, report_id, verdict,
details, hash}: `hash` is the SHA-256 of the canonical JSON of the entry without `hash`, `prev_hash`
the hash of the entry before it (64 zeros for the first). `time` (UTC, ISO 8601) is the only
wall-clock value andon stores: it lives here, never in reports.

Crash safety: an append takes the lock, writes its line, flushes and fsyncs it, then replaces HEAD. A
crash mid-line leaves a torn last line that HEAD does not name; a crash after the line leaves HEAD one
entry behind. The next append repairs either (under the lock) and `verify` reports them as notes, not
problems. Everything else that does not add up is a problem naming the entry or line.

Limit: the chain is not signed. Whoever rewrites an entry, re-hashes every entry after it and rewrites
HEAD is not detected; commit the ledger to the workspace's git (or copy HEAD elsewhere) to anchor it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from andon.errors import BadInput, CheckFailed
from andon.ids import canonical_json, hash_json
from andon.workspace import Workspace

LEDGER_DIR = "ledger"
LEDGER_FILE = "ledger.jsonl"
HEAD_FILE = "HEAD"
LOCK_FILE = "ledger.lock"
GENESIS_HASH = "0" * 64
USER_ENV_VAR = "ANDON_USER"

RELEASE, REFUSE, ROLLBACK, WAIVE, APPROVE, GATE = "release", "refuse", "rollback", "waive", "approve", "gate"
ACTIONS = (RELEASE, REFUSE, ROLLBACK, WAIVE, APPROVE, GATE)
FIELDS = ("seq", "prev_hash", "time", "who", "action", "name", "candidate", "report_id", "verdict", "details",
          "hash")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One decision, as stored on one line of the ledger."""

    seq: int
    prev_hash: str
    time: str  # UTC, ISO 8601
    who: str
    action: str
    name: str
    candidate: Mapping[str, str]  # {node: version}
    report_id: str | None
    verdict: str | None
    details: Mapping[str, Any]
    hash: str

    def body(self) -> dict[str, Any]:
        """The entry without its hash: what the hash is computed over."""
        return {"seq": self.seq, "prev_hash": self.prev_hash, "time": self.time, "who": self.who,
                "action": self.action, "name": self.name, "candidate": dict(self.candidate),
                "report_id": self.report_id, "verdict": self.verdict, "details": dict(self.details)}

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}

    @classmethod
    def from_dict(cls, doc: Any) -> LedgerEntry:
        """The entry of a parsed line; ValueError saying what is wrong with it otherwise."""
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        missing = [k for k in FIELDS if k not in doc]
        extra = sorted(set(doc) - set(FIELDS))
        if missing or extra:
            raise ValueError(f"missing fields {missing}" if missing else f"unexpected fields {extra}")
        seq, candidate = doc["seq"], doc["candidate"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise ValueError(f"seq {seq!r} is not a positive integer")
        for key in ("prev_hash", "hash"):
            if not isinstance(doc[key], str) or not _HEX64.fullmatch(doc[key]):
                raise ValueError(f"{key} is not 64 hex digits")
        for key in ("time", "who", "action", "name"):
            if not isinstance(doc[key], str):
                raise ValueError(f"{key} is not a string")
        if doc["action"] not in ACTIONS:
            raise ValueError(f"unknown action {doc['action']!r}")
        if not isinstance(candidate, dict) or not all(isinstance(v, str) for v in candidate.values()):
            raise ValueError("candidate is not a mapping of node to version")
        for key in ("report_id", "verdict"):
            if doc[key] is not None and not isinstance(doc[key], str):
                raise ValueError(f"{key} is neither a string nor null")
        if not isinstance(doc["details"], dict):
            raise ValueError("details is not a JSON object")
        return cls(seq, doc["prev_hash"], doc["time"], doc["who"], doc["action"], doc["name"], dict(candidate),
                   doc["report_id"], doc["verdict"], doc["details"], doc["hash"])


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What `andon ledger verify` found: ok when there is no problem (notes are not problems)."""

    ok: bool
    entries: int
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    head_seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "problems": list(self.problems),
                "notes": list(self.notes), "head_seq": self.head_seq}


@dataclass(frozen=True, slots=True)
class _Line:
    """One line of the ledger file as read: an entry, or why it is none."""

    number: int  # 1-based
    offset: int  # [bytes] where the line starts
    complete: bool  # ends with a newline
    entry: LedgerEntry | None = None
    error: str | None = None
    hash_ok: bool = False


@dataclass(frozen=True, slots=True)
class _Head:
    seq: int
    hash: str


def resolve_who(explicit: str | None, workspace: Workspace | None = None) -> str:
    """Who decides: the option given, else $ANDON_USER, else $USER, else git's user.name."""
    for candidate in (explicit, os.environ.get(USER_ENV_VAR), os.environ.get("USER")):
        if candidate and candidate.strip():
            return _check_who(candidate)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        proc = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True, timeout=10,
                              cwd=workspace.root if workspace else None)
        if proc.returncode == 0 and proc.stdout.strip():
            return _check_who(proc.stdout)
    raise BadInput(f"who is deciding? pass --reviewer NAME (or --who NAME), or set ${USER_ENV_VAR}")


def _check_who(text: str) -> str:
    who = text.strip()
    if "\n" in who or len(who) > 200:
        raise BadInput(f"reviewer name {who[:40]!r} must be one line of at most 200 characters")
    return who


def utc_now() -> str:
    """The current time, UTC, ISO 8601 with microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalise_candidate(candidate: Mapping[str, Any]) -> dict[str, str]:
    """{node: version} with string versions, sorted by node; BadInput when it is not one."""
    if not isinstance(candidate, Mapping) or not all(isinstance(k, str) and k for k in candidate):
        raise BadInput(f"candidate {candidate!r} must map node names to versions")
    out = {node: str(candidate[node]) for node in sorted(candidate)}
    bad = [node for node, version in out.items() if not version or version == "None"]
    if bad:
        raise BadInput(f"candidate node {bad[0]!r} has no version")
    return out


def show_candidate(candidate: Mapping[str, str]) -> str:
    """"detector@3, predictor@7" ("-" for none)."""
    return ", ".join(f"{node}@{version}" for node, version in sorted(candidate.items())) or "-"


class Writer:
    """Appends under the ledger's lock; `entries` are the ledger's valid entries at the time of locking."""

    def __init__(self, ledger: Ledger, entries: list[LedgerEntry], last: _Head) -> None:
        self.ledger = ledger
        self.entries = entries
        self._last = last

    def append(self, action: str, name: str, candidate: Mapping[str, Any], *, who: str,
               report_id: str | None = None, verdict: str | None = None,
               details: Mapping[str, Any] | None = None) -> LedgerEntry:
        """Write one entry (line, flush, fsync, then HEAD) and return it."""
        if action not in ACTIONS:
            raise BadInput(f"ledger action {action!r} is not one of {', '.join(ACTIONS)}")
        body = {"seq": self._last.seq + 1, "prev_hash": self._last.hash, "time": utc_now(),
                "who": _check_who(who), "action": action, "name": name,
                "candidate": normalise_candidate(candidate), "report_id": report_id, "verdict": verdict,
                "details": json.loads(canonical_json(dict(details or {})))}
        entry = LedgerEntry.from_dict({**body, "hash": hash_json(body)})
        self.ledger.write_line(canonical_json(entry.to_dict()))
        self.ledger.write_head(_Head(entry.seq, entry.hash))
        self._last = _Head(entry.seq, entry.hash)
        self.entries.append(entry)
        return entry


class Ledger:
    """The workspace's release ledger."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.dir = workspace.root / LEDGER_DIR
        self.path = self.dir / LEDGER_FILE
        self.head_path = self.dir / HEAD_FILE
        self.lock_path = self.dir / LOCK_FILE

    # ----- reading -----------------------------------------------------------------------------------
    def lines(self) -> Iterator[_Line]:
        """Every line of the ledger file, parsed; never raises on content."""
        if not self.path.is_file():
            return
        offset = 0
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                yield _parse_line(number, offset, raw)
                offset += len(raw)

    def entries(self) -> list[LedgerEntry]:
        """The valid entries (well-formed, hash matching content), in file order.

        An edited entry is left out, so a tampered waiver or approval is never honoured.
        """
        return [line.entry for line in self.lines() if line.entry is not None and line.hash_ok]

    def head(self) -> _Head | None:
        """HEAD, or None when absent; ValueError when unreadable."""
        if not self.head_path.is_file():
            return None
        try:
            doc = json.loads(self.head_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ValueError(f"not JSON ({exc})") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("seq"), int) or not isinstance(doc.get("hash"), str):
            raise ValueError('it is not {"seq": N, "hash": H}')
        return _Head(doc["seq"], doc["hash"])

    # ----- writing -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Writer]:
        """Hold the ledger's exclusive lock; repair an interrupted append; yield a Writer.

        Raises CheckFailed when the ledger's tail does not match its HEAD (nothing is appended then).
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        self._ensure_gitignore()
        with open(self.lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield self._prepare()
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def append(self, action: str, name: str, candidate: Mapping[str, Any], *, who: str,
               report_id: str | None = None, verdict: str | None = None,
               details: Mapping[str, Any] | None = None) -> LedgerEntry:
        """Append one entry under the lock."""
        with self.transaction() as writer:
            return writer.append(action, name, candidate, who=who, report_id=report_id, verdict=verdict,
                                 details=details)

    def write_line(self, text: str) -> None:
        created = not self.path.exists()
        with open(self.path, "ab") as handle:
            handle.write(text.encode("ascii") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        if created:
            _fsync_dir(self.dir)

    def write_head(self, head: _Head) -> None:
        tmp = self.head_path.with_name(HEAD_FILE + ".tmp")
        with open(tmp, "wb") as handle:
            handle.write(canonical_json({"seq": head.seq, "hash": head.hash}).encode("ascii") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.head_path)
        _fsync_dir(self.dir)

    def _prepare(self) -> Writer:
        lines = list(self.lines())
        try:
            head = self.head()
        except ValueError as exc:
            raise self._damaged(f"HEAD is unreadable: {exc}") from exc
        if lines and not lines[-1].complete:
            if not _unfinished_tail(lines, head):
                raise self._damaged(f"line {lines[-1].number} is truncated and HEAD does not name the entry before it")
            with open(self.path, "r+b") as handle:  # an append that never finished: drop its bytes
                handle.truncate(lines[-1].offset)
                os.fsync(handle.fileno())
            lines.pop()
        entries = [line.entry for line in lines if line.entry is not None and line.hash_ok]
        if not lines:
            if head is not None:
                raise self._damaged(f"the ledger is empty but HEAD names entry {head.seq}")
            return Writer(self, entries, _Head(0, GENESIS_HASH))
        tail = lines[-1].entry
        if tail is None or not lines[-1].hash_ok:
            raise self._damaged(f"its last line ({lines[-1].number}) is not a valid entry")
        if head is None and (len(lines) > 1 or tail.seq != 1):
            raise self._damaged("HEAD is missing")
        if head is None or (head.seq == tail.seq - 1 and head.hash == tail.prev_hash):
            self.write_head(_Head(tail.seq, tail.hash))  # the last append stopped before HEAD: finish it
        elif (head.seq, head.hash) != (tail.seq, tail.hash):
            raise self._damaged(f"HEAD names entry {head.seq} but the ledger ends at entry {tail.seq}")
        return Writer(self, entries, _Head(tail.seq, tail.hash))

    def _damaged(self, what: str) -> CheckFailed:
        return CheckFailed(f"the release ledger is damaged ({what}); nothing was appended. Run `andon ledger "
                           f"verify` and restore {LEDGER_DIR}/ from the workspace's git history or a backup")

    def _ensure_gitignore(self) -> None:
        ignore = self.dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text(f"/{LOCK_FILE}\n/*.tmp\n")

    # ----- verifying ---------------------------------------------------------------------------------
    def verify(self) -> VerifyResult:
        """Check the chain: edited, removed, reordered, duplicated, truncated or corrupt entries, and HEAD."""
        return _Verifier(self).run()


@dataclass
class _Verifier:
    ledger: Ledger
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def run(self) -> VerifyResult:
        head = self._head()  # before the lines: an append in between then reads as HEAD one behind, a note
        lines = list(self.ledger.lines())
        if lines and not lines[-1].complete:
            lines = self._torn_tail(lines, head)
        entries = self._lines(lines)
        by_seq = {e.seq: e for e in entries}
        self._chain(entries, by_seq)
        self._missing(by_seq, unreadable=any(line.entry is None for line in lines))
        self._head_matches(head, by_seq, file_exists=self.ledger.path.is_file())
        return VerifyResult(not self.problems, len(entries), tuple(self.problems), tuple(self.notes),
                            head.seq if head else None)

    def _head(self) -> _Head | None:
        try:
            return self.ledger.head()
        except ValueError as exc:
            self.problems.append(f"HEAD is unreadable ({exc}): it must name the last entry")
            return None

    def _torn_tail(self, lines: list[_Line], head: _Head | None) -> list[_Line]:
        last = lines[-1]
        if _unfinished_tail(lines, head):
            self.notes.append(f"line {last.number} is an append that never finished (HEAD names the entry before "
                              f"it): the next append removes it")
            return lines[:-1]
        if last.entry is not None:
            self.problems.append(f"line {last.number} (entry {last.entry.seq}) lacks its end of line: truncated")
        return lines

    def _lines(self, lines: list[_Line]) -> list[LedgerEntry]:
        entries: list[LedgerEntry] = []
        seen: set[int] = set()
        highest = 0
        for line in lines:
            if line.entry is None:
                self.problems.append(f"line {line.number} is not a complete ledger entry (truncated or corrupt): "
                                     f"{line.error}")
                continue
            entry = line.entry
            if not line.hash_ok:
                self.problems.append(f"entry {entry.seq} (line {line.number}) was edited: its hash does not "
                                     f"match its content")
            if entry.seq in seen:
                self.problems.append(f"entry {entry.seq} appears again at line {line.number}: duplicated")
                continue
            if entry.seq < highest:
                self.problems.append(f"entry {entry.seq} (line {line.number}) comes after entry {highest}: "
                                     f"entries were reordered")
            seen.add(entry.seq)
            highest = max(highest, entry.seq)
            entries.append(entry)
        return entries

    def _chain(self, entries: Sequence[LedgerEntry], by_seq: Mapping[int, LedgerEntry]) -> None:
        for entry in entries:
            if entry.seq == 1 and entry.prev_hash != GENESIS_HASH:
                self.problems.append("entry 1 does not start the chain: its prev_hash is not the genesis hash")
            before = by_seq.get(entry.seq - 1)
            if before is not None and entry.prev_hash != before.hash:
                self.problems.append(f"entry {entry.seq} does not chain to entry {before.seq}: its prev_hash "
                                     f"differs from that entry's hash (entry {before.seq} was edited and "
                                     f"re-hashed, or replaced)")

    def _missing(self, by_seq: Mapping[int, LedgerEntry], unreadable: bool) -> None:
        gone = [seq for seq in range(1, max(by_seq, default=0) + 1) if seq not in by_seq]
        if gone:
            where = "removed, or on an unreadable line" if unreadable else "removed"
            self.problems.append(f"{_plural(gone)} missing: {where}")

    def _head_matches(self, head: _Head | None, by_seq: Mapping[int, LedgerEntry], file_exists: bool) -> None:
        last_seq = max(by_seq, default=0)
        if head is None:
            if last_seq > 1:
                self.problems.append(f"HEAD is missing but the ledger holds entries up to {last_seq}: it was "
                                     f"deleted")
            elif last_seq == 1:
                self.notes.append("HEAD is missing after the first entry (an append stopped before writing it): "
                                  "the next append writes it")
            return
        if head.seq > last_seq:
            if not file_exists:
                self.problems.append(f"the ledger file is missing but HEAD names entry {head.seq}: it was deleted")
            else:
                self.problems.append(f"the last entries were removed: HEAD names entry {head.seq} but the ledger "
                                     f"ends at entry {last_seq}")
        elif head.seq == last_seq:
            if by_seq[last_seq].hash != head.hash:
                self.problems.append(f"entry {last_seq} does not match HEAD's hash: it was edited and re-hashed, "
                                     f"or replaced")
        elif head.seq == last_seq - 1 and by_seq[last_seq].prev_hash == head.hash:
            self.notes.append(f"HEAD names entry {head.seq}, one behind the last (an append stopped before "
                              f"updating it): the next append updates it")
        else:
            self.problems.append(f"entries after {head.seq} (up to {last_seq}) are not named by HEAD: appended "
                                 f"outside andon, or HEAD was rewound")


def _parse_line(number: int, offset: int, raw: bytes) -> _Line:
    complete = raw.endswith(b"\n")
    try:
        doc = json.loads(raw.decode("utf-8"))
        entry = LedgerEntry.from_dict(doc)
    except (UnicodeDecodeError, ValueError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _Line(number, offset, complete, error=message[:200])
    body = {k: v for k, v in doc.items() if k != "hash"}
    return _Line(number, offset, complete, entry, hash_ok=hash_json(body) == entry.hash)


def _unfinished_tail(lines: Sequence[_Line], head: _Head | None) -> bool:
    """Whether the torn last line is an append that crashed: HEAD names the entry before it."""
    before = lines[-2].entry if len(lines) > 1 else None
    if before is None:
        return head is None and len(lines) == 1
    return head is not None and (head.seq, head.hash) == (before.seq, before.hash)


def _plural(seqs: Sequence[int]) -> str:
    return f"entry {seqs[0]} is" if len(seqs) == 1 else f"entries {', '.join(map(str, seqs))} are"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ----- the module's API ------------------------------------------------------------------------------
def append_entry(workspace: Workspace, action: str, name: str, candidate: Mapping[str, Any], *, who: str,
                 report_id: str | None = None, verdict: str | None = None,
                 details: Mapping[str, Any] | None = None) -> LedgerEntry:
    """Append one decision to the workspace's ledger (under its lock) and return the entry."""
    return Ledger(workspace).append(action, name, candidate, who=who, report_id=report_id, verdict=verdict,
                                    details=details)


def read_entries(workspace: Workspace) -> list[LedgerEntry]:
    """The ledger's valid entries, in order (edited ones left out)."""
    return Ledger(workspace).entries()


def verify(workspace: Workspace) -> VerifyResult:
    """Verify the workspace's ledger chain and HEAD."""
    return Ledger(workspace).verify()


def last_entry(entries: Sequence[LedgerEntry], *, name: str | None = None,
               actions: Sequence[str] = ACTIONS) -> LedgerEntry | None:
    """The last entry (of `name`, when given) whose action is one of `actions`."""
    for entry in reversed(entries):
        if entry.action in actions and (name is None or entry.name == name):
            return entry
    return None
