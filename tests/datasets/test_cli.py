"""`andon dataset build/list/show/diff`: the Hydra app through run_hydra_app, and the record commands."""

from __future__ import annotations

import json

import pytest

from andon.datasets.cli import BUILD_CONFIG, BUILD_PROG, build_task, hydra_argv
from andon.hydra_app import run_hydra_app
from tests.datasets.build_helpers import add_logs, make_agents_log

TEST_DATA = ["dataset=detection_synthetic", "dataset.query.sources=[test]", "dataset.split.train=1.0",
             "dataset.split.val=0", "dataset.split.test=0"]


@pytest.fixture
def filled(workspace):
    add_logs(workspace, [make_agents_log(f"cli{i}", seed=i, n_frames=20, classes=("vehicle", "pedestrian") * 4)
                         for i in range(4)])
    return workspace


def _run(andon_main, capsys, *args):
    capsys.readouterr()
    code = andon_main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_build_json_prints_exactly_the_contract_document(filled, andon_main, capsys):
    code, out, err = _run(andon_main, capsys, "dataset", "build", f"workspace={filled.root}", *TEST_DATA, "json=true")
    assert code == 0, err
    doc = json.loads(out)  # stdout holds one JSON document and nothing else
    assert doc["status"] == "accepted" and len(doc["dataset_id"]) == 20
    assert [c["name"] for c in doc["checks"]] == ["schema", "point_cloud_range", "splits", "exclusion", "drift"]
    for check in doc["checks"]:
        assert {"name", "passed", "blocking", "detail"} <= set(check)
        assert isinstance(check["passed"], bool) and isinstance(check["detail"], str)
    assert "accepted" in err and "schema" in err  # the human report goes to stderr
    code, out, err = _run(andon_main, capsys, "dataset", "build", f"workspace={filled.root}", *TEST_DATA, "json=true")
    again = json.loads(out)
    assert code == 0 and again["dataset_id"] == doc["dataset_id"] and again["built"] is False
    assert "nothing to do" in err


def test_run_hydra_app_directly(filled, capsys):
    code = run_hydra_app(build_task, BUILD_CONFIG, BUILD_PROG, [f"workspace={filled.root}", *TEST_DATA])
    out = capsys.readouterr()
    assert code == 0 and out.out == "" and "accepted" in out.err


@pytest.mark.parametrize(("override", "named"), [
    ("dataset.sampling.strid=2", "strid"),
    ("dataset=no_such_dataset", "no_such_dataset"),
    ("dataset.split.train=0.5", "sum to"),
    ("dataset.query.query=colour:red", "colour:red"),
])
def test_bad_input_exits_2_naming_the_value(filled, andon_main, capsys, override, named):
    code, out, err = _run(andon_main, capsys, "dataset", "build", f"workspace={filled.root}", *TEST_DATA, override)
    assert code == 2 and named in err and out == ""


def test_missing_workspace_exits_2(tmp_path, andon_main, capsys):
    code, _, err = _run(andon_main, capsys, "dataset", "build", f"workspace={tmp_path / 'none'}", *TEST_DATA)
    assert code == 2 and "andon init" in err


def test_rejected_build_exits_1_with_the_json_document(filled, andon_main, capsys):
    one_split = ["dataset=detection_synthetic", "dataset.query.sources=[test]", "dataset.split.train=0.0",
                 "dataset.split.val=0.0", "dataset.split.test=1.0"]
    code, out, _ = _run(andon_main, capsys, "dataset", "build", f"workspace={filled.root}", *one_split,
                        "dataset.sampling.point_cloud_range_m=[-1.2,-1.2,-3.0,1.2,1.2,3.0]", "json=true")
    doc = json.loads(out)
    assert code == 1 and doc["status"] == "rejected"
    failed = [c for c in doc["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["point_cloud_range"] and failed[0]["blocking"]
    code, out, err = _run(andon_main, capsys, "dataset", "build", f"workspace={filled.root}", *one_split,
                          "dataset.sampling.point_cloud_range_m=[-1.2,-1.2,-3.0,1.2,1.2,3.0]")
    assert code == 1 and out == "" and "REJECTED" in err and "point_cloud_range" in err


def test_help_and_cfg_go_to_hydra(filled, andon_main, capsys):
    code, out, _ = _run(andon_main, capsys, "dataset", "build", "--help")
    assert code == 0 and "andon dataset build" in out and "prediction_eth_ucy" in out and "Exit codes" in out
    code, out, _ = _run(andon_main, capsys, "dataset", "build", f"workspace={filled.root}", "dataset=prediction_eth_ucy",
                        "--cfg", "job")
    assert code == 0 and "history_steps: 8" in out and "horizon_steps: 12" in out


def test_multirun_sweeps_and_reports_the_worst_exit(filled, andon_main, capsys):
    code, _, err = _run(andon_main, capsys, "dataset", "build", "-m", f"workspace={filled.root}", *TEST_DATA,
                        "dataset.sampling.stride=1,2")
    assert code == 0 and err.count(": accepted") >= 2


def test_hydra_argv_moves_flags_first():
    assert hydra_argv(["a=1", "--cfg", "job", "b=2", "-m", "--info", "c=3"]) == [
        "--cfg", "job", "-m", "--info", "a=1", "b=2", "c=3"]
    assert hydra_argv(["--info", "defaults", "x=1"]) == ["--info", "defaults", "x=1"]


def test_list_show_diff(filled, andon_main, capsys):
    ws = ["--workspace", str(filled.root)]
    _run(andon_main, capsys, "dataset", "build", f"workspace={filled.root}", *TEST_DATA)
    _run(andon_main, capsys, "dataset", "build", f"workspace={filled.root}", *TEST_DATA, "dataset.sampling.stride=2")
    code, out, _ = _run(andon_main, capsys, "dataset", "list", *ws, "--json")
    listed = json.loads(out)
    assert code == 0 and [v["status"] for v in listed] == ["accepted", "accepted"]
    first, second = listed[0]["dataset_id"], listed[1]["dataset_id"]
    assert listed[1]["derived_from"] == first
    code, out, _ = _run(andon_main, capsys, "dataset", "list", *ws, "--name", "other", "--json")
    assert code == 0 and json.loads(out) == []
    code, out, err = _run(andon_main, capsys, "dataset", "list", *ws)
    assert code == 0 and first in out and "2 versions" in err

    code, out, _ = _run(andon_main, capsys, "dataset", "show", first[:6], *ws, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["dataset_id"] == first and shown["checks"][0]["name"] == "schema"
    assert shown["histograms"]["range_m"]["n"] > 0 and shown["statistics"]["classes"]["vehicle"] > 0
    code, out, _ = _run(andon_main, capsys, "dataset", "show", "detection_synthetic", *ws)
    assert code == 0 and second in out and "PASS" in out and "range_m" in out

    code, out, _ = _run(andon_main, capsys, "dataset", "diff", first, second, *ws, "--json")
    diff = json.loads(out)
    assert code == 0 and diff["samples"]["train"]["delta"] < 0 and diff["counts"]["added"] == 0
    code, out, _ = _run(andon_main, capsys, "dataset", "diff", first, second, *ws)
    assert code == 0 and "+0 -0 scenarios" in out

    code, _, err = _run(andon_main, capsys, "dataset", "show", "zzzz-missing", *ws)
    assert code == 2 and "zzzz-missing" in err
