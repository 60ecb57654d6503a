"""A node's code: the static import closure of its modules, and digests that only change when the code does."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import andon.dag.code as code_module
from andon.dag.code import MISSING, SourceIndex
from tests.conftest import REPO_ROOT
from tests.dag.helpers import make_package

MODEL = '''"""The model."""
import numpy as np

from PKG.util import helper


def build():
    from .lazy import later  # imported inside a function: still code the model runs
    return later, helper, np


TARGET = "PKG.plugins.extra.Extra"
'''


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    return make_package(tmp_path, {
        "model.py": MODEL,
        "util.py": "import PKG.deep.leaf\n\ndef helper():\n    return 1\n",
        "lazy.py": "later = 2\n",
        "deep/__init__.py": "",
        "deep/leaf.py": "import PKG.gone\nVALUE = 3\n",
        "plugins/__init__.py": "",
        "plugins/extra.py": "class Extra:\n    pass\n",
        "unused.py": "X = 1\n",
    }), tmp_path


def test_the_closure_follows_imports_lazy_imports_and_module_strings(pkg):
    name, _ = pkg
    index = SourceIndex([name])
    assert index.closure([f"{name}.model"]) == tuple(sorted(f"{name}.{m}" for m in (
        "model", "util", "lazy", "deep.leaf", "gone", "plugins.extra")))
    assert index.module(f"{name}.gone").digest == MISSING  # imported but absent: part of the code, as missing
    assert f"{name}.unused" not in index.closure([f"{name}.model"])
    assert not any(m.startswith("numpy") for m in index.closure([f"{name}.model"]))  # other packages: not followed


def test_digests_ignore_comments_docstrings_and_layout_but_not_code(pkg):
    name, root = pkg
    path = root / name / "util.py"
    before = SourceIndex([name]).digests([f"{name}.util"])
    path.write_text('"""Now documented."""\nimport PKG.deep.leaf  # a comment\n\n\n\ndef helper():\n'
                    '    """Returns one."""\n    return 1\n'.replace("PKG", name))
    assert SourceIndex([name]).digests([f"{name}.util"]) == before
    path.write_text(f"import {name}.deep.leaf\n\ndef helper():\n    return 2\n")
    after = SourceIndex([name]).digests([f"{name}.util"])
    assert after[f"{name}.util"] != before[f"{name}.util"]
    assert after[f"{name}.deep.leaf"] == before[f"{name}.deep.leaf"]


def test_an_unparsable_module_has_a_digest_of_its_bytes(pkg):
    name, root = pkg
    (root / name / "lazy.py").write_text("def broken(:\n")
    assert SourceIndex([name]).module(f"{name}.lazy").digest.startswith("unparsable:")


def test_the_parse_cache_is_content_addressed(pkg, tmp_path, monkeypatch):
    name, root = pkg
    cache = tmp_path / "cache.json"
    first = SourceIndex([name], cache=cache)
    digests = first.digests([f"{name}.model"])
    first.save()
    assert json.loads(cache.read_text())["entries"]

    def no_parsing(*args):
        raise AssertionError("parsed although cached")

    monkeypatch.setattr(code_module, "_parse_source", no_parsing)
    assert SourceIndex([name], cache=cache).digests([f"{name}.model"]) == digests
    monkeypatch.undo()
    monkeypatch.syspath_prepend(str(tmp_path))
    (root / name / "lazy.py").write_text("later = 3\n")  # new bytes: a cache miss, parsed again
    assert SourceIndex([name], cache=cache).digests([f"{name}.model"])[f"{name}.lazy"] != digests[f"{name}.lazy"]


def test_andons_own_closures_skip_the_schema_registry():
    index = SourceIndex()
    closure = index.closure(["andon.datasets.versions"])
    assert {"andon.datasets.versions", "andon.datasets.spec", "andon.errors", "andon.hydra_app"} <= set(closure)
    # hydra_app imports andon.config_schemas (which imports every schema module) inside a function:
    # following it would make every model depend on every module (the DAG's own code among them)
    assert "andon.config_schemas" not in closure and not any(m.startswith("andon.dag") for m in closure)
    assert "andon.dag.graph" not in index.closure(["andon.dag.spec"])
    assert index.path("andon.models.registry").name == "registry.py"
    assert index.path("andon.nope") is None


def test_hashing_code_imports_nothing_heavy():
    script = ("import sys\nfrom andon.dag.code import SourceIndex\n"
              "SourceIndex().digests(['andon.models.train', 'andon.models.tracker', 'andon.datasets.build'])\n"
              "print(sorted(m for m in ('torch', 'pytorch_lightning', 'ray', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
