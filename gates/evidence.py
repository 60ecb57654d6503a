"""What the gates judge, gathered lazily: each read happens when the first gate needs it, once.

`Evidence` holds the candidate and baseline stacks ({node: version}), the suite and simulation result
documents the caller already computed, and reads the rest from the workspace:

- the registry versions of the stacks' nodes (their tags record the datasets they were made from:
  `dataset_id` from training, `dag.dataset.<name>` and `dag.output_dataset` from the DAG);
- dataset versions (`andon.datasets.versions.load_version`) and their validation status;
- the DAG's status (`andon.dag.status.dag_status`): fresh, stale, missing, skew;
- the pinned evaluation set of a model-metric gate and the cached model evaluations on it
  (andon.gates.model_eval).

Reading lazily keeps one unreadable input from failing the gates that do not need it: the evaluator
runs each gate in its own fail-closed wrapper, and an exception raised here fails only that gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from andon.errors import BadInput
from andon.gates.model_eval import DetectFn, DetectionEval, PredictionEval, model_evaluation
from andon.gates.spec import Gate
from andon.workspace import Workspace

TAG_TRAINING_DATASET = "dataset_id"  # andon.models.train.run_tags
TAG_DAG_DATASET = "dag.dataset."  # andon.dag.fingerprint.TAG_DATASET
TAG_OUTPUT_DATASET = "dag.output_dataset"  # andon.dag.runners.TAG_OUTPUT_DATASET
NO_DATASET = "none"  # andon.dag.fingerprint.NO_DATASET
CANDIDATE, BASELINE = "candidate", "baseline"


@dataclass(frozen=True, slots=True)
class DatasetUse:
    """One dataset a model version was made from: the node and version, how it used it, and the id."""

    node: str
    version: str
    role: str  # "trained on" | "DAG input <name>" | "built (autolabel output)"
    dataset_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"model": f"{self.node}@{self.version}", "role": self.role, "dataset_id": self.dataset_id}


@dataclass
class Evidence:
    """The inputs of a gate run (module docstring); every read is cached.

    Attributes:
        workspace: the workspace.
        candidate: {node: version} of the candidate stack.
        baseline: {node: version} of the baseline stack (usually production), or None.
        suite_results: suite name -> the candidate's suite result document (flips against the baseline).
        sim_candidate, sim_baseline: simulation result documents, or None.
        config_dirs: extra config folders (DAG, model and dataset configs) for the DAG's status.
        rerun: recompute cached model evaluations.
        device: where models run for evaluations (None: CUDA when available, else the CPU).
        detectors: "node@version" -> a detect fn standing in for that registered detector (tests).
        predictors: "node@version" -> a predictor standing in for that registered predictor (tests).
        statuses: DAG name -> precomputed node statuses (skips computing them).
    """

    workspace: Workspace
    candidate: Mapping[str, str]
    baseline: Mapping[str, str] | None = None
    suite_results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sim_candidate: Mapping[str, Any] | None = None
    sim_baseline: Mapping[str, Any] | None = None
    config_dirs: Sequence[str] = ()
    rerun: bool = False
    device: str | None = None
    detectors: Mapping[str, DetectFn] = field(default_factory=dict)
    predictors: Mapping[str, Any] = field(default_factory=dict)
    statuses: dict[str, list[Any]] = field(default_factory=dict)
    _lineage: Any = field(default=None, repr=False)
    _datasets: dict[str, Any] = field(default_factory=dict, repr=False)
    _evals: dict[tuple[str, str, str, str, str], Any] = field(default_factory=dict, repr=False)

    # ----- registry ---------------------------------------------------------------------------------
    @property
    def lineage(self) -> Any:
        """andon.dag.lineage.Lineage of the workspace (reads the registry's sqlite store directly)."""
        if self._lineage is None:
            from andon.dag.lineage import Lineage

            self._lineage = Lineage(self.workspace)
        return self._lineage

    def version_tags(self, node: str, version: str) -> dict[str, str]:
        """The tags of registered version `node@version`.

        Raises:
            BadInput: the registry has no such version.
        """
        record = self.lineage.version(node, str(version))
        if record is None:
            raise BadInput(f"{node}@{version} is not in the registry: resolve the stack again "
                           f"(andon dag status lists the versions)")
        return dict(record.tags)

    def side(self, which: str) -> Mapping[str, str] | None:
        """The candidate's or the baseline's stack."""
        return self.candidate if which == CANDIDATE else self.baseline

    # ----- datasets ---------------------------------------------------------------------------------
    def datasets_used(self, node: str, version: str) -> list[DatasetUse]:
        """Every dataset version `node@version` records it was made from (tags; see module docstring)."""
        tags = self.version_tags(node, version)
        uses: list[DatasetUse] = []
        if tags.get(TAG_TRAINING_DATASET):
            uses.append(DatasetUse(node, str(version), "trained on", tags[TAG_TRAINING_DATASET]))
        for key, value in sorted(tags.items()):
            if key.startswith(TAG_DAG_DATASET):
                name = key[len(TAG_DAG_DATASET):]
                dataset_id = None if value == NO_DATASET else value
                if dataset_id is not None and any(u.dataset_id == dataset_id for u in uses):
                    continue
                uses.append(DatasetUse(node, str(version), f"DAG input {name}", dataset_id))
        if tags.get(TAG_OUTPUT_DATASET):
            uses.append(DatasetUse(node, str(version), "built (autolabel output)", tags[TAG_OUTPUT_DATASET]))
        return uses

    def dataset(self, ref: str) -> Any:
        """The DatasetVersion an id, unique prefix or name (its newest accepted version) names."""
        if ref not in self._datasets:
            from andon.datasets.versions import load_version

            self._datasets[ref] = load_version(self.workspace, ref)
        return self._datasets[ref]

    def eval_dataset(self, gate: Gate) -> Any:
        """The pinned evaluation set of a model-metric gate: `eval_dataset_id`, else the newest
        accepted version of `eval_dataset`.

        Raises:
            BadInput: no such version, the pinned version is not accepted, or it is not the gate's dataset.
        """
        version = self.dataset(gate.eval_dataset_id or str(gate.eval_dataset))
        if gate.eval_dataset_id and gate.eval_dataset and version.name != gate.eval_dataset:
            raise BadInput(f"eval_dataset_id {gate.eval_dataset_id} is a version of {version.name}, not of "
                           f"eval_dataset {gate.eval_dataset}: fix one of them")
        if not version.accepted:
            raise BadInput(f"evaluation set {version.dataset_id} ({version.name}) is {version.status}: models are "
                           f"only judged on an accepted version; pin another eval_dataset_id")
        return version

    # ----- DAG --------------------------------------------------------------------------------------
    def dag_statuses(self, dag: str) -> list[Any]:
        """Each node's andon.dag.status.NodeStatus for DAG config `dag`, in topological order."""
        if dag not in self.statuses:
            from andon.dag.context import open_dag
            from andon.dag.status import dag_status

            with open_dag(dag, str(self.workspace.root), list(self.config_dirs)) as ctx:
                self.statuses[dag] = dag_status(ctx.dag, ctx.fingerprinter, ctx.lineage)
        return self.statuses[dag]

    # ----- model evaluations ------------------------------------------------------------------------
    def model_eval(self, gate: Gate, which: str) -> DetectionEval | PredictionEval | None:
        """The cached evaluation of the gate's model in the candidate's or baseline's stack on the
        gate's evaluation set; None when that stack has no version of the model (no baseline).

        Raises:
            BadInput: the candidate stack lacks the gate's model, or the evaluation cannot be made or read.
        """
        stack = self.side(which)
        model = str(gate.model)
        if stack is None or model not in stack:
            if which == CANDIDATE:
                raise BadInput(f"the candidate stack ({', '.join(sorted(self.candidate)) or 'empty'}) has no node "
                               f"{model!r}: gate {gate.name!r} judges {model}; gate a stack that contains it")
            return None
        version = str(stack[model])
        dataset = self.eval_dataset(gate)
        key = (str(gate.task), model, version, dataset.dataset_id, gate.split)
        if key not in self._evals:
            ref = f"{model}@{version}"
            self._evals[key] = model_evaluation(self.workspace, str(gate.task), model, version, dataset, gate.split,
                                                rerun=self.rerun, device=self.device,
                                                detect=self.detectors.get(ref), predictor=self.predictors.get(ref))
        return self._evals[key]
