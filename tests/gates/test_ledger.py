"""The release ledger: hash chain, HEAD, tamper detection, crash repair, concurrent appenders, `andon ledger`."""

from __future__ import annotations

import json
import multiprocessing
import subprocess

import pytest

from andon.errors import BadInput, CheckFailed
from andon.gates.ledger import (
    GENESIS_HASH,
    Ledger,
    append_entry,
    read_entries,
    resolve_who,
    verify,
)
from andon.ids import canonical_json, hash_json
from tests.gates.test_release_cli import cli_json, run_cli


def _fill(workspace, count=4):
    for i in range(count):
        append_entry(workspace, "refuse", "predictor", {"predictor": str(i + 1)}, who=f"user{i}",
                     report_id=f"r{i}", verdict="fail", details={"i": i})
    return Ledger(workspace)


def _lines(ledger):
    return ledger.path.read_bytes().splitlines(keepends=True)


def _write(ledger, lines):
    ledger.path.write_bytes(b"".join(lines))


def test_entries_chain_and_head(workspace):
    ledger = _fill(workspace, 3)
    entries = read_entries(workspace)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in zip(entries, entries[1:], strict=False):
        assert after.prev_hash == before.hash
    for entry in entries:
        assert entry.hash == hash_json(entry.body())
        assert entry.time.endswith("Z") and entry.time[:4].isdigit()
    assert [line.decode() for line in _lines(ledger)] == [canonical_json(e.to_dict()) + "\n" for e in entries]
    assert json.loads(ledger.head_path.read_text()) == {"seq": 3, "hash": entries[-1].hash}
    result = verify(workspace)
    assert (result.ok, result.entries, result.problems, result.notes, result.head_seq) == (True, 3, (), (), 3)
    assert (ledger.dir / ".gitignore").read_text().startswith("/ledger.lock")


def test_empty_ledger_verifies(workspace):
    result = verify(workspace)
    assert result.ok and result.entries == 0 and result.head_seq is None


def _edit(lines):
    doc = json.loads(lines[1])
    doc["verdict"] = "pass"
    lines[1] = (canonical_json(doc) + "\n").encode()


def _edit_rehashed(lines):
    doc = json.loads(lines[1])
    doc["who"] = "mallory"
    doc["hash"] = hash_json({k: v for k, v in doc.items() if k != "hash"})
    lines[1] = (canonical_json(doc) + "\n").encode()


def _add_field(lines):
    doc = json.loads(lines[1])
    doc["note"] = "sneaked in"
    lines[1] = (canonical_json(doc) + "\n").encode()


@pytest.mark.parametrize(("tamper", "message"), [
    (_edit, "entry 2 (line 2) was edited: its hash does not match its content"),
    (_edit_rehashed, "entry 3 does not chain to entry 2"),
    (_add_field, "line 2 is not a complete ledger entry (truncated or corrupt): unexpected fields ['note']"),
    (lambda lines: lines.pop(1), "entry 2 is missing: removed"),
    (lambda lines: lines.pop(0), "entry 1 is missing: removed"),
    (lambda lines: lines.pop(), "the last entries were removed: HEAD names entry 4 but the ledger ends at entry 3"),
    (lambda lines: lines.__setitem__(slice(1, 3), [lines[2], lines[1]]),
     "entry 2 (line 3) comes after entry 3: entries were reordered"),
    (lambda lines: lines.__setitem__(1, lines[1][: len(lines[1]) // 2] + b"\n"),
     "line 2 is not a complete ledger entry (truncated or corrupt)"),
    (lambda lines: lines.__setitem__(3, lines[3][:40]), "line 4 is not a complete ledger entry (truncated or corrupt)"),
    (lambda lines: lines.__setitem__(3, lines[3][:-1]), "line 4 (entry 4) lacks its end of line: truncated"),
    (lambda lines: lines.__setitem__(2, b"\xff\xfe garbage\n"), "line 3 is not a complete ledger entry"),
    (lambda lines: lines.insert(2, lines[1]), "entry 2 appears again at line 3: duplicated"),
    (lambda lines: lines.insert(2, b"\n"), "line 3 is not a complete ledger entry"),
])
def test_tampering_is_detected_and_named(workspace, tamper, message):
    ledger = _fill(workspace)
    lines = _lines(ledger)
    tamper(lines)
    _write(ledger, lines)
    result = verify(workspace)
    assert not result.ok
    assert any(message in problem for problem in result.problems), result.problems


def test_removing_the_last_entries_and_rewriting_head_is_seen_by_the_chain_only_when_head_disagrees(workspace):
    ledger = _fill(workspace)
    ledger.head_path.unlink()
    assert "HEAD is missing but the ledger holds entries up to 4: it was deleted" in verify(workspace).problems
    ledger.head_path.write_text("not json")
    assert any(p.startswith("HEAD is unreadable") for p in verify(workspace).problems)
    ledger.path.unlink()
    ledger.head_path.write_text(json.dumps({"seq": 4, "hash": "0" * 64}))
    assert verify(workspace).problems == ("the ledger file is missing but HEAD names entry 4: it was deleted",)


def test_edited_entries_are_not_read_back(workspace):
    ledger = _fill(workspace)
    lines = _lines(ledger)
    _edit(lines)
    _write(ledger, lines)
    assert [e.seq for e in read_entries(workspace)] == [1, 3, 4]


def test_append_refuses_a_damaged_tail_and_changes_nothing(workspace):
    ledger = _fill(workspace)
    lines = _lines(ledger)
    _write(ledger, lines[:-1])  # the last entry removed: HEAD is ahead
    before = ledger.path.read_bytes()
    with pytest.raises(CheckFailed, match="HEAD names entry 4 but the ledger ends at entry 3"):
        append_entry(workspace, "refuse", "predictor", {"predictor": "9"}, who="ann")
    assert ledger.path.read_bytes() == before
    lines = _lines(ledger)
    _write(ledger, [*lines[:-1], b'{"seq": 3, "cut\n'])
    with pytest.raises(CheckFailed, match=r"its last line \(3\) is not a valid entry"):
        append_entry(workspace, "refuse", "predictor", {"predictor": "9"}, who="ann")


def test_an_append_torn_by_a_crash_is_a_note_and_the_next_append_removes_it(workspace):
    ledger = _fill(workspace, 2)
    with open(ledger.path, "ab") as handle:
        handle.write(b'{"seq":3,"prev_hash":"ab')  # the process died mid-line; HEAD still names entry 2
    result = verify(workspace)
    assert result.ok and result.entries == 2
    assert result.notes == ("line 3 is an append that never finished (HEAD names the entry before it): the next "
                            "append removes it",)
    entry = append_entry(workspace, "refuse", "predictor", {"predictor": "3"}, who="ann")
    assert entry.seq == 3
    result = verify(workspace)
    assert result.ok and result.entries == 3 and not result.notes


def test_head_left_one_behind_by_a_crash_is_a_note_and_is_repaired(workspace):
    ledger = _fill(workspace, 3)
    entries = read_entries(workspace)
    ledger.write_head(type(ledger.head())(2, entries[1].hash))  # the crash came after the line, before HEAD
    result = verify(workspace)
    assert result.ok and any("one behind the last" in note for note in result.notes)
    assert append_entry(workspace, "gate", "predictor", {"predictor": "4"}, who="ann").seq == 4
    assert verify(workspace).ok and not verify(workspace).notes
    # the first append's crash window: the line is there, HEAD is not yet
    ledger.path.write_bytes(_lines(ledger)[0])
    ledger.head_path.unlink()
    assert verify(workspace).ok and verify(workspace).notes
    assert append_entry(workspace, "gate", "predictor", {"predictor": "4"}, who="ann").seq == 2


def _appender(root: str, worker: int, count: int) -> None:
    from andon.workspace import Workspace

    workspace = Workspace.open(root)
    for i in range(count):
        append_entry(workspace, "waive", f"w{worker}", {"node": str(i)}, who=f"worker{worker}",
                     details={"gate": "g", "reason": "concurrent append test", "i": i})


def test_concurrent_appenders_never_break_the_chain(workspace):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_appender, args=(str(workspace.root), w, 25)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    result = verify(workspace)
    assert result.ok and result.entries == 100 and not result.notes
    entries = read_entries(workspace)
    assert [e.seq for e in entries] == list(range(1, 101))
    for worker in range(4):
        mine = [e.details["i"] for e in entries if e.name == f"w{worker}"]
        assert mine == list(range(25))  # each appender's entries, all there, in its own order


def test_bad_appends_are_bad_input(workspace):
    with pytest.raises(BadInput, match="ledger action 'promote'"):
        append_entry(workspace, "promote", "predictor", {"predictor": "1"}, who="ann")
    with pytest.raises(BadInput, match="node 'predictor' has no version"):
        append_entry(workspace, "release", "predictor", {"predictor": None}, who="ann")
    with pytest.raises(BadInput, match="one line"):
        append_entry(workspace, "release", "predictor", {"predictor": "1"}, who="ann\nbob")
    assert not read_entries(workspace)


def test_who_comes_from_the_option_then_the_environment(workspace, monkeypatch):
    monkeypatch.setenv("ANDON_USER", "ann")
    monkeypatch.setenv("USER", "unix-ann")
    assert resolve_who(" bob ") == "bob"
    assert resolve_who(None) == "ann"
    monkeypatch.delenv("ANDON_USER")
    assert resolve_who(None) == "unix-ann"
    monkeypatch.delenv("USER")
    subprocess.run(["git", "config", "user.name", "Ws User"], cwd=workspace.root, check=True)
    assert resolve_who(None, workspace) == "Ws User"  # git's user.name, as the workspace sees it


def test_ledger_verify_and_show_commands(workspace, capsys):
    ws = ["--workspace", str(workspace.root)]
    _fill(workspace, 3)
    append_entry(workspace, "gate", "detector", {"detector": "2"}, who="ann", report_id="abc", verdict="pass")
    code, doc = cli_json(["ledger", "verify", "--json", *ws])
    assert code == 0 and doc["ok"] and doc["entries"] == 4 and doc["problems"] == []
    code, doc = cli_json(["ledger", "show", "--json", "--name", "detector", *ws])
    assert code == 0 and [e["seq"] for e in doc["entries"]] == [4] and doc["ledger_ok"]
    assert doc["entries"][0]["candidate"] == {"detector": "2"}
    code, doc = cli_json(["ledger", "show", "--json", "--limit", "2", *ws])
    assert [e["seq"] for e in doc["entries"]] == [3, 4]
    capsys.readouterr()
    assert run_cli(["ledger", "show", *ws]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:5] == ["seq", "time", "who", "action", "name"] and "detector@2" in out

    ledger = Ledger(workspace)
    lines = _lines(ledger)
    _edit(lines)
    _write(ledger, lines)
    assert run_cli(["ledger", "verify", *ws]) == 1
    out = capsys.readouterr().out
    assert "TAMPERED" in out and "entry 2 (line 2) was edited" in out
    code, doc = cli_json(["ledger", "verify", "--json", *ws])
    assert code == 1 and not doc["ok"] and doc["problems"]
    assert run_cli(["ledger", "show", *ws]) == 0
    assert "does not verify" in capsys.readouterr().err
