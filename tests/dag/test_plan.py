"""Impact analysis: what a change makes run, in which order and waves, and which suites and gates re-run."""

from __future__ import annotations

import pytest

from andon.dag.configs import ConfigSession, load_dag
from andon.dag.fingerprint import Fingerprinter
from andon.dag.plan import Plan, make_plan, seeds_from_changes
from andon.errors import BadInput
from tests.dag.helpers import diamond, make_package, node, run_dag, statuses, write_dag


@pytest.fixture
def dag(cfg_dir):
    write_dag(cfg_dir, "test", diamond())
    with ConfigSession([str(cfg_dir)]) as session:
        yield load_dag(session, "test"), Fingerprinter(load_dag(session, "test"), None, session)


def test_a_changed_node_runs_with_its_descendants_in_waves(dag):
    dag, _ = dag
    plan = make_plan(dag, seeds_from_changes(dag, ["a"]), ["a"])
    assert plan.order == ("a", "c", "e")
    assert plan.waves == (("a",), ("c",), ("e",))
    assert plan.suites == ("suite_a", "suite_c") and plan.gates == ("gate_a", "gate_c", "gate_e")
    actions = {n.node: (n.action, n.wave, n.why) for n in plan.nodes}
    assert actions["a"] == ("run", 0, ("changed",))
    assert actions["e"] == ("run", 2, ("upstream c runs",))
    assert actions["b"] == ("keep", None, ())
    assert Plan.from_dict(plan.to_dict()) == plan


def test_independent_changes_share_waves(dag):
    dag, _ = dag
    plan = make_plan(dag, seeds_from_changes(dag, ["a", "b"]), ["a", "b"])
    assert plan.waves == (("a", "b"), ("c", "d"), ("e",))
    assert plan.suites == ("suite_a", "suite_b", "suite_c")


def test_unknown_nodes_and_modules_are_bad_input(dag):
    dag, fingerprinter = dag
    with pytest.raises(BadInput, match="no node 'x' in DAG 'test': choose one of a, b, c, d, e"):
        seeds_from_changes(dag, ["x"])
    with pytest.raises(BadInput, match="no module andon.nope and no node imports one under it"):
        seeds_from_changes(dag, ["code:andon.nope"], fingerprinter.closure,
                           lambda m: fingerprinter.sources.path(m) is not None)


def test_a_code_change_runs_the_nodes_that_import_the_module(cfg_dir, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    pkg = make_package(tmp_path, {"det.py": "from PKG import common\n", "pred.py": "X = 1\n",
                                  "common.py": "Y = 2\n", "lonely.py": "Z = 3\n"})
    write_dag(cfg_dir, "test", {"code_packages": ["andon", pkg], "nodes": {
        "det": node("fixed", "tiny_a", code=[f"{pkg}.det"], suites=["perception"]),
        "trk": node("fixed", "tiny_b", ["det"], gates=["tracking"]),
        "pred": node("fixed", "tiny_c", code=[f"{pkg}.pred"], gates=["prediction"]),
    }})
    with ConfigSession([str(cfg_dir)]) as session:
        dag = load_dag(session, "test")
        fingerprinter = Fingerprinter(dag, None, session)

        def plan(change):
            seeds = seeds_from_changes(dag, [change], fingerprinter.closure,
                                       lambda m: fingerprinter.sources.path(m) is not None)
            return make_plan(dag, seeds, [change])

        deep = plan(f"code:{pkg}.common")  # imported by det only, through det's module
        assert deep.order == ("det", "trk") and deep.gates == ("tracking",) and deep.suites == ("perception",)
        assert deep.nodes[0].why == (f"code of {pkg}.common changed",)
        assert plan(f"code:{pkg}").order == ("det", "trk", "pred")  # a package prefix: every module under it
        assert plan(f"code:{pkg}.lonely").order == ()  # exists, imported by nobody: nothing runs
        assert plan("code:andon.ids").order == ("det", "trk", "pred")  # the tiny models' _target_ module


def test_without_changes_the_plan_starts_from_what_is_stale(dag_ws, cfg_dir):
    from andon.dag.context import open_dag
    from andon.dag.status import dag_status

    doc = diamond()
    write_dag(cfg_dir, "test", doc)
    run_dag(dag_ws, cfg_dir)
    doc["nodes"]["d"]["overrides"] = ["seed=5"]
    write_dag(cfg_dir, "test", doc)
    assert statuses(dag_ws, cfg_dir)["d"].state == "stale"
    with open_dag("test", str(dag_ws.root), [str(cfg_dir)]) as ctx:
        found = dag_status(ctx.dag, ctx.fingerprinter, ctx.lineage)
        seeds = {s.node: list(s.reasons) for s in found if s.state != "fresh"}
        plan = make_plan(ctx.dag, seeds, states={s.node: s.state for s in found})
    assert plan.order == ("d", "e") and plan.waves == (("d",), ("e",))
    assert {n.node: n.state for n in plan.nodes} == {"a": "fresh", "b": "fresh", "c": "fresh", "d": "stale",
                                                     "e": "stale"}
    assert plan.nodes[3].why == ("config changed",)
