"""`andon dataset ...`: build (a Hydra app), list, show and diff dataset versions.

`build` takes Hydra overrides (`dataset=NAME`, `dataset.sampling.stride=2`, `-m`, `--cfg job`,
`--help`); `--json` cannot be an argparse flag there, so the config key `json=true` prints the build
document on stdout instead. The other commands are plain argparse with `--json`.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from omegaconf import DictConfig

from andon.errors import EXIT_CHECK_FAILED, EXIT_OK
from andon.output import emit_json, info, table

BUILD_CONFIG = "dataset_build"
BUILD_PROG = "andon dataset build"


def build_task(cfg: DictConfig) -> int:
    """The Hydra task of `andon dataset build`: 0 accepted, 1 rejected."""
    from andon.datasets.build import build_dataset
    from andon.datasets.spec import spec_from_config
    from andon.workspace import Workspace

    logging.getLogger("andon").setLevel(logging.INFO)
    workspace = Workspace.open(cfg.workspace)
    spec = spec_from_config(cfg.dataset)
    doc = build_dataset(workspace, spec, progress=True)
    if cfg.json:
        emit_json(doc)
    _report_build(doc)
    return EXIT_OK if doc["status"] == "accepted" else EXIT_CHECK_FAILED


def _report_build(doc: dict[str, Any]) -> None:
    """The human report, on stderr (stdout is reserved for json=true)."""
    rows = [["PASS" if c["passed"] else ("FAIL" if c["blocking"] else "warn"), c["name"], c["detail"]]
            for c in doc["checks"]]
    info(table(rows, ["result", "check", "detail"]))
    samples = ", ".join(f"{k} {v}" for k, v in doc["samples"].items())
    info(f"{doc['message']}  [{samples}]")
    if doc["status"] != "accepted":
        info(f"REJECTED: the line stops. {len(doc['reasons'])} blocking check(s) failed:")
        for reason in doc["reasons"]:
            info(f"  - {reason}")
        info(f"The version is stored as rejected at {doc['path']}; it never becomes the latest accepted version.")


def run_build(tokens: list[str]) -> int:
    from andon.hydra_app import run_hydra_app

    return run_hydra_app(build_task, BUILD_CONFIG, BUILD_PROG, hydra_argv(tokens))


def hydra_argv(tokens: list[str]) -> list[str]:
    """Hydra's flags (with their values) first, then the overrides.

    Hydra's own parser refuses overrides on both sides of a flag (`dataset=x --cfg job y=1`); users
    write flags anywhere, so they are moved to the front, keeping every token's relative order.
    """
    flags: list[str] = []
    overrides: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("-"):
            flags.append(token)
            takes_value = token in _HYDRA_VALUE_FLAGS or (token in ("--info", "-i") and i + 1 < len(tokens)
                                                         and tokens[i + 1] in _HYDRA_INFO_CHOICES)
            if takes_value and i + 1 < len(tokens):
                flags.append(tokens[i + 1])
                i += 1
        else:
            overrides.append(token)
        i += 1
    return [*flags, *overrides]


_HYDRA_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                      "--config-dir", "-cd", "--experimental-rerun"}
_HYDRA_INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def cmd_list(args: argparse.Namespace) -> int:
    from andon.datasets.versions import list_versions
    from andon.workspace import Workspace

    versions = list_versions(Workspace.open(args.workspace), args.name)
    if args.json:
        emit_json([v.to_dict() for v in versions])
        return EXIT_OK
    rows = [[v.dataset_id, v.name, v.task, v.status, v.created[:19], *v.sample_counts().values(),
             v.derived_from or "-"] for v in versions]
    print(table(rows, ["dataset", "name", "task", "status", "created", "train", "val", "test", "derived_from"]))
    info(f"{len(versions)} versions")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from andon.datasets.statistics import histogram_summary
    from andon.datasets.versions import load_version
    from andon.workspace import Workspace

    version = load_version(Workspace.open(args.workspace), args.ref)
    stats = version.statistics
    summary = {name: histogram_summary(h) for name, h in stats["histograms"].items()}
    if args.json:
        emit_json({**version.to_dict(), "spec": version.spec, "checks": version.checks,
                   "statistics": {k: v for k, v in stats.items() if k != "histograms"}, "histograms": summary})
        return EXIT_OK
    print(f"dataset    {version.dataset_id}  {version.name} ({version.task})  {version.status.upper()}")
    print(f"created    {version.created}  derived_from {version.derived_from or '-'}")
    print(f"transform  {version.transform.get('name')}  code {version.transform.get('code_hash') or '-'}")
    print(f"samples    {', '.join(f'{k} {v}' for k, v in version.sample_counts().items())}  "
          f"({stats['frames']} frames)")
    if version.pinned_test_sha256:
        print(f"pinned     test set sha256 {version.pinned_test_sha256}")
    for reason in version.reasons:
        print(f"rejected   {reason}")
    print(table([["PASS" if c["passed"] else ("FAIL" if c["blocking"] else "warn"), c["name"],
                  "yes" if c["blocking"] else "no", c["detail"]] for c in version.checks],
                ["result", "check", "blocking", "detail"]))
    print(table([[cls, n, *(stats["classes_by_split"][s].get(cls, 0) for s in ("train", "val", "test"))]
                 for cls, n in stats["classes"].items()], ["class", "boxes", "train", "val", "test"]))
    print(table([[name, s["n"], _num(s["p50"]), _num(s["p90"])] for name, s in summary.items()],
                ["histogram", "n", "p50", "p90"]))
    if stats["tags"]:
        print(table([[tag, n] for tag, n in sorted(stats["tags"].items(), key=lambda kv: (-kv[1], kv[0]))],
                    ["tag", "scenarios"]))
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from andon.datasets.versions import diff_versions, load_version
    from andon.workspace import Workspace

    workspace = Workspace.open(args.workspace)
    diff = diff_versions(load_version(workspace, args.a), load_version(workspace, args.b))
    if args.json:
        emit_json(diff)
        return EXIT_OK
    counts = diff["counts"]
    print(f"{diff['a']} -> {diff['b']}: +{counts['added']} -{counts['removed']} scenarios, "
          f"{counts['relabelled']} relabelled ({counts['qa_changed']} with a new QA score)")
    for kind in ("added", "removed"):
        shown = diff["scenarios"][kind][:10]
        if shown:
            more = len(diff["scenarios"][kind]) - len(shown)
            print(f"{kind:9s}  {' '.join(shown)}{f' (+{more} more)' if more else ''}")
    for change in diff["scenarios"]["relabelled"][:10]:
        print(f"relabelled {change['scenario_id']}  +{change['tags_added']} -{change['tags_removed']}  "
              f"qa {change['qa_before']} -> {change['qa_after']}")
    for key, title in (("samples", "split"), ("classes", "class"), ("tags", "tag")):
        if diff[key]:
            print(table([[k, v["before"], v["after"], f"{v['delta']:+d}"] for k, v in diff[key].items()],
                        [title, "before", "after", "delta"]))
    print(table([[name, _num(value)] for name, value in diff["drift_psi"].items()], ["distribution", "psi"]))
    return EXIT_OK


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def register(commands: argparse._SubParsersAction) -> None:
    """Add `andon dataset {build,list,show,diff}` to the `andon` parser."""
    from andon.cli import add_workspace_arg
    from andon.hydra_app import add_hydra_command

    top = commands.add_parser("dataset", help="build, list, show and diff dataset versions (researcher)",
                              description="Versioned, validated datasets built from catalog queries.",
                              allow_abbrev=False)
    sub = top.add_subparsers(dest="dataset_command", metavar="COMMAND")
    sub.required = True

    add_hydra_command(sub, "build", "build a dataset version (Hydra app: dataset=NAME overrides..., --help for more)",
                      "Hydra overrides, e.g. dataset=prediction_eth_ucy json=true; -m, --cfg job, --help", run_build)

    def command(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        add_workspace_arg(p)
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        p.set_defaults(func=func, accepts_extras=False)
        return p

    p = command("list", cmd_list, "list dataset versions (oldest first per name)")
    p.add_argument("--name", help="only versions of this dataset name")

    p = command("show", cmd_show, "show a version: checks with details, statistics summary")
    p.add_argument("ref", help="dataset id, unique id prefix (4+ characters), or name (= its latest accepted version)")

    p = command("diff", cmd_diff, "what changed between two versions: scenarios, relabels, tag/class counts, drift")
    p.add_argument("a", help="the older version (id, prefix or name)")
    p.add_argument("b", help="the newer version (id, prefix or name)")

