"""A gate report as Markdown, for a pull request: verdict first, then the gates, flips, disengagements,
waivers, approvals, MLflow runs and inputs.

No emoji: the verdict is a text badge (`PASS`, `FAIL`, `INSUFFICIENT`). Cell text is HTML-escaped and
pipes are escaped, so a reason or a scenario id cannot break the table or inject markup. Pictures are
named by their path in the workspace (the HTML page embeds them). The number formatting and the
gates' display order here are shared with the HTML page.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from andon.gates.records import BLOCKING, FAIL, INSUFFICIENT, PASS, GateReport, GateResult, verdict_summary

_OUTCOME_RANK = {FAIL: 0, INSUFFICIENT: 1, PASS: 2}
GATE_HEADERS = ("gate", "kind", "severity", "outcome", "value", "bound", "interval", "margin", "reason")


def format_number(value: Any) -> str:
    """A number for people: 4 significant digits, whole numbers from 10 000 up; "-" for None."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else "nan"
    if isinstance(value, int):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


def format_interval(interval: Sequence[Any] | None) -> str:
    """"[low, high]" with an open end shown as infinity; "-" for None."""
    if interval is None:
        return "-"
    low = "-inf" if interval[0] is None else format_number(interval[0])
    high = "inf" if interval[1] is None else format_number(interval[1])
    return f"[{low}, {high}]"


def outcome_text(gate: GateResult) -> str:
    """The outcome as shown: upper case unless it passed; a waiver is named beside it."""
    text = gate.outcome if gate.outcome == PASS else gate.outcome.upper()
    return f"{text}, waived by {', '.join(gate.waived_by)}" if gate.waived else text


def gates_in_display_order(gates: Iterable[GateResult]) -> list[GateResult]:
    """Blocking gates first, then worst outcome first (fail, insufficient, pass), then by name."""
    return sorted(gates, key=lambda g: (g.severity != BLOCKING, _OUTCOME_RANK[g.effective_outcome],
                                        _OUTCOME_RANK[g.outcome], g.name))


def gate_row(gate: GateResult) -> list[str]:
    """The gate's cells in GATE_HEADERS order."""
    reason = gate.reason
    if gate.needed:
        reason += f" (needs {', '.join(f'{v} {k}' for k, v in sorted(gate.needed.items()))})"
    return [gate.name, gate.kind, gate.severity, outcome_text(gate), format_number(gate.value),
            format_number(gate.bound), format_interval(gate.interval), format_number(gate.margin), reason]


def safe_url(url: Any) -> str | None:
    """The URL when it is http(s), else None (a link must never run script or reach a local file)."""
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def render_markdown(report: GateReport) -> str:
    """The report as Markdown text (ends with a newline)."""
    lines = [f"## andon gate report `{report.report_id}`: {report.verdict.upper()}", "",
             f"**Verdict: `{report.verdict.upper()}`**: {_cell(verdict_summary(report.gates))}", ""]
    lines += _table([["candidate", report.candidate_label], ["baseline", report.baseline_label],
                     ["gate set", f"{report.gate_set['name']} (config sha256 {report.gate_set['config_hash'][:12]})"],
                     ["code version", str(report.inputs.get("code_version", "-"))]], ["", ""])
    for note in report.notes:
        lines += ["", f"> **Note:** {_cell(note)}"]
    lines += ["", f"### Gates ({len(report.gates)})", ""]
    lines += _table([gate_row(g) for g in gates_in_display_order(report.gates)], GATE_HEADERS)
    lines += _flips(report)
    lines += _events(report)
    if report.waivers:
        lines += ["", "### Waivers", ""]
        lines += _table([[w["gate"], ", ".join(w["reviewers"]), w["reason"]] for w in report.waivers],
                        ["gate", "reviewers", "reason"])
    if report.approvals:
        lines += ["", "### Approvals", ""]
        lines += _table([[a["reviewer"], _json({k: v for k, v in a.items() if k != "reviewer"})]
                         for a in report.approvals], ["reviewer", "detail"])
    if report.mlflow_runs:
        lines += ["", "### MLflow runs", ""]
        lines += [f"- {_mlflow_link(r)}" for r in report.mlflow_runs]
    lines += ["", "### Inputs", ""]
    lines += _inputs(report.inputs)
    return "\n".join(lines) + "\n"


def _flips(report: GateReport) -> list[str]:
    lines: list[str] = []
    for direction in ("regressions", "improvements"):
        flips = report.flips.get(direction, [])
        if not flips:
            continue
        lines += ["", f"### Flips: {direction} ({len(flips)})", ""]
        lines += _table([[f.get("suite", ""), f["check"], f["scenario_id"], format_number(f.get("value")),
                          format_number(f.get("baseline_value")), f.get("picture") or "-"] for f in flips],
                        ["suite", "check", "scenario", "candidate", "baseline", "picture"])
    return lines


def _events(report: GateReport) -> list[str]:
    if not report.events:
        return ["", "### Disengagements (0)", "", "none"]
    lines = ["", f"### Disengagements ({len(report.events)})", ""]
    return lines + _table([[e["side"], e["scenario_id"], str(e["time_ns"]), e["cause"], e.get("detail", ""),
                            e.get("picture") or "-"] for e in report.events],
                          ["side", "scenario", "time [ns]", "cause", "detail", "picture"])


def _inputs(inputs: Mapping[str, Any]) -> list[str]:
    lines = []
    for key in sorted(inputs):
        value = inputs[key]
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            lines.append(f"- {_cell(key)}:")
            lines += [f"  - {_code(_json(v))}" for v in value]
        else:
            lines.append(f"- {_cell(key)}: {_code(_json(value))}")
    return lines


def _mlflow_link(run: Mapping[str, Any]) -> str:
    text = _cell(f"{run['model']} version {run['version']} (run {run['run_id']})")
    url = safe_url(run.get("url"))
    return f"[{text}]({quote(url, safe=':/?#[]@!$&*+,;=%~')})" if url else text


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> list[str]:
    out = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return out + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _cell(value: Any) -> str:
    text = "-" if value is None else str(value)
    return html.escape(text, quote=False).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _code(text: str) -> str:
    """An inline code span (literal text: no escaping inside), fenced past any backticks it holds."""
    text = text.replace("\r", " ").replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), ensure_ascii=False)
