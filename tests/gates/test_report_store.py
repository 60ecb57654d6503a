"""Reports in the workspace: atomic writes, identical reports left alone, listing, lookup, tamper check, diff."""

from __future__ import annotations

import json
import os

import pytest

from andon.errors import BadInput, InternalError
from andon.gates.report_store import (
    HTML_NAME,
    JSON_NAME,
    MARKDOWN_NAME,
    diff_reports,
    list_reports,
    load_report,
    reports_dir,
    resolve_report,
    write_report,
)
from tests.gates.report_samples import kmpd_gate, map_gate, sample_report


def test_write_puts_three_files_in_the_report_folder(tmp_path):
    report = sample_report(tmp_path)
    stored = write_report(tmp_path, report)
    assert stored.folder == tmp_path / "reports" / report.report_id
    assert sorted(p.name for p in stored.folder.iterdir()) == sorted([JSON_NAME, MARKDOWN_NAME, HTML_NAME])
    doc = json.loads(stored.json_path.read_text())
    assert doc == report.to_dict()
    assert stored.html_path.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in reports_dir(tmp_path).iterdir()] == [report.report_id]  # no temp folders left


def test_an_identical_report_is_left_as_is(tmp_path):
    stored = write_report(tmp_path, sample_report(tmp_path))
    stamps = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in stored.folder.iterdir()}
    os.utime(stored.folder, ns=(1, 1))
    write_report(tmp_path, sample_report(tmp_path))
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in stored.folder.iterdir()} == stamps
    assert stored.folder.stat().st_mtime_ns == 1


def test_a_damaged_folder_is_replaced_whole(tmp_path):
    report = sample_report(tmp_path)
    stored = write_report(tmp_path, report)
    stored.html_path.unlink()
    stored.markdown_path.write_text("garbage")
    write_report(tmp_path, report)
    assert stored.html_path.is_file() and stored.markdown_path.read_text().startswith("## andon gate report")
    assert [p.name for p in reports_dir(tmp_path).iterdir()] == [report.report_id]


def test_a_report_whose_id_does_not_match_is_refused(tmp_path):
    import dataclasses

    report = dataclasses.replace(sample_report(tmp_path), report_id="0" * 16)
    with pytest.raises(InternalError, match="does not hash to its id"):
        write_report(tmp_path, report)


def test_list_load_and_prefixes(tmp_path):
    failing = sample_report(tmp_path)
    passing = sample_report(tmp_path, gates=[kmpd_gate(outcome="pass", value=60.0), map_gate()])
    assert list_reports(tmp_path) == []
    for report in (failing, passing):
        write_report(tmp_path, report)
    entries = list_reports(tmp_path)
    assert [e.report_id for e in entries] == sorted([failing.report_id, passing.report_id])
    entry = next(e for e in entries if e.report_id == failing.report_id)
    assert entry.to_dict() == {"report_id": failing.report_id, "candidate": "predictor@7", "baseline": "predictor@6",
                               "gate_set": "release", "verdict": "fail",
                               "html_path": str((tmp_path / "reports" / failing.report_id / HTML_NAME).resolve())}
    assert load_report(tmp_path, failing.report_id) == failing
    assert load_report(tmp_path, failing.report_id[:6].upper()) == failing
    assert resolve_report(tmp_path, passing.report_id).report_id == passing.report_id


def test_unknown_ambiguous_and_malformed_ids_are_bad_input(tmp_path):
    write_report(tmp_path, sample_report(tmp_path))
    with pytest.raises(BadInput, match=r"no report 'abcdef12' in .*: `andon report list` shows the reports"):
        load_report(tmp_path, "abcdef12")
    with pytest.raises(BadInput, match="is not a report id"):
        load_report(tmp_path, "../etc")
    (reports_dir(tmp_path) / "aaaa1").mkdir()
    (reports_dir(tmp_path) / "aaaa1" / JSON_NAME).write_text("{}")
    (reports_dir(tmp_path) / "aaaa2").mkdir()
    (reports_dir(tmp_path) / "aaaa2" / JSON_NAME).write_text("{}")
    with pytest.raises(BadInput, match=r"'aaaa' is ambiguous \(aaaa1, aaaa2\)"):
        resolve_report(tmp_path, "aaaa")


def test_unreadable_reports_are_skipped_when_listing_and_refused_when_loading(tmp_path, capsys):
    report = sample_report(tmp_path)
    stored = write_report(tmp_path, report)
    (reports_dir(tmp_path) / "ffff").mkdir()
    (reports_dir(tmp_path) / "ffff" / JSON_NAME).write_text("not json")
    assert [e.report_id for e in list_reports(tmp_path)] == [report.report_id]
    assert "skipping unreadable report" in capsys.readouterr().err
    with pytest.raises(InternalError, match="unreadable"):
        load_report(tmp_path, "ffff")
    doc = json.loads(stored.json_path.read_text())
    doc["gates"][0]["value"] = 99.0  # edited by hand: still a valid report, but not the one that was hashed
    stored.json_path.write_text(json.dumps(doc))
    with pytest.raises(InternalError, match="does not hash to its id"):
        load_report(tmp_path, report.report_id)


def test_diff_names_what_changed(tmp_path):
    before = sample_report(tmp_path)
    after = sample_report(
        tmp_path, gates=[kmpd_gate(outcome="pass", value=60.0, margin=10.0), map_gate(name="ap_pedestrian")],
        candidate={"name": "predictor", "models": {"predictor": "predictor@8"}}, flips={},
        waivers=[{"gate": "ap_pedestrian", "reviewers": ["al"], "reason": "ok"}])
    diff = diff_reports(before, after)
    assert diff.changed and diff.verdict == ("fail", "pass")
    assert diff.models == {"candidate": {"predictor": ["predictor@7", "predictor@8"]}, "baseline": {}}
    assert diff.gates_added == ("ap_pedestrian",) and diff.gates_removed == ("detector_map",)
    (changed,) = diff.gates_changed
    assert changed["name"] == "km_per_disengagement"
    assert changed["changes"]["outcome"] == ["fail", "pass"] and changed["changes"]["value"] == [31.5, 60.0]
    assert changed["changes"]["margin"] == [-31.8, 10.0]
    assert diff.flips_removed == ({"direction": "regressions", "suite": "cut_ins", "check": "min_ttc",
                                   "scenario_id": "sc-17"},)
    assert diff.waivers_added[0]["gate"] == "ap_pedestrian"
    doc = json.loads(json.dumps(diff.to_dict(), allow_nan=False))
    assert doc["verdict"] == {"a": "fail", "b": "pass", "changed": True}
    same = diff_reports(before, before)
    assert not same.changed and same.gates_changed == ()
