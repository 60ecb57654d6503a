"""Crafted evidence for the gate evaluator tests: evaluations, registry tags, datasets and statuses by hand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from andon.dag.status import NodeStatus, Skew
from andon.errors import BadInput
from andon.gates.evidence import CANDIDATE, Evidence
from andon.gates.model_eval import CLASSES, DetectionEval, PredictionEval, Units
from andon.gates.spec import Gate, GateSet, gate_set_from_config

DATASET_ID = "evalset0000000000001"


def one_gate(gate: Mapping[str, Any], **more: Any) -> tuple[Gate, GateSet]:
    """(the gate, a gate set holding only it), 200 resamples for speed."""
    gate_set = gate_set_from_config({"name": "t", "bootstrap": {"resamples": 200, "seed": 0}, **more,
                                     "gates": [dict(gate)]})
    return gate_set.gates[0], gate_set


def units(n_units: int, per_unit: int, tagged: Sequence[int] = (), tag: str = "night") -> Units:
    """n_units scenario units of per_unit items each, two units per log; units in `tagged` carry `tag`."""
    item_unit = np.repeat(np.arange(n_units), per_unit)
    tags = np.isin(item_unit, list(tagged))[:, None]
    return Units(tuple(f"log{i:03d}" for i in range((n_units + 1) // 2)), item_unit // 2,
                 tuple(f"sc{i:03d}" for i in range(n_units)), item_unit, (tag,), tags)


def detection_eval(model: str, n_units: int = 20, frames_per_unit: int = 3, hit_rate: float = 1.0, seed: int = 0,
                   tagged: Sequence[int] = (), with_cyclists: bool = False) -> DetectionEval:
    """Frames with a vehicle at 10 m and a pedestrian at 25 m (and a cyclist at 40 m); each box detected
    exactly (score in [0.5, 1)) with probability `hit_rate`, else missed; one false positive per frame
    scoring below every hit."""
    rng = np.random.default_rng(seed)
    n_frames = n_units * frames_per_unit
    per_frame = [("vehicle", 10.0), ("pedestrian", 25.0)] + ([("cyclist", 40.0)] if with_cyclists else [])
    gt_frame, gt_boxes, gt_class, pf, pb, pc, ps = [], [], [], [], [], [], []
    for f in range(n_frames):
        for name, x in per_frame:
            box = [x, 1.0, 0.8, 4.0, 1.8, 1.6, 0.0]
            gt_frame.append(f), gt_boxes.append(box), gt_class.append(CLASSES.index(name))
            if rng.random() < hit_rate:
                pf.append(f), pb.append(box), pc.append(CLASSES.index(name)), ps.append(rng.uniform(0.5, 1.0))
        pf.append(f), pb.append([-30.0, -30.0, 0.8, 4.0, 1.8, 1.6, 0.0]), pc.append(0), ps.append(rng.uniform(0, 0.4))
    return DetectionEval(model, DATASET_ID, "test", tuple(f"f{f}" for f in range(n_frames)),
                         units(n_units, frames_per_unit, tagged), np.asarray(gt_frame, np.int64),
                         np.asarray(gt_boxes, np.float64).reshape(-1, 7), np.asarray(gt_class, np.int64),
                         np.asarray(pf, np.int64), np.asarray(pb, np.float64).reshape(-1, 7),
                         np.asarray(pc, np.int64), np.asarray(ps, np.float64))


def prediction_eval(model: str, mean_m: float, n_units: int = 20, agents_per_unit: int = 10, spread_m: float = 0.3,
                    seed: int = 0, tagged: Sequence[int] = ()) -> PredictionEval:
    """Agents (alternately vehicles and pedestrians, 5 to 45 m away) whose errors scatter about `mean_m`.
    The scatter depends on the seed only, so two evaluations with one seed are paired exactly."""
    rng = np.random.default_rng(seed)
    n = n_units * agents_per_unit
    base = mean_m + spread_m * rng.standard_normal(n)
    metrics = {"ADE": base * 1.2, "FDE": base * 2.0, "minADE_k": base, "minFDE_k": base * 1.6,
               "miss_rate": (base * 1.6 > 2.0).astype(np.float64)}
    classes = np.where(np.arange(n) % 2 == 0, CLASSES.index("vehicle"), CLASSES.index("pedestrian"))
    return PredictionEval(model, DATASET_ID, "test", tuple(f"a{i}" for i in range(n)),
                          units(n_units, agents_per_unit, tagged), classes.astype(np.int64),
                          np.linspace(5.0, 45.0, n), metrics, 6)


def dataset(dataset_id: str, status: str = "accepted", name: str = "ds", reasons: Sequence[str] = ()) -> Any:
    return SimpleNamespace(dataset_id=dataset_id, name=name, status=status, accepted=status == "accepted",
                           reasons=tuple(reasons))


def status(node: str, state: str = "fresh", fingerprint: str = "fp", version: str | None = "1",
           reasons: Sequence[str] = (), skew: Sequence[Skew] = ()) -> NodeStatus:
    return NodeStatus(node, "train", state, tuple(reasons), fingerprint, version, skew=tuple(skew))


@dataclass
class Crafted(Evidence):
    """Evidence whose registry tags, datasets and evaluations are given by hand.

    Attributes:
        tags: {(node, version): tags}.
        dataset_docs: {id or name: a dataset stand-in (see `dataset`)}.
        evals: {"candidate" | "baseline": an evaluation}.
    """

    tags: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    dataset_docs: dict[str, Any] = field(default_factory=dict)
    evals: dict[str, Any] = field(default_factory=dict)

    def version_tags(self, node: str, version: str) -> dict[str, str]:
        if (node, str(version)) not in self.tags:
            raise BadInput(f"{node}@{version} is not in the registry")
        return dict(self.tags[(node, str(version))])

    def dataset(self, ref: str) -> Any:
        if ref not in self.dataset_docs:
            raise BadInput(f"no dataset version or name {ref!r}")
        return self.dataset_docs[ref]

    def model_eval(self, gate: Gate, which: str) -> Any:
        stack = self.side(which)
        if stack is None or gate.model not in stack:
            if which == CANDIDATE:
                raise BadInput(f"the candidate stack has no node {gate.model!r}")
            return None
        return self.evals.get(which)


def crafted(tmp_path: Path, candidate: Mapping[str, str] | None = None, baseline: Mapping[str, str] | None = None,
            **more: Any) -> Crafted:
    """Crafted evidence in a folder standing in for the workspace (only `root` is read)."""
    workspace = SimpleNamespace(root=tmp_path)
    return Crafted(workspace, dict(candidate or {"detector": "2", "predictor": "5"}),  # type: ignore[arg-type]
                   None if baseline is None else dict(baseline), **more)


def suite_doc(name: str, passed: bool = True, models: Sequence[str] = ("detector@2",), **more: Any) -> dict[str, Any]:
    """A suite result document (contract) with one blocking and one warning check."""
    checks = [{"name": "recall_near", "metric": "recall", "scope": "per_scenario", "severity": "blocking",
               "comparator": ">=", "threshold": 0.9, "passed": passed, "value": 0.95 if passed else 0.7,
               "baseline_value": 0.93, "n_scenarios": 10, "n_evaluated": 10, "n_failed": 0 if passed else 3,
               "reason": ""},
              {"name": "comfort", "metric": "jerk", "scope": "aggregate", "severity": "warning", "comparator": "<=",
               "threshold": 2.0, "passed": False, "value": 2.5, "baseline_value": 2.4, "n_scenarios": 10,
               "n_evaluated": 10, "n_failed": 1, "reason": ""}]
    doc = {"run_id": f"run-{name}", "suite": name, "suite_sha256": "0" * 64, "models": list(models), "stack": {},
           "baseline_models": None, "baseline_stack": None, "scenario_ids": [f"s{i}" for i in range(10)],
           "passed": passed, "blocking_failures": 0 if passed else 1, "warnings": 1, "errors": [], "checks": checks,
           "results": [], "flips": {"regressions": [], "improvements": []}}
    doc.update(more)
    return doc


def sim_doc(km: float, disengagements: int, collisions: int = 0, sim_id: str = "sim-c",
            scenario_ids: Sequence[str] = ("s1", "s2"), **more: Any) -> dict[str, Any]:
    """A simulation result document (contract) with one event per disengagement."""
    events = [{"scenario_id": "s1", "time_ns": i, "cause": "collision" if i < collisions else "ttc", "causes": [],
               "track_ids": [], "frame_index": i, "detail": "", "picture": None}
              for i in range(max(disengagements, collisions))]
    doc = {"sim_id": sim_id, "mode": "closed_loop", "reactive": True, "stack": {}, "models": ["detector@2"],
           "scenario_ids": list(scenario_ids), "config": {}, "code_version": "c", "km": km,
           "disengagements": disengagements, "km_per_disengagement": km / disengagements if disengagements else None,
           "interval": [0.0, None], "confidence": 0.95, "collisions": collisions, "collisions_per_km": collisions / km,
           "jerk_rms_mps3": 0.5, "progress": 1.0, "errors": [], "per_tag": {}, "scenarios": [], "events": events}
    doc.update(more)
    return doc
