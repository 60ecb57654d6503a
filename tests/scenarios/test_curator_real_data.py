"""Every curator command, through the CLI, on each of the six real formats in ../shared/data."""

from __future__ import annotations

import json

import pytest

from andon.cli import main

SAMPLES = {
    "av2": "perception/av2_sensor",
    "kitti": "perception/kitti_000008",
    "nuscenes": "perception/nuscenes_mini_sample",
    "eth-ucy": "prediction/eth_ucy/biwi_hotel.txt",
    "av2-forecasting": "prediction/av2_motion_forecasting",
    "commonroad": "scenarios/commonroad_ngsim/USA_Peach-4_8_T-1.xml",
}


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()
    code = main([*args, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_curator_commands_on_real_format(fmt, shared_data, workspace, capsys, tmp_path):
    ws = ["--workspace", str(workspace.root)]
    imported = _json(capsys, "scenarios", "import", fmt, str(shared_data / SAMPLES[fmt]), *ws)
    (log,) = imported["logs"]
    assert log["created"] and log["frames"] >= 1
    assert not _json(capsys, "scenarios", "import", fmt, str(shared_data / SAMPLES[fmt]), *ws)["logs"][0]["created"]

    found = _json(capsys, "scenarios", "search", f"source:{fmt}", f"tag:{fmt}", *ws)
    assert found["total"] == 1
    whole = found["scenarios"][0]
    duration_s = (whole["t_end_ns"] - whole["t_start_ns"]) / 1e9

    if duration_s > 0:  # single-frame logs (KITTI, nuScenes) have no shorter window to add
        added = _json(capsys, "scenarios", "add", "--log", log["log_id"], "--start-s", "0",
                      "--end-s", f"{duration_s / 2:.3f}", "--tag", "first_half", *ws)
        assert added["created"] and added["tags"] == ["first_half"]
    sid = whole["scenario_id"]
    assert "reviewed" in _json(capsys, "scenarios", "tag", sid, "+reviewed", *ws)["tags"]

    png = tmp_path / f"{fmt}.png"
    shown = _json(capsys, "scenarios", "show", sid, "--render", str(png), *ws)
    assert shown["render"] == str(png) and png.read_bytes()[:4] == b"\x89PNG"

    assert _json(capsys, "scenarios", "validate", f"source:{fmt}", *ws)["problems"] == []
    stats = _json(capsys, "scenarios", "stats", *ws)
    assert stats["logs_by_source"] == {fmt: 1}

    assert _json(capsys, "scenarios", "retire", sid, "--reason", "test", *ws)["status"] == "retired"
    committed = _json(capsys, "scenarios", "commit", "-m", f"curated {fmt}", *ws)
    assert committed["changed"]
