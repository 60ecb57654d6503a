"""`andon fleet synth`: synthesises into a workspace, is idempotent, and refuses bad values."""

from __future__ import annotations

import argparse
import json

import pytest

from andon.errors import BadInput
from andon.scenarios import Catalog
from andon.simulation.cli import register


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="andon")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_synth_twice_is_a_noop_and_json_is_one_document(workspace, capsys):
    common = ("fleet", "synth", "--logs", "2", "--seed", "5", "--duration-s", "1", "--no-lidar",
              "--workspace", str(workspace.root), "--json")
    assert run(*common) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["seed"] == 5 and first["created"] == 2 and len(first["logs"]) == 2
    assert sorted(first["logs"]) == Catalog(workspace).logs(source="synthetic")
    assert run(*common) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["logs"] == first["logs"] and second["created"] == 0


def test_options_reach_the_logs(workspace, capsys):
    assert run("fleet", "synth", "--logs", "1", "--seed", "2", "--duration-s", "0.5", "--no-lidar",
               "--label-error-rate", "0", "--night-rate", "1", "--workspace", str(workspace.root), "--json") == 0
    (log_id,) = json.loads(capsys.readouterr().out)["logs"]
    log = Catalog(workspace).log(log_id)
    assert log.meta["conditions"]["night"] is True and log.meta["ground_truth"]["label_errors"] == []
    assert log.frames[0].points is None


@pytest.mark.parametrize(("flag", "value"), [("--logs", "-1"), ("--logs", "0"), ("--seed", "-3"),
                                             ("--label-error-rate", "1.5"), ("--night-rate", "-0.1"),
                                             ("--rain-rate", "nan"), ("--duration-s", "0"), ("--lidar-every", "0")])
def test_bad_values_are_bad_input_naming_the_value(workspace, flag, value):
    argv = {"--logs": "1", "--seed": "0", "--duration-s": "1"}
    argv[flag] = value
    flat = [x for pair in argv.items() for x in pair]
    with pytest.raises(BadInput, match=f"{flag} {value}"):
        run("fleet", "synth", *flat, "--no-lidar", "--workspace", str(workspace.root))


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit):
        run("fleet", "synth", "--help")
    text = capsys.readouterr().out
    for flag in ("--logs", "--seed", "--duration-s", "--label-error-rate", "--night-rate", "--workspace", "--json"):
        assert flag in text
