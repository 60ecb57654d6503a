"""`make demo`: the main job end to end on the embedded defaults.

At this stage of the line: create the workspace, import the real samples found in ../shared/data,
then print the catalog's statistics. Idempotent: a second run imports nothing new.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from andon.cli import main as andon
from andon.output import info
from andon.workspace import resolve_root

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
    data = shared_data_dir()
    if data.is_dir():
        for fmt, rel in REAL_SAMPLES:
            if (data / rel).exists():
                step("scenarios", "import", fmt, str(data / rel), "--curator", "demo", *ws)
    else:
        info(f"demo: no real samples at {data}; skipping the real-data imports")
    step("scenarios", "validate", *ws)
    step("scenarios", "commit", "-m", "demo: catalog snapshot", *ws)
    step("scenarios", "stats", *ws)
    info(f"demo: done in {time.monotonic() - started:.1f} s; workspace at {workspace}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
