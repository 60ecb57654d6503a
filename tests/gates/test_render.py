"""Markdown and HTML renders: verdict first, every gate, escaping, self-contained, byte-identical."""

from __future__ import annotations

import base64
import html.parser
import re
import shutil
import time

from andon.gates.charts import kmpd_chart, slice_chart
from andon.gates.records import GateResult
from andon.gates.render_html import VERDICT_COLOURS, gate_element_id, render_html
from andon.gates.render_markdown import format_interval, format_number, render_markdown
from tests.gates.report_samples import kmpd_gate, large_report, map_gate, sample_report, write_picture

NASTY = 'cut-in <script>alert("x")</script> | & "quoted"'


class _Page(html.parser.HTMLParser):
    """Collects tags with their attributes and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def test_markdown_verdict_first_then_gates_flips_events(tmp_path):
    report = sample_report(tmp_path, waivers=[{"gate": "detector_map", "reviewers": ["al"], "reason": "fine"}])
    text = render_markdown(report)
    lines = text.splitlines()
    assert lines[0] == f"## andon gate report `{report.report_id}`: FAIL"
    assert lines[2] == "**Verdict: `FAIL`**: 1 blocking gate failed: km_per_disengagement"
    header = "| gate | kind | severity | outcome | value | bound | interval | margin | reason |"
    assert header in lines
    row = next(line for line in lines if line.startswith("| km_per_disengagement |"))
    assert row.split(" | ")[3:8] == ["FAIL", "31.5", "50", "[18.2, 55]", "-31.8"]
    assert "| detector_map | model_metric | blocking | pass, waived by al |" in text
    assert "### Flips: regressions (1)" in text and "### Disengagements (1)" in text
    assert "### Waivers" in text and "| detector_map | al | fine |" in text
    assert "[predictor version 7 (run abc123)](http://127.0.0.1:5000/#/experiments/1/runs/abc123)" in text
    assert "> **Note:** simulation sim0000000000001" in text
    assert text.isascii()  # no emoji badges


def test_markdown_escapes_cells(tmp_path):
    report = sample_report(tmp_path, gates=[map_gate(reason=NASTY)])
    text = render_markdown(report)
    assert "<script>" not in text
    assert 'cut-in &lt;script&gt;alert("x")&lt;/script&gt; \\| &amp; "quoted"' in text


def test_numbers_for_people():
    assert [format_number(v) for v in (None, 3, 0.61234, 31.5, 123456.7, float("inf"))] == [
        "-", "3", "0.6123", "31.5", "123457", "inf"]
    assert format_interval((40.1, None)) == "[40.1, inf]" and format_interval(None) == "-"


def test_html_verdict_banner_comes_first_and_every_gate_has_its_row(tmp_path):
    report = sample_report(tmp_path)
    page = render_html(report, tmp_path)
    body = page[page.index("<body>"):]
    assert body.index('id="verdict"') < body.index('id="gates"')
    assert '<header id="verdict" class="fail" data-verdict="fail">' in page
    assert f".fail{{background:{VERDICT_COLOURS['fail']}}}" in page
    tags = parse(page).tags
    rows = {a["id"]: a for t, a in tags if t == "tr" and (a.get("id") or "").startswith("gate-")}
    assert set(rows) == {"gate-km_per_disengagement", "gate-detector_map"}
    assert rows["gate-km_per_disengagement"]["data-outcome"] == "fail"
    for text in ("31.5", "[18.2, 55]", "-31.8", "km per disengagement 31.5 (95% interval [18.2, 55]) below 50"):
        assert text in page
    assert gate_element_id("a b/c") == "gate-a-b-c"


def test_html_is_self_contained_and_script_free(tmp_path):
    report = sample_report(tmp_path, mlflow_runs=[
        {"model": "p", "version": "7", "run_id": "ok", "url": "https://mlflow.example/runs/ok"},
        {"model": "p", "version": "6", "run_id": "evil", "url": "javascript:alert(1)"}])
    page = render_html(report, tmp_path)
    tags = parse(page).tags
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed")]
    images = [a["src"] for t, a in tags if t == "img"]
    assert len(images) == 4  # two charts, the flip's picture, the disengagement's picture
    assert all(src.startswith("data:image/png;base64,") for src in images)
    for src in images:
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    hrefs = [a["href"] for t, a in tags if t == "a"]
    assert hrefs == ["https://mlflow.example/runs/ok"]  # the javascript: URL is shown as text, not linked
    assert "run evil" in page
    assert not re.search(r"(src|href)=\"(?!data:|https://mlflow|#)", page)


def test_html_escapes_all_text(tmp_path):
    report = sample_report(tmp_path, gates=[kmpd_gate(reason=NASTY), map_gate(name='x"><b>y')],
                           notes=[NASTY])
    page = render_html(report, tmp_path)
    assert "<script>" not in page and "<b>y" not in page
    assert "cut-in &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert 'id="gate-x---b-y"' in page


def test_same_inputs_give_byte_identical_pages_in_two_workspaces(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    report_one = sample_report(first)
    report_two = sample_report(second)
    assert report_one.report_id == report_two.report_id
    assert render_html(report_one, first).encode() == render_html(report_two, second).encode()
    assert render_markdown(report_one) == render_markdown(report_two)


def test_a_picture_changed_after_the_report_is_not_shown(tmp_path):
    report = sample_report(tmp_path)
    write_picture(tmp_path, "simulations/sim0000000000001/pictures/e1.png", colour="tab:green")
    page = render_html(report, tmp_path)
    assert "changed since the report was built" in page
    assert len([1 for t, _ in parse(page).tags if t == "img"]) == 3
    shutil.rmtree(tmp_path / "suites")
    assert "picture missing: suites/run0000000000001/pictures/flip1.png" in render_html(report, tmp_path)


def test_insufficient_gates_say_what_they_need(tmp_path):
    short = GateResult("kmpd", "system_metric", "blocking", "insufficient", value=None, bound=50.0,
                       interval=(3.1, None), margin=None, reason="no disengagement in 12 km", needed={"km": 35.2})
    report = sample_report(tmp_path, gates=[short, map_gate()])
    assert report.verdict == "insufficient"
    page = render_html(report, tmp_path)
    assert 'data-verdict="insufficient"' in page and "kmpd needs 35.2 km" in page
    assert "no disengagement in 12 km (needs 35.2 km)" in render_markdown(report)


def test_charts_are_deterministic_pngs_without_software_metadata():
    slices = [{"slice": "vehicle", "candidate": 0.7, "baseline": 0.6, "candidate_interval": [0.65, 0.75]},
              {"slice": "pedestrian", "candidate": 0.5, "baseline": None}]
    one = slice_chart("mAP per slice", slices, "predictor@7", "predictor@6")
    assert one == slice_chart("mAP per slice", slices, "predictor@7", "predictor@6")
    assert one[:8] == b"\x89PNG\r\n\x1a\n" and b"Software" not in one and b"matplotlib" not in one
    rows = [{"label": "c", "side": "candidate", "value": 31.5, "interval": [18.2, 55.0]},
            {"label": "b", "side": "baseline", "value": None, "interval": [40.1, None]}]
    assert kmpd_chart(rows) == kmpd_chart(rows)
    assert slice_chart("t", [{"slice": "x", "candidate": None}], "c", None) is None
    assert kmpd_chart([{"label": "c", "value": None, "interval": None}]) is None


def test_render_time_of_a_large_report(tmp_path):
    report = large_report(tmp_path, n_gates=20, n_pictures=30)
    start = time.perf_counter()
    page = render_html(report, tmp_path)
    elapsed_s = time.perf_counter() - start
    assert page.count("<img ") == 30 + 1 + 11  # events, the flip, 10 slice charts and the km-per-disengagement one
    assert elapsed_s < 20.0, f"rendering 20 gates and 30 pictures took {elapsed_s:.1f} s"
