"""`andon dag status|plan|why|run` through a parser built with register(): JSON contracts, tables, exit codes."""

from __future__ import annotations

import contextlib
import io

import pytest

from andon.dag.cli import run_overrides, split_nodes
from andon.errors import BadInput
from tests.dag.helpers import cli_json, diamond, run_cli, run_dag, write_dag


def _args(dag_ws, cfg_dir, *command):
    return ["dag", *command, "--dag", "test", "--config-dir", str(cfg_dir), "--workspace", str(dag_ws.root)]


def test_status_json_is_the_contract(dag_ws, cfg_dir):
    doc = diamond()
    write_dag(cfg_dir, "test", doc)
    run_dag(dag_ws, cfg_dir, targets=["a"])
    code, status = cli_json(_args(dag_ws, cfg_dir, "status", "--json"))
    assert code == 0 and set(status) == {"dag", "nodes"}
    assert [n["node"] for n in status["nodes"]] == ["a", "b", "c", "d", "e"]
    for entry in status["nodes"]:
        assert {"node", "state", "reasons", "fingerprint", "model_version"} <= set(entry)
        assert entry["state"] in ("fresh", "stale", "missing")
        assert isinstance(entry["reasons"], list) and all(isinstance(r, str) for r in entry["reasons"])
        assert isinstance(entry["fingerprint"], str) and len(entry["fingerprint"]) == 64
        assert entry["model_version"] is None or isinstance(entry["model_version"], str)
    a, b = status["nodes"][0], status["nodes"][1]
    assert (a["state"], a["model_version"], a["reasons"]) == ("fresh", "1", [])
    assert (b["state"], b["model_version"], b["reasons"]) == ("missing", None, ["no version of b in the registry"])
    assert run_cli(_args(dag_ws, cfg_dir, "status", "--check")) == 1  # not everything is fresh


def test_status_table_by_default(dag_ws, cfg_dir, capsys):
    write_dag(cfg_dir, "test", diamond())
    assert run_cli(_args(dag_ws, cfg_dir, "status")) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].split() == ["node", "kind", "state", "version", "fingerprint", "reasons"]
    assert "MISSING" in out and "no version of e in the registry" in out
    assert "0 fresh, 5 to run" in err


def test_plan_json_with_a_change_needs_no_workspace(cfg_dir, tmp_path):
    write_dag(cfg_dir, "test", diamond())
    code, plan = cli_json(["dag", "plan", "--dag", "test", "--config-dir", str(cfg_dir), "--workspace",
                           str(tmp_path / "none"), "--change", "b", "--json"])
    assert code == 0
    assert plan["order"] == ["b", "d", "e"] and plan["waves"] == [["b"], ["d"], ["e"]]
    assert plan["suites"] == ["suite_b"] and plan["gates"] == ["gate_e"]
    assert {n["node"]: n["action"] for n in plan["nodes"]} == {"a": "keep", "b": "run", "c": "keep", "d": "run",
                                                               "e": "run"}
    code, _ = cli_json(["dag", "plan", "--dag", "test", "--config-dir", str(cfg_dir), "--change", "zz", "--json"])
    assert code == 2


def test_plan_without_changes_follows_status(dag_ws, cfg_dir, capsys):
    write_dag(cfg_dir, "test", diamond())
    run_dag(dag_ws, cfg_dir, targets=["c"])
    code, plan = cli_json(_args(dag_ws, cfg_dir, "plan", "--json"))
    assert code == 0 and plan["changes"] == [] and plan["order"] == ["b", "d", "e"]
    assert plan["waves"] == [["b"], ["d"], ["e"]]
    assert run_cli(_args(dag_ws, cfg_dir, "plan")) == 0
    out = capsys.readouterr().out
    assert "wave 0: b" in out and "gates to re-run:  gate_e" in out


def test_why_explains_components_and_config_changes(dag_ws, cfg_dir, capsys):
    doc = diamond()
    write_dag(cfg_dir, "test", doc)
    run_dag(dag_ws, cfg_dir, targets=["a"])
    doc["nodes"]["a"]["overrides"] = ["seed=11", "optimizer.lr=0.01"]
    write_dag(cfg_dir, "test", doc)
    code, why = cli_json(_args(dag_ws, cfg_dir, "why", "a", "--json"))
    assert code == 0
    assert (why["node"], why["state"], why["compared_with"]) == ("a", "stale", "1")
    assert why["reasons"] == ["config changed"]
    assert {c["key"]: (c["before"], c["after"]) for c in why["config_changes"]} == {
        "seed": (0, 11), "optimizer.lr": (0.002, 0.01)}
    changed = [c["component"] for c in why["components"] if c["changed"]]
    assert changed == ["config"]
    assert any(c["component"] == "dataset tiny_det" for c in why["components"])
    assert run_cli(_args(dag_ws, cfg_dir, "why", "a")) == 0
    out = capsys.readouterr().out
    assert "a (train): STALE" in out and "changed since version 1:" in out and "config seed: 0 -> 11" in out
    assert run_cli(_args(dag_ws, cfg_dir, "why", "zz")) == 2


def test_bad_dag_and_missing_inputs_exit_2(dag_ws, cfg_dir):
    write_dag(cfg_dir, "test", {"nodes": {"a": {"kind": "fixed", "model": "no_such_model"}}})
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert run_cli(_args(dag_ws, cfg_dir, "status", "--json")) == 2
    assert "node 'a': unknown model config 'no_such_model'" in err.getvalue()
    write_dag(cfg_dir, "test", {"nodes": {"a": {"kind": "fixed", "model": "tiny_a", "upstream": ["a"]}}})
    assert run_cli(_args(dag_ws, cfg_dir, "status")) == 2


def test_run_arguments_split_into_nodes_and_hydra_overrides():
    assert split_nodes(["predictor", "worker=ray", "--cfg", "job", "detector", "-m"]) == (
        ["predictor", "detector"], ["worker=ray", "--cfg", "job", "-m"])
    assert run_overrides(["predictor", "ray.num_cpus=2", "--cfg", "job"]) == [
        "--cfg", "job", "ray.num_cpus=2", "nodes=[predictor]"]
    with pytest.raises(BadInput, match="neither a node name nor a Hydra override"):
        run_overrides(["pred/ictor"])


def test_run_config_composes_with_each_worker(tmp_path):
    from hydra.utils import instantiate

    from andon.dag.configs import ConfigSession
    from andon.dag.workers import RayWorker, SequentialWorker

    with ConfigSession() as session:
        ray_cfg = session.compose_config("dag_run", ["ray.num_cpus=2", "ray.address=auto"])
        worker = instantiate(ray_cfg.worker)
        assert isinstance(worker, RayWorker) and (worker.num_cpus, worker.address) == (2, "auto")
        assert isinstance(instantiate(session.compose_config("dag_run", ["worker=sequential"]).worker),
                          SequentialWorker)
        assert session.compose("dag_run", [])["dag"]["name"] == "default"
        with pytest.raises(BadInput, match="does not compose"):
            session.compose_config("dag_run", ["ray.num_cpu=2"])
