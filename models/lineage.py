"""What a trained model records about where it came from: code version, config hash, flat params.

- `code_version()`: SHA-256 over the andon package's source files (Python and YAML, by package and
  relative path), computed once per process. Any edit to the code that trains a model changes it.
- `config_hash(config)`: SHA-256 of the canonical JSON of the parts of a resolved train config that
  change the trained weights (the dataset *version*, not the reference that found it; not the
  workspace path, output switches or the progress bar).
- `flatten(config)`: `a.b.c -> value` strings for MLflow params.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from andon.ids import hash_json

# The sub-packages of `andon` (DESIGN.md's top-level folders, mapped in pyproject.toml).
SUBPACKAGES: tuple[str, ...] = ("andon", "andon.scenarios", "andon.datasets", "andon.models", "andon.dag",
                                "andon.test_suites", "andon.simulation", "andon.gates", "andon.configs")
SOURCE_SUFFIXES: tuple[str, ...] = (".py", ".yaml")
# Keys of the train config that do not change the trained weights.
NOT_HASHED: tuple[str, ...] = ("workspace", "json", "register", "baseline_validation", "dataset_ref")
NOT_HASHED_TRAINER: tuple[str, ...] = ("enable_progress_bar", "num_workers", "log_every_n_steps")


def _package_dirs() -> dict[str, Path]:
    """Each sub-package's directory, found without importing it (only `andon` itself is imported)."""
    dirs = {}
    for name in SUBPACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            dirs[name] = Path(next(iter(spec.submodule_search_locations)))
    return dirs


@cache
def code_version() -> str:
    """SHA-256 over every source file of the andon package (name and bytes, in a fixed order)."""
    digest = hashlib.sha256()
    dirs = _package_dirs()
    for package, directory in sorted(dirs.items()):
        # An installed (non-editable) andon nests its sub-packages inside andon/: hash each file once.
        nested = {d for name, d in dirs.items() if name != package and d != directory}
        files = sorted(p for p in directory.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file()
                       and "__pycache__" not in p.parts and not any(n in p.parents for n in nested))
        for path in files:
            digest.update(f"{package}/{path.relative_to(directory).as_posix()}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def hashed_config(config: Mapping[str, Any], dataset_id: str) -> dict[str, Any]:
    """The parts of a resolved train config (plain data) that change the trained weights."""
    kept = {key: value for key, value in config.items() if key not in NOT_HASHED}
    if isinstance(kept.get("trainer"), Mapping):
        kept["trainer"] = {k: v for k, v in kept["trainer"].items() if k not in NOT_HASHED_TRAINER}
    kept["dataset_id"] = dataset_id
    kept["code_version"] = code_version()
    return kept


def config_hash(config: Mapping[str, Any], dataset_id: str) -> str:
    """SHA-256 of `hashed_config` (checkpoints of equal hashes are the same training, resumable)."""
    return hash_json(hashed_config(config, dataset_id))


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {"a.b": "value"} (lists as their JSON-ish repr), for MLflow params."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat
