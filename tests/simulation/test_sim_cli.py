"""`andon sim run/show/list` through the CLI: a small synthetic fleet with stand-in models, exit codes, JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from andon.errors import BadInput
from andon.simulation.sim_cli import run_overrides
from tests.helpers import andon_json, run_andon

run_cli, cli_json = run_andon, andon_json  # the real `andon` entry point: `sim` is wired in andon/cli.py


# ----- the friendly flags ------------------------------------------------------------------------------
def test_friendly_flags_become_overrides():
    argv = run_overrides(["--model", "detector@candidate", "replay.mode=open_loop", "--model=predictor@3",
                          "--scenarios", "tag:cut_in -tag:night", "--json", "--cfg", "job", "--workspace", "/w s"])
    assert argv == ["--cfg", "job", "replay.mode=open_loop", "models=['detector@candidate','predictor@3']",
                    "scenarios='tag:cut_in -tag:night'", "json=true", "workspace='/w s'"]
    assert run_overrides(["--scenarios", "tag:it's"]) == ["scenarios='tag:it\\'s'"]


@pytest.mark.parametrize("tokens,message", [
    (["--model"], "--model needs a value"),
    (["--scenarios", "--json"], "--scenarios needs a value"),
    (["--scenarios", "a", "--scenarios", "b"], "given twice"),
    (["--json=1"], "takes no value"),
    (["--model", "a@b", "models=[c@d]"], "both as a flag and as an override"),
])
def test_bad_friendly_flags_are_bad_input(tokens, message):
    with pytest.raises(BadInput, match=message):
        run_overrides(tokens)


# ----- runs over a small synthetic fleet (stand-in models: oracle detector, constant velocity) -----------
@pytest.fixture(scope="module", autouse=True)
def sim_schema():
    """The `sim_schema` registered even before andon.config_schemas imports andon.simulation.sim_config."""
    from andon.hydra_app import register_configs
    from andon.simulation import sim_config

    register_configs()
    sim_config._register()


@pytest.fixture(scope="module")
def fleet_template(_workspace_template, tmp_path_factory):
    from tests.simulation._sim_fleet import make_fleet_template

    return make_fleet_template(_workspace_template, tmp_path_factory.mktemp("sim_cli") / "ws")


@pytest.fixture
def fleet_ws(fleet_template, tmp_path):
    from andon.simulation.runner import clear_stack_cache
    from tests.simulation._sim_fleet import copy_fleet

    clear_stack_cache()
    yield copy_fleet(fleet_template, tmp_path / "ws")
    clear_stack_cache()


def sim_run(workspace, *more: str) -> list[str]:
    from tests.simulation._sim_fleet import EVENTFUL

    return ["sim", "run", "--workspace", str(workspace.root), "worker=sequential", "progress=false", *EVENTFUL, *more]


def test_sim_run_json_reuse_rerun_show_and_list(fleet_ws):
    code, doc = cli_json(sim_run(fleet_ws, "--json"))
    assert code == 0, doc
    assert {"km", "disengagements", "km_per_disengagement", "interval", "collisions", "events", "sim_id",
            "result_path"} <= set(doc)
    assert doc["km"] > 0 and doc["disengagements"] == len(doc["events"]) > 0 and len(doc["interval"]) == 2
    assert doc["km_per_disengagement"] == pytest.approx(doc["km"] / doc["disengagements"])
    assert doc["stack"] == {"detector": "oracle", "tracker": "default", "predictor": "constant_velocity",
                            "planner": "default"}
    assert len(doc["scenario_ids"]) == 4 and doc["errors"] == [] and doc["reused"] is False
    assert set(doc["per_tag"]) == {"cut_in", "synthetic"} and doc["per_tag"]["cut_in"]["scenarios"] == 2
    result_dir = Path(doc["result_path"]).parent
    assert result_dir == fleet_ws.root / "simulations" / doc["sim_id"]
    for event in doc["events"]:
        assert {"scenario_id", "time_ns", "cause"} <= set(event)
        assert (result_dir / event["picture"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = Path(doc["result_path"]).read_bytes()

    code, again = cli_json(sim_run(fleet_ws, "--json"))
    assert code == 0 and again["reused"] is True and again["sim_id"] == doc["sim_id"]
    assert {k: v for k, v in again.items() if k != "reused"} == {k: v for k, v in doc.items() if k != "reused"}

    code, rerun = cli_json(sim_run(fleet_ws, "--json", "rerun=true"))
    assert code == 0 and rerun["reused"] is False
    assert Path(rerun["result_path"]).read_bytes() == stored  # deterministic: the same bytes

    code, open_loop = cli_json(sim_run(fleet_ws, "--json", "replay.mode=open_loop", "--scenarios", "tag:cut_in"))
    assert code == 0 and open_loop["sim_id"] != doc["sim_id"] and open_loop["mode"] == "open_loop"
    assert len(open_loop["scenario_ids"]) == 2 and open_loop["collisions"] == 0

    code, shown = cli_json(["sim", "show", doc["sim_id"][:8], "--workspace", str(fleet_ws.root), "--json"])
    assert code == 0 and shown["sim_id"] == doc["sim_id"] and shown["events"] == doc["events"]
    code, listed = cli_json(["sim", "list", "--workspace", str(fleet_ws.root), "--json"])
    assert code == 0 and sorted(e["sim_id"] for e in listed) == sorted([doc["sim_id"], open_loop["sim_id"]])
    assert all({"sim_id", "km", "disengagements", "errors", "result_path"} <= set(e) for e in listed)


def test_human_output_goes_to_stderr(fleet_ws, capsys):
    assert run_cli(sim_run(fleet_ws, "max_scenarios=2")) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "km/disengagement" in err and "(all)" in err and "first 2 of 4" in err and "result:" in err


def test_a_query_that_matches_nothing_is_bad_input(fleet_ws, capsys):
    code, doc = cli_json(sim_run(fleet_ws, "--json", "--scenarios", "tag:no_such_tag"))
    assert code == 2 and doc is None
    assert "no scenario matches the query 'tag:no_such_tag'" in capsys.readouterr().err


@pytest.mark.parametrize("more,message", [
    (["no_such_key=1"], "no_such_key"),
    (["replay.mode=sideways"], "sideways"),
    (["--model", "detector"], "NAME@ALIAS"),
    (["confidence=1.5"], "confidence"),
])
def test_bad_input_exits_2(fleet_ws, capsys, more, message):
    assert run_cli(sim_run(fleet_ws, *more)) == 2
    assert message in capsys.readouterr().err


def test_a_scenario_that_raises_fails_the_run_closed(fleet_ws, monkeypatch):
    from andon.scenarios.catalog import Catalog
    from andon.simulation import replay

    real = replay.replay_scenario
    with Catalog(fleet_ws) as catalog:
        bad = catalog.search("")[2].scenario_id

    def flaky(log, scenario, stack, config):
        if scenario.scenario_id == bad:
            raise RuntimeError("replay exploded")
        return real(log, scenario, stack, config)

    monkeypatch.setattr(replay, "replay_scenario", flaky)
    code, doc = cli_json(sim_run(fleet_ws, "--json"))
    assert code == 1
    assert doc["errors"] == [{"scenario_id": bad, "message": "RuntimeError: replay exploded"}]
    assert bad not in {s["scenario_id"] for s in doc["scenarios"]} and len(doc["scenarios"]) == 3
    monkeypatch.setattr(replay, "replay_scenario", real)
    code, fixed = cli_json(sim_run(fleet_ws, "--json"))  # a stored result with errors is replayed, not reused
    assert code == 0 and fixed["errors"] == [] and fixed["reused"] is False and fixed["sim_id"] == doc["sim_id"]
