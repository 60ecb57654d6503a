"""Sample gate reports for the report tests: real pictures drawn with matplotlib, gates of every outcome."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from andon.gates.records import GateReport, GateResult
from andon.gates.report_build import build_report

CANDIDATE = {"name": "predictor", "models": {"predictor": "predictor@7"}}
BASELINE = {"name": "predictor", "models": {"predictor": "predictor@6"}}
GATE_CONFIG = {"name": "release", "confidence": 0.95, "gates": [{"name": "km_per_disengagement", "min": 50.0}]}


def write_picture(root: Path, rel: str, colour: str = "tab:red", size_px: int = 240) -> Path:
    """A small bird's-eye-like PNG at root/rel: a road, an ego box and an agent box."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"font.family": "DejaVu Sans"}):
        fig = Figure(figsize=(size_px / 100, size_px / 100), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.fill_between([-30, 30], -4, 4, color="#d0d7de")
        ax.add_patch(Rectangle((-2.4, -1.0), 4.8, 2.0, color="tab:blue"))
        ax.add_patch(Rectangle((6.0, -0.8), 4.5, 1.9, color=colour))
        ax.set_xlim(-30, 30)
        ax.set_ylim(-30, 30)
        ax.set_aspect("equal")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
    path.write_bytes(buffer.getvalue())
    return path


def kmpd_gate(outcome: str = "fail", value: float | None = 31.5, name: str = "km_per_disengagement",
              **more: Any) -> GateResult:
    doc: dict[str, Any] = {
        "name": name, "kind": "system_metric", "severity": "blocking", "outcome": outcome, "value": value,
        "bound": 50.0, "interval": (18.2, 55.0), "margin": -31.8,
        "reason": "km per disengagement 31.5 (95% interval [18.2, 55]) below 50",
        "inputs": {"sim_id": "sim0000000000001", "baseline_sim_id": "sim0000000000002"},
        "details": {"km_per_disengagement": {
            "candidate": {"value": value, "interval": [18.2, 55.0], "km": 63.0, "disengagements": 2},
            "baseline": {"value": None, "interval": [40.1, None], "km": 110.0, "disengagements": 0}}}}
    doc.update(more)
    return GateResult(**doc)


def map_gate(outcome: str = "pass", name: str = "detector_map", **more: Any) -> GateResult:
    doc: dict[str, Any] = {
        "name": name, "kind": "model_metric", "severity": "blocking", "outcome": outcome, "value": 0.612,
        "bound": 0.55, "interval": (0.58, 0.64), "margin": 0.03, "reason": "mAP 0.612 >= 0.55",
        "inputs": {"dataset_id": "ds01", "model": "detector@3"},
        "details": {"metric": "mAP", "slices": [
            {"slice": "vehicle", "candidate": 0.71, "baseline": 0.69, "candidate_interval": [0.68, 0.74]},
            {"slice": "pedestrian", "candidate": 0.52, "baseline": 0.55},
            {"slice": "cyclist", "candidate": None, "baseline": 0.4}]}}
    doc.update(more)
    return GateResult(**doc)


def sample_report(root: Path, *, gates: list[GateResult] | None = None, pictures: bool = True,
                  **overrides: Any) -> GateReport:
    """A report with two gates (a failing km-per-disengagement gate, a passing mAP gate), a regression
    flip and a disengagement, each with a picture written under root."""
    if pictures:
        write_picture(root, "simulations/sim0000000000001/pictures/e1.png")
        write_picture(root, "suites/run0000000000001/pictures/flip1.png", colour="tab:orange")
    kwargs: dict[str, Any] = {
        "candidate": CANDIDATE, "baseline": BASELINE, "gate_set": "release", "gate_config": GATE_CONFIG,
        "gates": gates if gates is not None else [kmpd_gate(), map_gate()],
        "inputs": {"code_version": "c0de" * 16, "datasets": ["ds02", "ds01"], "seeds": {"bootstrap": 0},
                   "suites": [{"run_id": "run0000000000001", "suite": "cut_ins", "passed": False,
                               "path": "suites/run0000000000001/result.json"}],
                   "simulations": [{"sim_id": "sim0000000000001", "path": "simulations/sim0000000000001/result.json",
                                    "sensor_approximation": "logged sweep moved to the simulated pose"}]},
        "flips": {"regressions": [{"suite": "cut_ins", "run_id": "run0000000000001", "scenario_id": "sc-17",
                                   "check": "min_ttc", "value": 0.8, "baseline_value": 2.1,
                                   "picture": "suites/run0000000000001/pictures/flip1.png"}]},
        "events": [{"side": "candidate", "sim_id": "sim0000000000001", "scenario_id": "sc-17",
                    "time_ns": 1_500_000_000, "cause": "ttc", "causes": ["ttc"], "track_ids": ["12"],
                    "frame_index": 15, "detail": "TTC 0.8 s to vehicle 12 (threshold 1.5 s)",
                    "picture": "simulations/sim0000000000001/pictures/e1.png"}],
        "mlflow_runs": [{"model": "predictor", "version": "7", "run_id": "abc123",
                         "url": "http://127.0.0.1:5000/#/experiments/1/runs/abc123"}],
    }
    kwargs.update(overrides)
    return build_report(root, **kwargs)


def large_report(root: Path, n_gates: int = 20, n_pictures: int = 30) -> GateReport:
    """A report with n_gates gates (each with slices) and n_pictures disengagements with pictures."""
    gates = []
    for i in range(n_gates):
        if i % 2:
            gates.append(map_gate(name=f"gate_{i:02d}", outcome="pass" if i % 3 else "fail"))
        else:
            gates.append(kmpd_gate(name=f"gate_{i:02d}", outcome="pass", value=60.0 + i))
    events = []
    for i in range(n_pictures):
        rel = f"simulations/sim0000000000001/pictures/e{i:02d}.png"
        write_picture(root, rel, size_px=480)
        events.append({"side": "candidate", "sim_id": "sim0000000000001", "scenario_id": f"sc-{i:02d}",
                       "time_ns": i * 100_000_000, "cause": "collision", "detail": f"event {i}", "picture": rel})
    return sample_report(root, gates=gates, events=events, pictures=True)
