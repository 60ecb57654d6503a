"""`andon scenarios ...`: the fleet-data curator's commands."""

from __future__ import annotations

import argparse
import getpass
import math
import os
from pathlib import Path
from typing import Any

from tqdm import tqdm

from andon.errors import BadInput, CheckFailed
from andon.output import emit_json, info, table
from andon.scenarios.catalog import Catalog, NewScenario
from andon.scenarios.query import HELP as QUERY_HELP
from andon.scenarios.records import Provenance, Scenario
from andon.workspace import Workspace

CURATOR_ENV = "ANDON_CURATOR"


def _curator(args: argparse.Namespace) -> str:
    if getattr(args, "curator", None):
        return args.curator
    try:
        return os.environ.get(CURATOR_ENV) or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _catalog(args: argparse.Namespace) -> Catalog:
    return Catalog(Workspace.open(args.workspace))


def _query_text(args: argparse.Namespace) -> str:
    negations = [t for t in args.extras if t.startswith(("-tag:", "-source:"))]
    unknown = [t for t in args.extras if t not in negations]
    if unknown:
        raise BadInput(f"unrecognized arguments: {' '.join(unknown)}")
    return " ".join([*args.terms, *negations])


def _fmt_qa(score: float) -> str:
    return "-" if math.isnan(score) else f"{score:.3f}"


def _rows(found: list[Scenario]) -> list[list[Any]]:
    return [[s.scenario_id, s.log_id, f"{s.duration_s:.1f}", _fmt_qa(s.qa_score), s.status,
             ",".join(sorted(s.tags))] for s in found]


HEADERS = ["scenario", "log", "dur_s", "qa", "status", "tags"]


def cmd_import(args: argparse.Namespace) -> int:
    from andon.scenarios.importers import importer

    path = Path(args.path)
    if not path.exists():
        raise BadInput(f"{path}: no such file or directory")
    module = importer(args.format)
    imported = module.read(path)
    provenance = Provenance("import", module.NAME, module.VERSION, curator=_curator(args))
    results = []
    with _catalog(args) as catalog:
        for log in tqdm(imported, desc=f"import {args.format}", unit="log", disable=None):
            log_id, created = catalog.add_log(log, provenance, origin=f"{path} ({log.name})")
            results.append({"log_id": log_id, "name": log.name, "frames": len(log.frames), "created": created})
    if args.json:
        emit_json({"format": args.format, "logs": results})
    else:
        for r in results:
            state = "imported" if r["created"] else "already in the catalog (nothing changed)"
            info(f"{r['log_id']}  {r['name']}  {r['frames']} frames  {state}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    with _catalog(args) as catalog:
        row = catalog.log_row(args.log)
        start = row["t_start_ns"] + int(round(args.start_s * 1e9))
        end = row["t_start_ns"] + int(round(args.end_s * 1e9))
        if args.end_s <= args.start_s:
            raise BadInput(f"--end-s {args.end_s} must be after --start-s {args.start_s}")
        provenance = Provenance("curator", _curator(args), curator=_curator(args), note=args.note or "")
        created, _ = catalog.add_scenarios([NewScenario(row["log_id"], start, end, frozenset(args.tag), provenance)])
        from andon.scenarios.catalog import scenario_id_for

        scenario = catalog.scenario(scenario_id_for(row["log_id"], start, end))
    if args.json:
        emit_json({**scenario.to_dict(), "created": bool(created)})
    else:
        info(f"{'added' if created else 'exists already; tags merged:'} {scenario.scenario_id}")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    removals = [t[1:] for t in args.extras if t.startswith("-") and not t.startswith("--")]
    unknown = [t for t in args.extras if not t.startswith("-") or t.startswith("--")]
    bad = [t for t in args.changes if not t.startswith("+")]
    if unknown or bad:
        raise BadInput(f"tag changes must look like +TAG or -TAG, got {' '.join(unknown + bad)}")
    adds = [t[1:] for t in args.changes]
    if not adds and not removals:
        raise BadInput("give at least one change, e.g. `andon scenarios tag ID +night -rain`")
    with _catalog(args) as catalog:
        scenario = catalog.tag(args.scenario, add=adds, remove=removals, by=f"curator:{_curator(args)}")
    if args.json:
        emit_json(scenario.to_dict())
    else:
        info(f"{scenario.scenario_id}: {', '.join(sorted(scenario.tags))}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    query = _query_text(args)
    with _catalog(args) as catalog:
        found = catalog.search(query, limit=args.limit, offset=args.offset)
        total = catalog.count(query)
    if args.json:
        emit_json({"query": query, "total": total, "scenarios": [s.to_dict() for s in found]})
    else:
        print(table(_rows(found), HEADERS))
        info(f"{len(found)} shown of {total} matching {query!r}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _catalog(args) as catalog:
        scenario = catalog.scenario(args.scenario)
        log_row = catalog.log_row(scenario.log_id)
        rendered = None
        if args.render:
            from andon.scenarios.render import render_scenario

            rendered = str(render_scenario(catalog.log(scenario.log_id), scenario, Path(args.render),
                                           at_s=args.at_s))
    doc = {**scenario.to_dict(), "log": {k: log_row[k] for k in ("log_id", "source", "name", "n_frames")},
           "duration_s": scenario.duration_s, "render": rendered}
    if args.json:
        emit_json(doc)
        return 0
    print(f"scenario   {scenario.scenario_id}  ({scenario.status}{': ' + scenario.retired_reason if scenario.retired_reason else ''})")
    print(f"log        {scenario.log_id}  {log_row['name']}  ({log_row['n_frames']} frames)")
    print(f"window     {scenario.t_start_ns} .. {scenario.t_end_ns} ns  ({scenario.duration_s:.2f} s)")
    print(f"tags       {', '.join(sorted(scenario.tags))}")
    print(f"qa score   {_fmt_qa(scenario.qa_score)}")
    for check, detail in sorted(scenario.qa_details.items()):
        print(f"  {check}: {detail}")
    p = scenario.provenance
    print(f"provenance {p.kind}:{p.name}{'@' + p.version if p.version else ''}"
          f"{' curator=' + p.curator if p.curator else ''}{' note=' + p.note if p.note else ''}")
    if rendered:
        print(f"rendered   {rendered}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from andon.scenarios.integrity import validate_catalog

    query = _query_text(args)
    with _catalog(args) as catalog:
        report = validate_catalog(catalog, query)
    if args.json:
        emit_json(report)
    else:
        for problem in report["problems"]:
            info(f"PROBLEM {problem['log_id']}: {problem['problem']}")
        info(f"checked {report['logs_checked']} logs and {report['scenarios_checked']} scenarios: "
             f"{len(report['problems'])} problems")
    if report["problems"]:
        raise CheckFailed(f"{len(report['problems'])} problems found; see above")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with _catalog(args) as catalog:
        stats = catalog.stats()
    if args.json:
        emit_json(stats)
        return 0
    print(f"logs       {stats['logs']}  ({', '.join(f'{k}: {v}' for k, v in stats['logs_by_source'].items())})")
    print(f"frames     {stats['frames']}   hours {stats['hours']}")
    print(f"scenarios  {stats['scenarios']['active']} active, {stats['scenarios']['retired']} retired")
    print(table([[tag, n] for tag, n in stats["tags"].items()], ["tag", "scenarios"]))
    print(table([[b, n] for b, n in stats["qa_histogram"].items()] + [["unscored", stats["qa_unscored"]]],
                ["qa", "scenarios"]))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    with _catalog(args) as catalog:
        rows = [catalog.log_row(log_id) for log_id in catalog.logs(source=args.source)]
    docs = [{k: r[k] for k in ("log_id", "source", "name", "n_frames", "t_start_ns", "t_end_ns")} for r in rows]
    if args.json:
        emit_json(docs)
    else:
        print(table([[d["log_id"], d["source"], d["name"], d["n_frames"],
                      f"{(d['t_end_ns'] - d['t_start_ns']) / 1e9:.1f}"] for d in docs],
                    ["log", "source", "name", "frames", "dur_s"]))
    return 0


def cmd_mine(args: argparse.Namespace) -> int:
    from andon.scenarios.miners import mine_catalog

    with _catalog(args) as catalog:
        log_ids = [catalog.log_row(log)["log_id"] for log in args.log] or None
        counts = mine_catalog(catalog, names=args.miner or None, log_ids=log_ids)
    if args.json:
        emit_json({"windows": counts})
    else:
        print(table([[name, n] for name, n in counts.items()], ["miner", "windows"]))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from andon.scenarios.qa.catalog_qa import score_catalog

    query = _query_text(args)
    with _catalog(args) as catalog:
        scored = score_catalog(catalog, query)
    if args.json:
        emit_json({"query": query, "scored": scored})
    else:
        info(f"scored {scored} scenarios matching {query!r}; `andon scenarios show ID` lists what QA flagged")
    return 0


def cmd_override_qa(args: argparse.Namespace) -> int:
    if not 0.0 <= args.score <= 1.0:
        raise BadInput(f"--score {args.score} must lie in [0, 1]")
    with _catalog(args) as catalog:
        scenario = catalog.override_qa(args.scenario, args.score, args.reason, _curator(args))
    if args.json:
        emit_json(scenario.to_dict())
    else:
        info(f"{scenario.scenario_id}: QA {scenario.qa_score:.3f} ({scenario.provenance.note})")
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    with _catalog(args) as catalog:
        scenario = catalog.retire(args.scenario, args.reason)
    if args.json:
        emit_json(scenario.to_dict())
    else:
        info(f"retired {scenario.scenario_id}: {scenario.retired_reason}")
    return 0


def cmd_commit(args: argparse.Namespace) -> int:
    from andon.scenarios.snapshot import commit_catalog

    with _catalog(args) as catalog:
        result = commit_catalog(catalog, args.message, push=args.push)
    if args.json:
        emit_json(result)
    else:
        info(f"{'committed ' + result['commit'] if result['changed'] else 'nothing changed since the last commit'}"
             f"{' and pushed' if result['pushed'] else ''}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    scen = commands.add_parser("scenarios", help="add, tag, QA and search scenarios (fleet-data curator)",
                               description="The scenario catalog: logs and their tagged windows.",
                               allow_abbrev=False)
    sub = scen.add_subparsers(dest="scenarios_command", metavar="COMMAND")
    sub.required = True

    def command(name: str, func: Any, help_text: str, extras: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        from andon.cli import add_workspace_arg

        add_workspace_arg(p)
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        p.set_defaults(func=func, accepts_extras=extras)
        return p

    from andon.scenarios.importers import FORMATS

    p = command("import", cmd_import, "import real logs; each log also becomes one scenario tagged with its source")
    p.add_argument("format", choices=sorted(FORMATS), help="the source format")
    p.add_argument("path", help="file or directory of the source data")
    p.add_argument("--curator", help=f"who imports (default ${CURATOR_ENV}, else the user name)")

    p = command("add", cmd_add, "add a window of a log as a scenario, with tags")
    p.add_argument("--log", required=True, help="log id (or a unique prefix of 6+ characters)")
    p.add_argument("--start-s", type=float, required=True, help="window start, seconds from the log's start")
    p.add_argument("--end-s", type=float, required=True, help="window end, seconds from the log's start")
    p.add_argument("--tag", action="append", default=[], help="a tag (repeat for several)")
    p.add_argument("--curator", help=f"who adds it (default ${CURATOR_ENV}, else the user name)")
    p.add_argument("--note", help="why this window matters")

    p = command("tag", cmd_tag, "add (+TAG) or remove (-TAG) tags of a scenario", extras=True)
    p.add_argument("scenario", help="scenario id (or a unique prefix of 6+ characters)")
    p.add_argument("changes", nargs="*", help="+TAG to add, -TAG to remove")
    p.add_argument("--curator", help="who changes the tags")

    p = command("search", cmd_search, f"search scenarios; {QUERY_HELP}", extras=True)
    p.add_argument("terms", nargs="*", help="query terms, e.g. tag:intersection qa>=0.8 source:av2 -tag:night")
    p.add_argument("--limit", type=int, default=50, help="page size (default 50)")
    p.add_argument("--offset", type=int, default=0, help="skip this many matches")

    p = command("show", cmd_show, "show a scenario: window, tags, QA details, provenance")
    p.add_argument("scenario", help="scenario id (or a unique prefix of 6+ characters)")
    p.add_argument("--render", metavar="PNG", help="write a bird's-eye view (points, boxes, tracks) to PNG")
    p.add_argument("--at-s", type=float, default=None,
                   help="time of the rendered frame, seconds from the window's start (default: middle)")

    p = command("validate", cmd_validate, "check blobs and labels of the matching scenarios' logs; exit 1 on problems",
                extras=True)
    p.add_argument("terms", nargs="*", help="query terms selecting what to check (default: every active scenario)")

    command("stats", cmd_stats, "counts by source, tag and QA score")

    p = command("logs", cmd_logs, "list the logs in the catalog")
    p.add_argument("--source", help="only logs of this source")

    p = command("mine", cmd_mine, "run rule-based miners over logs and add the windows they tag")
    p.add_argument("--miner", action="append", default=[], help="a miner to run (repeat; default: all)")
    p.add_argument("--log", action="append", default=[], help="a log id to mine (repeat; default: every log)")

    p = command("score", cmd_score, "label-QA score the matching scenarios (curator overrides are kept)",
                extras=True)
    p.add_argument("terms", nargs="*", help="query terms selecting what to score (default: every active scenario)")

    p = command("override-qa", cmd_override_qa, "replace a scenario's QA score with a curator's, with a reason")
    p.add_argument("scenario", help="scenario id (or a unique prefix of 6+ characters)")
    p.add_argument("--score", type=float, required=True, help="the score, in [0, 1]")
    p.add_argument("--reason", required=True, help="why the computed score is wrong")
    p.add_argument("--curator", help=f"who overrides (default ${CURATOR_ENV}, else the user name)")

    p = command("retire", cmd_retire, "retire a scenario (it stays in the catalog, out of searches)")
    p.add_argument("scenario", help="scenario id (or a unique prefix of 6+ characters)")
    p.add_argument("--reason", required=True, help="why it is retired")

    p = command("commit", cmd_commit, "snapshot the catalog (deterministic export) and blobs with DVC, and git-commit")
    p.add_argument("-m", "--message", required=True, help="commit message")
    p.add_argument("--push", action="store_true", help="also `dvc push` to the workspace's remote")
