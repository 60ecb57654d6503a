"""A gate report as one self-contained HTML page for the safety reviewer.

Verdict first, in a coloured banner (`id="verdict"`, `data-verdict="pass|fail|insufficient"`); then the
notes the reviewer must read, each gate as a table row (`id="gate-<name>"`) with its value, bound,
interval, margin and reason, the charts, the flips, every disengagement with its bird's-eye picture,
waivers, approvals, the MLflow runs and the inputs.

Self-contained: inline CSS, no script, every image a `data:` URI (charts drawn here, pictures read
from the workspace and checked against the SHA-256 the report recorded). The only URLs are the MLflow
runs' links (http/https only). All text is escaped. The same report and pictures give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from andon.gates.charts import kmpd_chart, png_data_uri, slice_chart
from andon.gates.records import GateReport, GateResult, verdict_summary
from andon.gates.render_markdown import (
    GATE_HEADERS,
    format_number,
    gate_row,
    gates_in_display_order,
    safe_url,
)
from andon.workspace import Workspace

VERDICT_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "insufficient": "#9a6700"}
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
         ".webp": "image/webp"}
_NUMERIC = {"value", "bound", "interval", "margin"}

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1f2328;
background:#fff}
#verdict{padding:22px 32px 18px;color:#fff}
#verdict .label{text-transform:uppercase;letter-spacing:.12em;font-size:12px;opacity:.9}
#verdict h1{margin:2px 0 6px;font-size:44px;letter-spacing:.04em}
#verdict p{margin:4px 0}
#verdict code{background:rgba(255,255,255,.18);padding:0 4px;border-radius:3px}
main{padding:12px 32px 32px;max-width:1500px}
h2{margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid #d0d7de;font-size:20px}
h3{margin:16px 0 6px;font-size:16px}
table{border-collapse:collapse;width:100%;margin:6px 0 14px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;color:#fff;font-weight:600;font-size:12px;
white-space:nowrap}
.pass{background:#1a7f37}.fail{background:#cf222e}.insufficient{background:#9a6700}
tr.gate td{background:#fff}
tr.gate.out-fail td:first-child{border-left:5px solid #cf222e}
tr.gate.out-insufficient td:first-child{border-left:5px solid #9a6700}
tr.gate.out-pass td:first-child{border-left:5px solid #1a7f37}
tr.gate.waived td{background:#fff8c5}
tr.more td{border-top:none;padding:0 8px 4px}
details summary{cursor:pointer;color:#57606a;font-size:12px}
pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:12px;margin:4px 0;white-space:pre-wrap}
.note{background:#fff8c5;border:1px solid #d4a72c;border-radius:4px;padding:8px 12px;margin:10px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:14px}
figure{margin:8px 0;border:1px solid #d0d7de;border-radius:4px;padding:8px;background:#fff}
figure img{display:block;max-width:100%;height:auto}
figcaption{font-size:13px;margin-top:6px}
img.thumb{max-width:280px;height:auto;display:block}
.missing{color:#cf222e;font-style:italic}
footer{color:#57606a;font-size:12px;margin-top:32px}
"""


def render_html(report: GateReport, workspace: Workspace | str | os.PathLike[str]) -> str:
    """The report's HTML page.

    Args:
        report: the report.
        workspace: the workspace (or its root) holding the report's pictures.

    Returns:
        The page as text (UTF-8 when written).
    """
    root = workspace.root if isinstance(workspace, Workspace) else Path(workspace)
    pictures = _PictureEmbedder(root)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(report.verdict.upper())}: andon gate report {_e(report.report_id)} "
        f"({_e(report.candidate_label)})</title>",
        f"<style>{_CSS}</style></head><body>",
        _banner(report),
        "<main>",
        *[f'<p class="note"><b>Note:</b> {_e(note)}</p>' for note in report.notes],
        _gates(report),
        _charts(report),
        _flips(report, pictures),
        _events(report, pictures),
        _waivers(report),
        _approvals(report),
        _mlflow(report),
        _inputs(report),
        f"<footer>andon gate report <code>{_e(report.report_id)}</code>: the first 16 hex of the SHA-256 of "
        "its content; the same inputs give this same page.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def gate_element_id(name: str) -> str:
    """The HTML id of a gate's row: "gate-" and the name with characters outside [A-Za-z0-9_.-] as "-"."""
    return "gate-" + re.sub(r"[^A-Za-z0-9_.-]", "-", name)


# ----- sections --------------------------------------------------------------------------------------
def _banner(report: GateReport) -> str:
    baseline = (f" against baseline <b>{_e(report.baseline_label)}</b>" if report.baseline is not None
                else " (no baseline)")
    return (f'<header id="verdict" class="{_e(report.verdict)}" data-verdict="{_e(report.verdict)}">'
            f'<div class="label">Verdict</div><h1>{_e(report.verdict.upper())}</h1>'
            f"<p>{_e(verdict_summary(report.gates))}</p>"
            f"<p>candidate <b>{_e(report.candidate_label)}</b>{baseline}; gate set "
            f"<b>{_e(report.gate_set['name'])}</b>; report <code>{_e(report.report_id)}</code></p></header>")


def _gates(report: GateReport) -> str:
    headers = "".join(f"<th>{_e(h)}</th>" for h in GATE_HEADERS)
    rows, seen = [], set()
    for gate in gates_in_display_order(report.gates):
        element_id = gate_element_id(gate.name)
        while element_id in seen:
            element_id += "-"
        seen.add(element_id)
        cells = []
        for header, text in zip(GATE_HEADERS, gate_row(gate), strict=True):
            if header == "outcome":
                cells.append(f'<td><span class="badge {_e(gate.outcome)}">{_e(text)}</span></td>')
            else:
                cells.append(f'<td class="num">{_e(text)}</td>' if header in _NUMERIC else f"<td>{_e(text)}</td>")
        classes = f"gate out-{gate.outcome}" + (" waived" if gate.waived else "")
        rows.append(f'<tr id="{_e(element_id)}" class="{classes}" data-outcome="{_e(gate.outcome)}">'
                    f"{''.join(cells)}</tr>")
        rows.append(f'<tr class="more"><td colspan="{len(GATE_HEADERS)}">{_gate_more(gate)}</td></tr>')
    return (f'<section id="gates"><h2>Gates ({len(report.gates)})</h2><table><thead><tr>{headers}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></section>")


def _gate_more(gate: GateResult) -> str:
    doc = {"inputs": gate.inputs, "details": gate.details}
    if gate.needed:
        doc["needed"] = gate.needed
    return f"<details><summary>inputs and details</summary><pre>{_e(_json(doc))}</pre></details>"


def _charts(report: GateReport) -> str:
    figures = []
    baseline = report.baseline_label if report.baseline is not None else None
    for gate in gates_in_display_order(report.gates):
        slices = gate.details.get("slices")
        if not isinstance(slices, list) or not all(isinstance(s, Mapping) for s in slices):
            continue
        metric = gate.details.get("metric") or gate.name
        title = f"{gate.name}: {metric} per slice"
        png = slice_chart(title, slices, report.candidate_label,
                          baseline if any(s.get("baseline") is not None for s in slices) else None)
        if png is not None:
            figures.append(_figure(png, f"chart-{gate_element_id(gate.name)[5:]}", title,
                                   f"{metric} per slice, candidate {report.candidate_label}"
                                   + (f" vs baseline {baseline}" if baseline else "")))
    rows = _kmpd_rows(report)
    png = kmpd_chart(rows) if rows else None
    if png is not None:
        figures.append(_figure(png, "chart-km-per-disengagement", "km per disengagement",
                               "km per disengagement with confidence intervals, candidate vs baseline"))
    if not figures:
        return ""
    return f'<section id="charts"><h2>Charts</h2>{"".join(figures)}</section>'


def _kmpd_rows(report: GateReport) -> list[dict[str, Any]]:
    rows = []
    labels = {"candidate": report.candidate_label, "baseline": report.baseline_label}
    for gate in sorted(report.gates, key=lambda g: g.name):
        doc = gate.details.get("km_per_disengagement")
        if not isinstance(doc, Mapping):
            continue
        for side in ("candidate", "baseline"):
            entry = doc.get(side)
            if isinstance(entry, Mapping):
                rows.append({"label": f"{gate.name}: {labels[side]}", "side": side, "value": entry.get("value"),
                             "interval": entry.get("interval"), "disengagements": entry.get("disengagements")})
    return rows


def _figure(png: bytes, element_id: str, alt: str, caption: str) -> str:
    return (f'<figure id="{_e(element_id)}"><img src="{png_data_uri(png)}" alt="{_e(alt)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _flips(report: GateReport, pictures: _PictureEmbedder) -> str:
    blocks = []
    for direction, what in (("regressions", "passed in the baseline, fail in the candidate"),
                            ("improvements", "failed in the baseline, pass in the candidate")):
        flips = report.flips.get(direction, [])
        rows = "".join(
            f"<tr><td>{_e(f.get('suite', ''))}</td><td>{_e(f['check'])}</td><td>{_e(f['scenario_id'])}</td>"
            f'<td class="num">{_e(format_number(f.get("value")))}</td>'
            f'<td class="num">{_e(format_number(f.get("baseline_value")))}</td>'
            f"<td>{pictures.img(f, _flip_alt(f), 'thumb')}</td></tr>" for f in flips)
        table = (f"<table><thead><tr><th>suite</th><th>check</th><th>scenario</th><th>candidate</th>"
                 f"<th>baseline</th><th>picture</th></tr></thead><tbody>{rows}</tbody></table>" if flips
                 else "<p>none</p>")
        blocks.append(f'<h3 id="flips-{direction}">{direction.capitalize()} ({len(flips)}): {_e(what)}</h3>{table}')
    return f'<section id="flips"><h2>Flips</h2>{"".join(blocks)}</section>'


def _events(report: GateReport, pictures: _PictureEmbedder) -> str:
    figures = []
    for i, event in enumerate(report.events):
        caption = (f"<b>{_e(event['side'])}</b> · {_e(event['scenario_id'])} · t = {_e(event['time_ns'])} ns · "
                   f"<b>{_e(event['cause'])}</b>" + (f" · {_e(event['detail'])}" if event.get("detail") else "")
                   + (f" · sim {_e(event['sim_id'])}" if event.get("sim_id") else ""))
        alt = f"bird's-eye view of the {event['cause']} disengagement in {event['scenario_id']}"
        figures.append(f'<figure id="event-{i}" class="event">{pictures.img(event, alt)}'
                       f"<figcaption>{caption}</figcaption></figure>")
    body = f'<div class="grid">{"".join(figures)}</div>' if figures else "<p>none</p>"
    return f'<section id="events"><h2>Disengagements ({len(report.events)})</h2>{body}</section>'


def _waivers(report: GateReport) -> str:
    if not report.waivers:
        return '<section id="waivers"><h2>Waivers</h2><p>none</p></section>'
    rows = "".join(f'<tr><td><a href="#{_e(gate_element_id(w["gate"]))}">{_e(w["gate"])}</a></td>'
                   f"<td>{_e(', '.join(w['reviewers']))}</td><td>{_e(w['reason'])}</td></tr>" for w in report.waivers)
    return (f'<section id="waivers"><h2>Waivers ({len(report.waivers)})</h2><table><thead><tr><th>gate</th>'
            f"<th>reviewers</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table></section>")


def _approvals(report: GateReport) -> str:
    if not report.approvals:
        return '<section id="approvals"><h2>Approvals</h2><p>none</p></section>'
    rows = "".join(f"<tr><td>{_e(a['reviewer'])}</td>"
                   f"<td>{_e(_json({k: v for k, v in a.items() if k != 'reviewer'}))}</td></tr>"
                   for a in report.approvals)
    return (f'<section id="approvals"><h2>Approvals ({len(report.approvals)})</h2><table><thead><tr>'
            f"<th>reviewer</th><th>detail</th></tr></thead><tbody>{rows}</tbody></table></section>")


def _mlflow(report: GateReport) -> str:
    if not report.mlflow_runs:
        return '<section id="mlflow"><h2>MLflow runs</h2><p>none recorded</p></section>'
    items = []
    for run in report.mlflow_runs:
        text = _e(f"{run['model']} version {run['version']}: run {run['run_id']}")
        url = safe_url(run.get("url"))
        items.append(f'<li><a href="{_e(url)}">{text}</a></li>' if url else f"<li>{text}</li>")
    return f'<section id="mlflow"><h2>MLflow runs</h2><ul>{"".join(items)}</ul></section>'


def _inputs(report: GateReport) -> str:
    rows = []
    for key in sorted(report.inputs):
        value = report.inputs[key]
        cell = _e(value) if isinstance(value, str) else f"<pre>{_e(_json(value))}</pre>"
        rows.append(f"<tr><th>{_e(key)}</th><td>{cell}</td></tr>")
    gate_set = report.gate_set
    return (f'<section id="inputs"><h2>Inputs</h2><table><tbody>{"".join(rows)}</tbody></table>'
            f"<h3>Gate set {_e(gate_set['name'])} (config sha256 <code>{_e(gate_set['config_hash'])}</code>)</h3>"
            f"<pre>{_e(_json(gate_set['config']))}</pre></section>")


# ----- helpers ---------------------------------------------------------------------------------------
class _PictureEmbedder:
    """Reads each picture once, checks it against the recorded SHA-256 and gives it as a data URI."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._uris: dict[str, str | None] = {}

    def img(self, doc: Mapping[str, Any], alt: str, css_class: str = "") -> str:
        rel = doc.get("picture")
        if not rel:
            return '<span class="missing">no picture</span>'
        if rel not in self._uris:
            self._uris[rel] = self._uri(rel, doc.get("picture_sha256"))
        uri = self._uris[rel]
        if uri is None:
            return f'<span class="missing">{_e(self._problem(rel, doc.get("picture_sha256")))}</span>'
        class_attr = f' class="{_e(css_class)}"' if css_class else ""
        return f'<img{class_attr} src="{uri}" alt="{_e(alt)}" title="{_e(rel)}">'

    def _uri(self, rel: str, digest: str | None) -> str | None:
        path = self.root / rel
        mime = _MIME.get(path.suffix.lower())
        if mime is None or digest is None or not path.is_file():
            return None
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            return None
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"

    def _problem(self, rel: str, digest: str | None) -> str:
        path = self.root / rel
        if path.suffix.lower() not in _MIME:
            return f"picture {rel}: not an image type a report embeds (png, jpeg, gif, webp)"
        if digest is None or not path.is_file():
            return f"picture missing: {rel}"
        return f"picture {rel} changed since the report was built (its SHA-256 differs): not shown"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _flip_alt(flip: Mapping[str, Any]) -> str:
    return f"bird's-eye view of {flip['scenario_id']} ({flip['check']})"
