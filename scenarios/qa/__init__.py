"""Label-QA: checks on boxes and tracks, and the per-scenario score they give.

    flags = run_checks(log)                      # every check, once per log (andon.scenarios.qa.checks)
    score, details = score_window(flags, (t0, t1))
    score_log(log, [(scenario_id, t0, t1), ...]) # {scenario_id: (score, details)}
    score_catalog(catalog, "source:av2")         # scores and records every matching scenario

Checks (each vectorised over all boxes of a log): teleport, jitter, track_gap, heading_velocity
(track_checks), dimension_change, class_flip, size_implausible, below_ground (shape_checks) and
empty_box (lidar_check, on a sample of sweeps). Scoring and weights: scoring. Evaluation against the
synthetic fleet's injected label errors: evaluate.
"""

from andon.scenarios.qa.catalog_qa import score_catalog
from andon.scenarios.qa.checks import CHECK_NAMES, LogFlags, run_checks
from andon.scenarios.qa.config import QAConfig
from andon.scenarios.qa.findings import CheckResult
from andon.scenarios.qa.scoring import QA_VERSION, WEIGHTS, score_log, score_window

__all__ = ["CHECK_NAMES", "QA_VERSION", "WEIGHTS", "CheckResult", "LogFlags", "QAConfig", "run_checks",
           "score_catalog", "score_log", "score_window"]
