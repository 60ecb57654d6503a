"""A small synthetic fleet in a real workspace for the simulation runner and CLI tests.

Four 6 s logs with a coarse lidar (pictures show points); two of the whole-log scenarios also carry
the tag `cut_in`, so per-tag figures have two tags to pool. `EVENTFUL` thresholds make the stand-in
stack disengage (TTC within a 5 m margin) in most scenarios, so events and pictures exist.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from andon.scenarios.catalog import Catalog
from andon.workspace import Workspace
from tests.models.train_helpers import synthesize

N_LOGS = 4
DURATION_S = 6.0
CUT_IN = "cut_in"
EVENTFUL = ["replay.safety_margin_m=5.0", "replay.ttc_threshold_s=5.0"]
EVENTFUL_KW = {"safety_margin_m": 5.0, "ttc_threshold_s": 5.0}


def make_fleet_template(template: Path, dest: Path) -> Path:
    """A copy of the empty workspace template with the fleet synthesised and two scenarios tagged cut_in."""
    shutil.copytree(template, dest, symlinks=True)
    workspace = Workspace.open(dest)
    synthesize(workspace, n_logs=N_LOGS, duration_s=DURATION_S, seed=0)
    with Catalog(workspace) as catalog:
        for scenario in catalog.search("")[:2]:
            catalog.tag(scenario.scenario_id, add=[CUT_IN])
    return dest


def copy_fleet(template: Path, dest: Path) -> Workspace:
    """A fresh copy of the fleet workspace (its DVC remote still the template's: the simulation never pushes)."""
    shutil.copytree(template, dest, symlinks=True)
    return Workspace.open(dest)
