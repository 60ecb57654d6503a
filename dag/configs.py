"""Composing the DAG's configs with Hydra's compose API: DAG configs, node configs, group options.

Every config comes from the package's configs (`pkg://andon.configs`) plus the DAG's `searchpath`,
composed the way the Hydra apps compose them, so a node's fingerprinted config is exactly the
config it trains with. Inside a Hydra app (`andon dag run`) the app's GlobalHydra is used; elsewhere
(status, plan, a Ray worker) a session initialises one and clears it on exit.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from andon.dag.spec import DEFAULT_TRAIN_CONFIG, SCHEMA_NAME, Dag, Node, dag_from_config
from andon.errors import BadInput

CONFIG_MODULE = "andon.configs"


def searchpath_url(entry: str) -> str:
    """A search-path entry as Hydra takes it: pkg:// and file:// URLs as given, a directory as file://."""
    if entry.startswith(("pkg://", "file://")):
        return entry
    return "file://" + str(Path(entry).expanduser().resolve())


class ConfigSession:
    """Composes configs from the package and extra search-path entries; results are cached.

    Use as a context manager around every call.

    Args:
        searchpath: extra config directories (or URLs) searched after the package's configs.
    """

    def __init__(self, searchpath: Sequence[str] = ()) -> None:
        self.searchpath: tuple[str, ...] = tuple(dict.fromkeys(searchpath_url(p) for p in searchpath))
        self._context: Any = None
        self._cache: dict[tuple[str | None, tuple[str, ...]], dict[str, Any]] = {}

    def extend(self, searchpath: Sequence[str]) -> None:
        """Search these entries too (a DAG's own `searchpath`)."""
        merged = tuple(dict.fromkeys([*self.searchpath, *(searchpath_url(p) for p in searchpath)]))
        if merged != self.searchpath:
            self.searchpath = merged
            self._cache.clear()

    def __enter__(self) -> ConfigSession:
        from hydra.core.global_hydra import GlobalHydra

        from andon.hydra_app import register_configs

        register_configs()
        if not GlobalHydra.instance().is_initialized():
            from hydra import initialize_config_module

            self._context = initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3")
            self._context.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._context is not None:
            self._context.__exit__(*exc)
            self._context = None

    def compose_config(self, config_name: str | None, overrides: Sequence[str]) -> DictConfig:
        """The composed config (DictConfig, schemas attached), as a Hydra app would see it.

        Raises:
            BadInput: naming the config and the override or key that does not compose.
        """
        from hydra import compose
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        full = list(overrides)
        if self.searchpath:
            quoted = ",".join("'" + p.replace("\\", "\\\\").replace("'", "\\'") + "'" for p in self.searchpath)
            full.insert(0, f"hydra.searchpath=[{quoted}]")
        try:
            return compose(config_name=config_name, overrides=full)
        except (HydraException, OmegaConfBaseException, ValueError) as exc:
            what = f"config {config_name!r}" if config_name else "config"
            raise BadInput(f"{what} with overrides {list(overrides)} does not compose: "
                           f"{str(exc).splitlines()[0]}") from exc

    def compose(self, config_name: str | None, overrides: Sequence[str]) -> dict[str, Any]:
        """The composed config as plain, resolved data (a copy: callers may change it)."""
        key = (config_name, tuple(overrides))
        if key not in self._cache:
            cfg = self.compose_config(config_name, overrides)
            self._cache[key] = to_plain(cfg, f"config {config_name or ''} {list(overrides)}")
        return copy.deepcopy(self._cache[key])

    def options(self, group: str) -> set[str]:
        """The options of a config group (files only; the schemas registered in code are not options)."""
        from hydra.core.config_store import ConfigStore
        from hydra.core.global_hydra import GlobalHydra

        loader = GlobalHydra.instance().config_loader()
        found = set(loader.get_group_options(group))
        for entry in self.searchpath:
            if entry.startswith("file://"):
                folder = Path(entry[len("file://"):]) / group
                if folder.is_dir():
                    found.update(p.stem for p in folder.glob("*.yaml"))
        try:
            schemas = {name.removesuffix(".yaml") for name in ConfigStore.instance().list(group)}
        except OSError:
            schemas = set()
        return found - schemas


def to_plain(cfg: DictConfig, what: str) -> dict[str, Any]:
    """Resolved plain data of a composed config; BadInput naming `what` when an interpolation fails."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        raise BadInput(f"{what} does not resolve: {str(exc).splitlines()[0]}") from exc
    if not isinstance(plain, dict):
        raise BadInput(f"{what} is not a mapping")
    return plain


def node_compose_args(node: Node, dataset_ref: str | None = None) -> tuple[str | None, list[str]]:
    """(primary config name, overrides) that compose a node's config.

    train: the primary train config with the node's model and dataset; fixed: the model group
    alone; autolabel: the dataset config it builds.
    """
    if node.kind == "train":
        return node.config or DEFAULT_TRAIN_CONFIG, [f"model={node.model}",
                                                     f"dataset_ref={dataset_ref or node.datasets[0]}",
                                                     *node.overrides]
    if node.kind == "fixed":
        return None, [f"+model={node.model}", *node.overrides]
    return None, [f"+dataset={node.output}", *node.overrides]


def needs_name_override(config: Mapping[str, Any], node: Node) -> bool:
    """Whether the model's `name` (its registered name) must be set to the node's name."""
    model = config.get("model")
    return isinstance(model, Mapping) and "name" in model and model["name"] != node.name


def node_config(session: ConfigSession, node: Node, ignore: Sequence[str]) -> dict[str, Any]:
    """The node's resolved config without the ignored top-level keys: what its fingerprint hashes.

    The registered model's name is the node's name, so `model.name` is set to it.
    """
    name, overrides = node_compose_args(node)
    config = session.compose(name, overrides)
    if needs_name_override(config, node):
        config["model"]["name"] = node.name
    return {key: value for key, value in config.items() if key not in set(ignore)}


def model_target(session: ConfigSession, node: Node) -> str | None:
    """The `_target_` of the node's model config (an override of it wins), without composing the node."""
    for override in reversed(node.overrides):
        key, _, value = override.lstrip("+~").partition("=")
        if key == "model._target_":
            return value or None
    if not node.model:
        return None
    model = session.compose(None, [f"+model={node.model}"]).get("model")
    target = model.get("_target_") if isinstance(model, Mapping) else None
    return str(target) if target else None


def load_dag(session: ConfigSession, ref: str) -> Dag:
    """The DAG a config name (configs/dag/NAME.yaml, or one in the session's search path) or a file names.

    The DAG's own `searchpath` is added to the session, so its nodes' configs compose from there too.

    Raises:
        BadInput: for an unknown name, an unreadable file, or a bad DAG.
    """
    path = Path(ref).expanduser()
    if ref.endswith((".yaml", ".yml")) or path.is_file():
        dag = dag_from_config(_read_dag_file(path))
    else:
        options = session.options("dag")
        if ref not in options:
            raise BadInput(f"no DAG config {ref!r}: choose one of {', '.join(sorted(options)) or 'none'} "
                           f"(configs/dag/NAME.yaml), or give the path of a DAG file")
        dag = dag_from_config(session.compose(None, [f"+dag={ref}"])["dag"])
    session.extend(dag.searchpath)
    return dag


def _read_dag_file(path: Path) -> dict[str, Any]:
    from omegaconf.errors import OmegaConfBaseException

    if not path.is_file():
        raise BadInput(f"no DAG file {path}: give a config name (andon dag status --dag default) or an existing file")
    try:
        doc = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except (OSError, OmegaConfBaseException, ValueError) as exc:
        raise BadInput(f"DAG file {path} is not readable YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise BadInput(f"DAG file {path} must hold a mapping (name, nodes, ...)")
    defaults = doc.pop("defaults", [])
    extra = [d for d in defaults if d not in (SCHEMA_NAME, "_self_")]
    if extra:
        raise BadInput(f"DAG file {path} composes other configs ({extra}): put it in a config folder's dag/ "
                       f"directory and pass that folder with --config-dir, then --dag {path.stem}")
    return doc
