"""The code a node depends on: the import closure of its root modules, found statically with `ast`.

A node's code is not a version someone remembers to bump (Dagster's code_version): it is every module
of the configured packages (`andon` by default) that its root modules import, directly or through
other modules, including imports inside functions and module names spelled as strings
(`importlib.import_module("andon.datasets.features")`). Nothing is imported to find them: sources
are read and parsed, so fingerprinting never loads torch or ray.

Each module's digest is the SHA-256 of its syntax tree without docstrings, line numbers or comments:
reformatting a file or editing a comment does not retrain a model; any change to what runs does.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import sys
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

MISSING = "missing"
# Modules that only gather others (the schema registry, the CLI) and the DAG's own machinery: a custom
# runner importing andon.dag would otherwise pull every module the default runners import lazily.
DEFAULT_IGNORE: tuple[str, ...] = ("andon.config_schemas", "andon.cli", "andon.__main__", "andon.dag")
_MODULE_TEXT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


@dataclass(frozen=True, slots=True)
class ModuleSource:
    """One module as the fingerprint sees it.

    Attributes:
        name: dotted module name.
        path: its source file (None when it cannot be found).
        digest: SHA-256 of its normalised syntax tree; `missing` when there is no source;
            `unparsable:<sha256 of the bytes>` for a file Python cannot parse.
        imports: the in-scope modules it imports (whether or not they exist).
    """

    name: str
    path: Path | None
    digest: str
    imports: tuple[str, ...]


class SourceIndex:
    """Finds, parses and hashes the modules of some packages; every result is cached.

    Args:
        packages: the top-level packages whose modules count as code (`andon`). Imports of other
            packages (numpy, torch) are not followed: their versions are pinned by the environment.
        ignore: modules (and packages, with their modules) that are neither hashed nor followed: those
            that only gather others (the Hydra schema registry, the CLI), whose closure is every
            module, and the DAG's own machinery, which runs models but is not part of one.
        cache: a JSON file remembering each parsed file's digest and imports by the SHA-256 of its
            bytes (content-addressed, so never stale); parsing ~50 modules costs ~0.3 s otherwise.
    """

    def __init__(self, packages: Sequence[str] = ("andon",), ignore: Sequence[str] = DEFAULT_IGNORE,
                 cache: Path | None = None) -> None:
        self.packages = tuple(packages)
        self.ignore = frozenset(ignore)
        self._paths: dict[str, Path | None] = {}
        self._modules: dict[str, ModuleSource] = {}
        self._closures: dict[str, tuple[str, ...]] = {}
        self._cache_path = cache
        self._cache: dict[str, dict[str, object]] = _read_cache(cache)
        self._cache_dirty = False

    def in_scope(self, module: str) -> bool:
        def under(prefixes: Iterable[str]) -> bool:
            return any(module == p or module.startswith(p + ".") for p in prefixes)

        return under(self.packages) and not under(self.ignore)

    def path(self, module: str) -> Path | None:
        """The module's source file, found without importing it (only its top-level package is)."""
        if module not in self._paths:
            self._paths[module] = _locate(module)
        return self._paths[module]

    def module(self, name: str) -> ModuleSource:
        """The module's digest and in-scope imports (parsed once)."""
        found = self._modules.get(name)
        if found is None:
            found = self._parse(name)
            self._modules[name] = found
        return found

    def closure(self, roots: Iterable[str]) -> tuple[str, ...]:
        """The roots and every in-scope module they import, transitively; sorted."""
        modules: set[str] = set()
        for root in roots:
            if root not in self._closures:
                self._closures[root] = self._closure_of(root)
            modules.update(self._closures[root])
        return tuple(sorted(modules))

    def digests(self, roots: Iterable[str]) -> dict[str, str]:
        """{module: digest} over the closure of `roots`."""
        return {name: self.module(name).digest for name in self.closure(roots)}

    def _closure_of(self, root: str) -> tuple[str, ...]:
        seen = {root}
        queue = deque([root])
        while queue:
            for imported in self.module(queue.popleft()).imports:
                if imported not in seen:
                    seen.add(imported)
                    queue.append(imported)
        return tuple(sorted(seen))

    def save(self) -> None:
        """Write the parse cache if it learned anything (atomically: temp file, then rename)."""
        if self._cache_path is None or not self._cache_dirty:
            return
        with contextlib.suppress(OSError):  # a read-only workspace only loses the speed-up
            self._cache_path.parent.mkdir(parents=True, exist_ok=True)
            temp = self._cache_path.with_name(f"{self._cache_path.name}.{os.getpid()}.tmp")
            temp.write_text(json.dumps({"python": _PYTHON, "entries": self._cache}, sort_keys=True))
            temp.replace(self._cache_path)
            self._cache_dirty = False

    def _parse(self, name: str) -> ModuleSource:
        path = self.path(name)
        if path is None:
            return ModuleSource(name, None, MISSING, ())
        data = path.read_bytes()
        key = f"{name}:{hashlib.sha256(data).hexdigest()}"
        entry = self._cache.get(key)
        if entry is None:
            entry = _parse_source(data, name, path)
            self._cache[key] = entry
            self._cache_dirty = True
        certain, maybe = entry["certain"], entry["maybe"]
        found = {m for m in certain if self.in_scope(m)}  # named as modules: kept even when missing
        found.update(m for m in maybe if self.in_scope(m) and self.path(m) is not None)  # kept when modules
        # module-like strings count only when they name a module file: a string naming a package
        # ("andon.scenarios" in a list of packages) is data, not an import
        found.update(m for m in entry.get("strings", ()) if self.in_scope(m) and _is_module_file(self.path(m)))
        found.discard(name)
        return ModuleSource(name, path, str(entry["digest"]), tuple(sorted(found)))


# syntax-tree dumps differ between Python versions; the suffix is the cache entries' format
_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}/2"


def _read_cache(path: Path | None) -> dict[str, dict[str, object]]:
    if path is None or not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc.get("entries", {}) if isinstance(doc, dict) and doc.get("python") == _PYTHON else {}


def _parse_source(data: bytes, module: str, path: Path) -> dict[str, object]:
    """{digest, certain, maybe}: the digest and the module names the source imports (see _imports)."""
    try:
        tree = ast.parse(data, filename=str(path))
    except (SyntaxError, ValueError):
        return {"digest": "unparsable:" + hashlib.sha256(data).hexdigest(), "certain": [], "maybe": [], "strings": []}
    certain, maybe, strings = _imports(tree, module, path.name == "__init__.py")
    return {"digest": _tree_digest(tree), "certain": sorted(certain), "maybe": sorted(maybe),
            "strings": sorted(strings)}


def _is_module_file(path: Path | None) -> bool:
    return path is not None and path.name != "__init__.py"


def _imports(tree: ast.Module, module: str, is_package: bool) -> tuple[set[str], set[str], set[str]]:
    """Module names a source imports: (certain, maybe, strings).

    `certain` are named as modules by import statements (a missing one is a change worth reporting);
    `maybe` are `from X import name` candidates, modules only if they exist; `strings` are
    module-like string constants (`importlib.import_module("andon.x")`, `_target_` paths).
    """
    certain: set[str] = set()
    maybe: set[str] = set()
    strings: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            certain.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.module, node.level)
            if base is None:
                continue
            certain.add(base)
            maybe.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_TEXT.match(node.value):
            # "andon.x.y" may name a module, or an attribute of one (a `_target_`-style path)
            strings.update((node.value, node.value.rsplit(".", 1)[0]))
    return certain, maybe, strings


def _absolute(module: str, is_package: bool, target: str | None, level: int) -> str | None:
    """The absolute name of `from <level dots><target> import ...` inside `module`."""
    if level == 0:
        return target
    package = module if is_package else module.rpartition(".")[0]
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return None
    base = parts[:len(parts) - (level - 1)]
    if target:
        base.append(target)
    return ".".join(base) or None


def _locate(module: str) -> Path | None:
    """The source file of `module`, importing at most its top-level package.

    `find_spec("a.b")` imports `a` only, and knows where an installed package maps `a.b` (andon's
    sub-packages live in top-level folders); deeper modules are looked up on disk from there.
    """
    parts = module.split(".")
    head = ".".join(parts[:2])
    try:
        spec = importlib.util.find_spec(head)
    except (ImportError, ValueError, AttributeError):
        return None
    if spec is None:
        return None
    if len(parts) <= 2:
        origin = Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
        return origin if origin is not None and origin.is_file() else None
    for base in spec.submodule_search_locations or ():
        folder = Path(base).joinpath(*parts[2:-1])
        for candidate in (folder / f"{parts[-1]}.py", folder / parts[-1] / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _tree_digest(tree: ast.Module) -> str:
    """SHA-256 of the syntax tree without docstrings (line numbers and comments are not in a dump)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()
