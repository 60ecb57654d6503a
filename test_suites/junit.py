"""JUnit XML of a suite run, so any CI shows it: one <testsuite>, one <testcase> per (check, scenario).

- classname "SUITE.CHECK", name the scenario id ("aggregate" for an aggregate check's one row);
- a failing row of a blocking check: <failure message="..."> (an <error> when the replay or the
  metric failed); a failing row of a warning check: no failure, a "WARNING ..." line in <system-out>;
- a row where the check does not apply: <skipped message="not applicable: ...">;
- a check with no row (unknown metric, nothing selected) is one testcase named "check", failing
  when blocking; an empty selection adds a failing testcase "SUITE.selection" / "selector".
The bytes are deterministic: no times or host names, attributes in a fixed order, rows in result order.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

NO_ROW_NAME = "check"


def _fmt(value: Any) -> str:
    return "none" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


def junit_xml(result: Mapping[str, Any]) -> bytes:
    """The JUnit XML document of a suite result (the result.json document)."""
    suite = str(result["suite"])
    checks = {c["name"]: c for c in result["checks"]}
    cases: list[ET.Element] = []
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}

    def case(classname: str, name: str) -> ET.Element:
        element = ET.Element("testcase", {"classname": classname, "name": name, "time": "0"})
        cases.append(element)
        counts["tests"] += 1
        return element

    def fail(element: ET.Element, message: str, blocking: bool, error: bool = False) -> None:
        if not blocking:
            ET.SubElement(element, "system-out").text = f"WARNING (not blocking): {message}"
            return
        tag = "error" if error else "failure"
        ET.SubElement(element, tag, {"message": message, "type": "blocking"}).text = message
        counts["errors" if error else "failures"] += 1

    if not result["scenario_ids"]:
        fail(case(f"{suite}.selection", "selector"), "the selector matched no scenario: a suite never passes empty",
             True)
    rows_by_check: dict[str, list[Mapping[str, Any]]] = {name: [] for name in checks}
    for row in result["results"]:
        rows_by_check.setdefault(row["check"], []).append(row)
    for name, check in checks.items():
        classname = f"{suite}.{name}"
        blocking = check["severity"] == "blocking"
        rows = rows_by_check.get(name, [])
        if not rows:
            element = case(classname, NO_ROW_NAME)
            if not check["passed"]:
                fail(element, check["reason"], blocking)
            continue
        for row in rows:
            element = case(classname, str(row["scenario_id"]))
            if row["passed"] is None:
                ET.SubElement(element, "skipped", {"message": f"not applicable: {row.get('reason') or 'no selected object'}"})
                counts["skipped"] += 1
            elif row["passed"] is False:
                error = "error" in (row.get("evidence") or {})
                base = row.get("baseline_passed")
                message = (f"{check['metric']} = {_fmt(row['value'])}, needs {check['comparator']} {_fmt(row['threshold'])}"
                           + (f" ({row['reason']})" if row.get("reason") else "")
                           + ("" if base is None else f"; baseline {'passed' if base else 'failed'} "
                                                      f"({_fmt(row.get('baseline_value'))})")
                           + (f"; picture {row['picture']}" if row.get("picture") else ""))
                fail(element, message, blocking, error)
    root = ET.Element("testsuites", {"name": f"andon suite {suite}", **{k: str(v) for k, v in counts.items()}})
    testsuite = ET.SubElement(root, "testsuite", {"name": suite, **{k: str(v) for k, v in counts.items()}, "time": "0"})
    properties = ET.SubElement(testsuite, "properties")
    for key in ("run_id", "suite_sha256", "passed"):
        ET.SubElement(properties, "property", {"name": key, "value": _fmt(result.get(key))})
    ET.SubElement(properties, "property", {"name": "models", "value": ",".join(result.get("models") or []) or "stand-ins"})
    if result.get("baseline_models") is not None:
        ET.SubElement(properties, "property", {"name": "baseline_models",
                                               "value": ",".join(result["baseline_models"]) or "stand-ins"})
    testsuite.extend(cases)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
