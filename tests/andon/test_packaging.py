"""The wheel holds every sub-package and every config file, mapped under `andon.`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE_DIRS = {"andon": "andon", "andon/scenarios": "scenarios", "andon/scenarios/importers": "scenarios/importers",
                "andon/scenarios/miners": "scenarios/miners", "andon/scenarios/qa": "scenarios/qa",
                "andon/simulation/fleet": "simulation/fleet",
                "andon/datasets": "datasets", "andon/models": "models", "andon/dag": "dag",
                "andon/test_suites": "test_suites", "andon/simulation": "simulation", "andon/gates": "gates",
                "andon/configs": "configs"}


@pytest.mark.slow
def test_wheel_contains_every_package_module_and_yaml(tmp_path):
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(REPO_ROOT)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("andon-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for installed, source in PACKAGE_DIRS.items():
        for module in (REPO_ROOT / source).glob("*.py"):
            assert f"{installed}/{module.name}" in names, f"{module} missing from the wheel"
    for yaml in (REPO_ROOT / "configs").rglob("*.yaml"):
        assert f"andon/configs/{yaml.relative_to(REPO_ROOT / 'configs')}" in names
    assert not any(n.startswith(("scenarios/", "datasets/", "models/", "tests/")) for n in names)


def test_every_source_package_is_mapped_in_pyproject():
    """A new sub-package folder must be added to pyproject's package-dir, or it silently drops out."""
    text = (REPO_ROOT / "pyproject.toml").read_text()
    for init in REPO_ROOT.glob("*/**/__init__.py"):
        rel = init.parent.relative_to(REPO_ROOT)
        if rel.parts[0] in {"tests", ".venv", "build", "andon-workspace"} or rel.parts[0].startswith("."):
            continue
        assert f'"{rel.as_posix()}"' in text or rel.as_posix() == "andon", f"{rel} is not mapped in pyproject.toml"


def test_imports_go_through_andon():
    for py in REPO_ROOT.glob("*/**/*.py"):
        if py.parts[len(REPO_ROOT.parts)] in {".venv", "build"}:
            continue
        text = py.read_text()
        for bare in ("scenarios", "datasets", "models", "dag", "gates", "simulation", "test_suites"):
            assert f"\nimport {bare}" not in text and f"\nfrom {bare} " not in text and f"\nfrom {bare}." not in text, py
    assert Path(REPO_ROOT / "andon" / "__main__.py").is_file()
