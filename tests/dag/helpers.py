"""Helpers of the DAG tests: config folders with tiny model configs, DAG files, the CLI parser, a template
workspace holding a built dataset and an initialised MLflow store."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from andon.errors import AndonError

RUNNER = "tests.dag.runners:register_artifact"
DATASET = "tiny_det"


def dataset_spec() -> Any:
    """The tiny detection dataset's spec (drift is not blocking: a test adds a log and rebuilds)."""
    from tests.datasets.build_helpers import make_spec

    return make_spec(name=DATASET, task="detection", validation={"blocking": {"drift": False}})


def write_config_dir(root: Path, models: Mapping[str, Mapping[str, Any]],
                     dags: Mapping[str, Mapping[str, Any]] = {}) -> Path:  # noqa: B006 (read only)
    """A config folder: model/<name>.yaml per model config, dag/<name>.yaml per DAG."""
    (root / "model").mkdir(parents=True, exist_ok=True)
    (root / "dag").mkdir(parents=True, exist_ok=True)
    for name, doc in models.items():
        (root / "model" / f"{name}.yaml").write_text(yaml.safe_dump(dict(doc), sort_keys=False))
    for name, doc in dags.items():
        write_dag(root, name, doc)
    return root


def write_dag(root: Path, name: str, doc: Mapping[str, Any]) -> Path:
    path = root / "dag" / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"defaults": ["base_dag", "_self_"], "name": name, **doc}, sort_keys=False))
    return path


def tiny_models(target: str = "andon.ids.hash_json") -> dict[str, dict[str, Any]]:
    """Model configs for train and fixed nodes; `_target_` names the module whose code the node hashes."""
    return {name: {"_target_": target, "name": name, "width": 4} for name in ("tiny_a", "tiny_b", "tiny_c")}


def node(kind: str = "train", model: str = "tiny_a", upstream: Sequence[str] = (), **more: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"kind": kind, "model": model, "upstream": list(upstream), "runner": RUNNER,
                           "resources": {"num_cpus": 1}}
    if kind == "train":
        doc["datasets"] = [DATASET]
    doc.update(more)
    return doc


def diamond() -> dict[str, Any]:
    """a (train) -> c (train) -> e (fixed) <- d (train) <- b (fixed)."""
    return {"nodes": {
        "a": node("train", "tiny_a", suites=["suite_a"], gates=["gate_a"]),
        "b": node("fixed", "tiny_b", suites=["suite_b"]),
        "c": node("train", "tiny_c", ["a"], suites=["suite_c"], gates=["gate_c"]),
        "d": node("train", "tiny_a", ["b"]),
        "e": node("fixed", "tiny_b", ["c", "d"], gates=["gate_e"]),
    }}


def copy_workspace(template: Path, dest: Path) -> Any:
    from andon.workspace import Workspace

    shutil.copytree(template, dest, symlinks=True)
    return Workspace.open(dest)


def parser() -> argparse.ArgumentParser:
    """An `andon`-like parser with only `andon dag` registered (andon/cli.py wires it for real)."""
    from andon.dag.cli import register

    top = argparse.ArgumentParser(prog="andon", allow_abbrev=False)
    commands = top.add_subparsers(dest="command")
    commands.required = True
    register(commands)
    return top


def run_cli(argv: Sequence[str]) -> int:
    """Run `andon ARGV` through the parser, mapping andon's errors to their exit codes like andon.cli."""
    args, extras = parser().parse_known_args(list(argv))
    if extras and not getattr(args, "accepts_extras", False):
        raise SystemExit(f"unrecognized arguments: {extras}")
    args.extras = extras
    try:
        return int(args.func(args) or 0)
    except AndonError as exc:
        print(f"andon: error: {exc}", file=sys.stderr)
        return exc.exit_code


def cli_json(argv: Sequence[str]) -> tuple[int, Any]:
    """(exit code, the JSON document printed on stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_cli(argv)
    text = out.getvalue()
    return code, (json.loads(text) if text.strip() else None)


if __name__ == "__main__":
    raise SystemExit(run_cli(sys.argv[1:]))


def statuses(workspace: Any, config_dir: Path, dag: str = "test") -> dict[str, Any]:
    """{node: NodeStatus} of the DAG config `dag` in `config_dir`."""
    from andon.dag.context import open_dag
    from andon.dag.status import dag_status

    with open_dag(dag, str(workspace.root), [str(config_dir)]) as ctx:
        return {s.node: s for s in dag_status(ctx.dag, ctx.fingerprinter, ctx.lineage)}


def run_dag(workspace: Any, config_dir: Path, dag: str = "test", targets: Sequence[str] | None = None,
            worker: Any = None) -> Any:
    """Run the executor in-process (sequential worker unless one is given); returns its RunSummary."""
    from andon.dag.context import open_dag
    from andon.dag.executor import Executor
    from andon.dag.workers import SequentialWorker

    with open_dag(dag, str(workspace.root), [str(config_dir)]) as ctx:
        executor = Executor(ctx.dag, ctx.workspace, ctx.fingerprinter, ctx.lineage, worker or SequentialWorker())
        return executor.run(list(targets) if targets else None)


def make_package(root: Path, files: Mapping[str, str]) -> str:
    """A package under `root` (put `root` on sys.path) with a unique name; `files` by path inside it.

    The name is unique per call: importlib remembers packages by name for the whole test session.
    """
    import importlib
    import uuid

    name = f"dagpkg_{uuid.uuid4().hex[:10]}"
    for relative, text in {"__init__.py": "", **files}.items():
        path = root / name / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("PKG", name))
    importlib.invalidate_caches()
    return name
