"""`make demo`: the main job end to end on the embedded defaults.

1. Data: create the workspace, synthesise a small fleet (the embedded default data source), import the
   real samples found in ../shared/data, mine and label-QA the scenarios, validate and commit the
   catalog, build the versioned detection and prediction datasets.
2. First release: `andon release predictor` trains the model DAG on local Ray (detector → tracker →
   autolabelled prediction dataset → predictor), runs the suites and the closed-loop simulation, judges
   the stack with the default gate set and, on pass, moves `production` to it.
3. A deliberately worse candidate: the detector retrained on `detection_day` (no night drives, no
   pedestrian crossings) for 3 epochs instead of 10, and the predictor retrained on its autolabels. The gates must
   refuse it (exit 1): its report lists the failing gates, the flips against production and the
   disengagements with their pictures.

Each decision is in the release ledger; the reports are HTML pages under WORKSPACE/reports/. A second
run reuses what is stored (datasets, models, suite and simulation results) and decides again.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from andon.cli import main as andon
from andon.output import info
from andon.workspace import resolve_root

DEMO_LOGS = 12
DEMO_DATASETS = ("detection_synthetic", "prediction_synthetic", "detection_day")
RELEASED = "predictor"
# The worse candidate: a detector that never saw night or crossings, trained 3 epochs instead of 10 (few
# enough to be clearly worse, enough for its autolabels to still make a prediction dataset).
WORSE_CANDIDATE = ("dag.nodes.detector.datasets=[detection_day]", 'dag.nodes.detector.overrides=["trainer.max_epochs=3"]')
# (format, path relative to the shared data folder)
REAL_SAMPLES = [
    ("av2", "perception/av2_sensor"),
    ("kitti", "perception/kitti_000008"),
    ("nuscenes", "perception/nuscenes_mini_sample"),
    ("eth-ucy", "prediction/eth_ucy"),
    ("av2-forecasting", "prediction/av2_motion_forecasting"),
    ("commonroad", "scenarios/commonroad_ngsim"),
]


def shared_data_dir() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def step(*args: str, expect: int = 0) -> None:
    code = andon(list(args))
    if code != expect:
        info(f"demo: `andon {' '.join(args)}` exited {code} (expected {expect}); stopping the line")
        raise SystemExit(code or 1)


def check_refusal(workspace: str) -> None:
    """The worse candidate must have been judged and refused (a report), not stopped before judging."""
    from andon.gates.ledger import read_entries
    from andon.workspace import Workspace

    last = read_entries(Workspace.open(workspace))[-1]
    if last.action != "refuse" or not last.report_id:
        info(f"demo: the worse candidate was not judged (last ledger entry: {last.action}, report "
             f"{last.report_id}); stopping the line")
        raise SystemExit(1)
    info(f"demo: refused as it must be: report {last.report_id} ({last.verdict})")


def run() -> int:
    started = time.monotonic()
    workspace = str(resolve_root(None))
    ws = ["--workspace", workspace]
    step("init", *ws)
    # Lidar at 2 Hz and 32 beams keep the demo's workspace small; labels and poses stay at 10 Hz.
    step("fleet", "synth", "--logs", str(DEMO_LOGS), "--seed", "0", "--duration-s", "20", "--lidar-every", "5",
         "--beams", "32", *ws)
    data = shared_data_dir()
    if data.is_dir():
        for fmt, rel in REAL_SAMPLES:
            if (data / rel).exists():
                step("scenarios", "import", fmt, str(data / rel), "--curator", "demo", *ws)
    else:
        info(f"demo: no real samples at {data}; skipping the real-data imports")
    step("scenarios", "mine", *ws)
    step("scenarios", "score", *ws)
    step("scenarios", "validate", *ws)
    step("scenarios", "commit", "-m", "demo: catalog snapshot", *ws)
    for dataset in DEMO_DATASETS:
        step("dataset", "build", f"dataset={dataset}", f"workspace={workspace}")
    step("scenarios", "stats", *ws)
    data_s = time.monotonic() - started

    info("demo: first release: train the DAG, run suites, simulation and gates, promote on pass")
    step("release", RELEASED, *ws)
    info("demo: a deliberately worse candidate (detector without night or crossings, 3 epochs): "
         "the gates must refuse it")
    step("release", RELEASED, *WORSE_CANDIDATE, *ws, expect=1)
    check_refusal(workspace)
    step("release", "status", RELEASED, *ws)
    step("ledger", "verify", *ws)
    step("report", "list", *ws)
    info(f"demo: done in {time.monotonic() - started:.1f} s (data {data_s:.1f} s); workspace at {workspace}")
    info(f"demo: open a report with `andon report open REPORT_ID --workspace {workspace}` "
         f"(the HTML pages are under {workspace}/reports/)")
    return 0


if __name__ == "__main__":
    sys.exit(run())
