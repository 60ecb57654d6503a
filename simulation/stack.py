"""The stack a replay runs: detector → tracker → predictor → planner, loaded once and reused.

`load_stack(workspace, ["detector@candidate", "predictor@3"])` resolves each registry reference
(NAME@ALIAS or NAME@VERSION) and gives it the role its loaded object has: a PillarDetector is the
detector, a TrajectoryPredictor the predictor; a registered configuration (the model DAG's `fixed`
nodes register their resolved config as `node/config.json`) whose `_target_` makes a Tracker or a
Planner is the tracker or the planner. Roles not given take stand-ins when `allow_stand_ins`: the
oracle detector (ground truth with noise, drops and false positives), constant-velocity prediction,
the default tracker and planner; `description` records what ran ("detector@3", "oracle", ...).

Load a stack once per process (a Ray worker) and replay many scenarios with it: a model is never
loaded per scenario (DESIGN: memory).

The predictor's time grid (step, history and horizon steps) comes from its hyper-parameters and the
sampling of the dataset version it was trained on (its registry tag `dataset_id`); when that version
is not in the workspace the step falls back to FALLBACK_PREDICTION_STEP_S and the description says so.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.errors import BadInput
from andon.models.autolabel import DetectFn, detector_fn, oracle_detector
from andon.models.planner import Planner, make_planner
from andon.models.tracker import Tracker, make_tracker
from andon.workspace import Workspace

if TYPE_CHECKING:
    from collections.abc import Sequence

    from andon.models.predictor import TrajectoryPredictor

ROLES = ("detector", "tracker", "predictor", "planner")
ORACLE = "oracle"
CONSTANT_VELOCITY = "constant_velocity"
DEFAULT = "default"
FALLBACK_PREDICTION_STEP_S = 0.5
CV_HISTORY_STEPS = 2  # constant velocity needs t0 and the step before
DEFAULT_NEIGHBOUR_SLOTS = 32
_CONFIG_TARGETS = {"andon.models.tracker.make_tracker": ("tracker", make_tracker),
                   "andon.models.planner.make_planner": ("planner", make_planner)}


@dataclass
class Stack:
    """What a replay runs (module docstring); loaded once per process and reused for many scenarios.

    Attributes:
        detect: frame -> (boxes (N, 7) ego frame, classes, scores), or None for a frame it cannot see.
        tracker: reset by the replay at the start of each scenario.
        predictor: a trained TrajectoryPredictor, or None for constant-velocity prediction.
        prediction_step_s: time between predicted (and history) positions [s].
        prediction_history_steps: history steps the predictor takes, t0 included.
        prediction_horizon_steps: predicted steps after t0.
        planner: the planner.
        description: role -> what ran ("detector@3" | "oracle", "tracker@1" | "default", "predictor@2" |
            "constant_velocity", "planner@1" | "default").
        prediction_neighbour_slots: neighbours per agent fed to the predictor (its dataset's max_agents_per_frame).
        reads_points: whether `detect` reads lidar points; False for the oracle, which reads the frame's
            ground-truth boxes only (a replay then skips loading and re-rendering sweeps).
    """

    detect: DetectFn
    tracker: Tracker
    predictor: TrajectoryPredictor | None
    prediction_step_s: float
    prediction_history_steps: int
    prediction_horizon_steps: int
    planner: Planner
    description: dict[str, str]
    prediction_neighbour_slots: int = DEFAULT_NEIGHBOUR_SLOTS
    reads_points: bool = True

    @property
    def prediction_sampling(self) -> dict[str, Any]:
        """The sampling spec `prediction_features_batch` takes for this stack's predictor."""
        return {"step_s": self.prediction_step_s, "history_steps": self.prediction_history_steps,
                "horizon_steps": self.prediction_horizon_steps, "max_agents_per_frame": self.prediction_neighbour_slots}


def stand_in_stack(seed: int = 0) -> Stack:
    """Oracle detector (seeded), constant-velocity prediction over the planner's horizon, default tracker and planner."""
    planner = Planner()
    return Stack(detect=oracle_detector(seed=seed), tracker=Tracker(), predictor=None,
                 prediction_step_s=FALLBACK_PREDICTION_STEP_S, prediction_history_steps=CV_HISTORY_STEPS,
                 prediction_horizon_steps=_cv_horizon_steps(planner, FALLBACK_PREDICTION_STEP_S), planner=planner,
                 description={"detector": ORACLE, "tracker": DEFAULT, "predictor": CONSTANT_VELOCITY, "planner": DEFAULT},
                 reads_points=False)


def _cv_horizon_steps(planner: Planner, step_s: float) -> int:
    return max(int(round(planner.config.horizon_s / step_s)), 1)


def load_stack(workspace: Workspace, models: Sequence[str], device: str = "cpu", allow_stand_ins: bool = True) -> Stack:
    """The stack of registered models `models` (NAME@ALIAS or NAME@VERSION), stand-ins for the other roles.

    Raises:
        BadInput: a reference that does not parse or resolve, a version the simulator cannot run, two
            models for one role, or (without stand-ins) a role no model fills — each naming what to fix.
    """
    from andon.models.registry import ModelRef, Registry

    refs = [str(m).strip() for m in models]
    parsed = []
    for ref in refs:  # every reference is checked before the registry is opened
        try:
            parsed.append(ModelRef.parse(ref))
        except BadInput as exc:
            raise BadInput(f"model {ref!r}: {exc}") from None
    loaded: dict[str, tuple[str, Any, Any]] = {}
    registry = Registry(workspace) if refs else None
    for ref, model_ref in zip(refs, parsed, strict=True):
        version = registry.resolve(model_ref)  # BadInput naming the ref when missing
        role, obj = _load_version(registry, ref, version, device)
        if role in loaded:
            raise BadInput(f"models {loaded[role][0]!r} and {ref!r} are both a {role}: give one model per role "
                           f"({', '.join(ROLES)})")
        loaded[role] = (f"{version.name}@{version.version}", obj, version)
    missing = [role for role in ROLES if role not in loaded]
    if missing and not allow_stand_ins:
        raise BadInput(f"no model for {', '.join(missing)} among {refs}: add a registered {missing[0]} "
                       f"(NAME@ALIAS or NAME@VERSION) or allow stand-ins")
    stack = stand_in_stack()
    description = dict(stack.description)
    if "detector" in loaded:
        name, model, _ = loaded["detector"]
        stack.detect, description["detector"], stack.reads_points = detector_fn(model), name, True
    for role in ("tracker", "planner"):
        if role in loaded:
            name, obj, _ = loaded[role]
            setattr(stack, role, obj)
            description[role] = name
    if "planner" in loaded:
        stack.prediction_horizon_steps = _cv_horizon_steps(stack.planner, stack.prediction_step_s)
    if "predictor" in loaded:
        name, model, version = loaded["predictor"]
        step_s, slots, note = _prediction_grid(workspace, version)
        stack.predictor = model
        stack.prediction_step_s, stack.prediction_neighbour_slots = step_s, slots
        stack.prediction_history_steps = int(model.history_steps)
        stack.prediction_horizon_steps = int(model.horizon_steps)
        description["predictor"] = name + note
    stack.description = description
    return stack


def _load_version(registry: Any, ref: str, version: Any, device: str) -> tuple[str, Any]:
    """(role, loaded object) of a registered version: a torch model, or a tracker/planner config."""
    source = str(version.source)
    artifact = source.split("/", 2)[2] if source.startswith("runs:/") and source.count("/") >= 2 else ""
    names = {Path(a.path).name for a in registry.client.list_artifacts(version.run_id, artifact)} \
        if artifact else set()
    if "config.json" in names:
        return _from_config(registry, ref, version, artifact)
    if "MLmodel" in names or not artifact:
        return _from_torch(ref, version, device)
    raise BadInput(f"model {ref!r} (version {version.version}) holds {sorted(names) or 'no files'} under {artifact}/, "
                   f"neither a PyTorch model nor a tracker or planner config: give a detector, tracker, predictor or "
                   f"planner (a DAG link such as an autolabel node is not a model)")


def _from_config(registry: Any, ref: str, version: Any, artifact: str) -> tuple[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = registry.client.download_artifacts(version.run_id, f"{artifact}/config.json", tmp)
        config = json.loads(Path(path).read_text())
    params = dict(config.get("model", config)) if isinstance(config, dict) else {}
    target = str(params.pop("_target_", ""))
    params.pop("name", None)
    if target not in _CONFIG_TARGETS:
        raise BadInput(f"model {ref!r} is a registered config of {target or 'no _target_'}, which the simulator "
                       f"cannot run: give a detector, tracker, predictor or planner")
    role, make = _CONFIG_TARGETS[target]
    try:
        return role, make(**params)
    except BadInput as exc:
        raise BadInput(f"model {ref!r}: {exc}") from None


def _from_torch(ref: str, version: Any, device: str) -> tuple[str, Any]:
    import mlflow.pytorch
    import torch

    from andon.datasets.features import module_code_hash
    from andon.models.detector import PillarDetector
    from andon.models.predictor import TrajectoryPredictor

    recorded = version.tags.get("transform_code_hash")
    if recorded and recorded not in ("None", module_code_hash()):
        raise BadInput(f"model {ref!r} (version {version.version}) was trained with feature code {recorded} but the "
                       f"code in use is {module_code_hash()}: retrain it on a dataset built with this code")
    try:
        model = mlflow.pytorch.load_model(f"models:/{version.name}/{version.version}", map_location=torch.device(device))
    except Exception as exc:  # an unreadable artefact is the user's to fix, not a traceback
        raise BadInput(f"model {ref!r} (version {version.version}) cannot be loaded as a PyTorch model: {exc}") from exc
    model = model.to(torch.device(device))
    model.eval()
    if isinstance(model, PillarDetector):
        return "detector", model
    if isinstance(model, TrajectoryPredictor):
        return "predictor", model
    raise BadInput(f"model {ref!r} is a {type(model).__name__}: the simulator runs a PillarDetector, a "
                   f"TrajectoryPredictor, or a registered tracker or planner config")


def _prediction_grid(workspace: Workspace, version: Any) -> tuple[float, int, str]:
    """(step_s, neighbour slots, note for the description) of a predictor version, from its dataset's sampling."""
    from andon.datasets.versions import load_version

    dataset_id = version.tags.get("dataset_id")
    try:
        sampling = dict(load_version(workspace, dataset_id).spec.get("sampling") or {}) if dataset_id else {}
    except BadInput:
        sampling = {}
    step_s = sampling.get("step_s")
    if not isinstance(step_s, int | float) or isinstance(step_s, bool) or step_s <= 0:
        return FALLBACK_PREDICTION_STEP_S, DEFAULT_NEIGHBOUR_SLOTS, \
            f" (step {FALLBACK_PREDICTION_STEP_S:g} s assumed: dataset {dataset_id or 'unknown'} not found)"
    slots = sampling.get("max_agents_per_frame") or DEFAULT_NEIGHBOUR_SLOTS
    return float(step_s), int(slots), ""
