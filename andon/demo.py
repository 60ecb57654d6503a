"""`make demo`: the main job end to end on the embedded defaults.

At this stage of the line: create the workspace, synthesise a small fleet (the embedded default data
source), import the real samples found in ../shared/data, mine and label-QA the scenarios, validate
and commit the catalog, build the versioned detection and prediction datasets, then print the
catalog's statistics. Idempotent: a second run adds nothing new.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from andon.cli import main as andon
from andon.output import info
from andon.workspace import resolve_root

DEMO_LOGS = 12
DEMO_DATASETS = ("detection_synthetic", "prediction_synthetic")
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


def step(*args: str) -> None:
    code = andon(list(args))
    if code != 0:
        info(f"demo: `andon {' '.join(args)}` exited {code}; stopping the line")
        raise SystemExit(code)


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
    info(f"demo: done in {time.monotonic() - started:.1f} s; workspace at {workspace}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
