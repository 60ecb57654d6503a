"""Content-addressed store of frame data: arrays as .npz, documents as JSON, named by their hash.

A blob is written to a temporary name and renamed, so a crash never leaves a half blob under a
real name; writing the same content twice is a no-op.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.ids import canonical_json, hash_arrays, sha256_text


class BlobStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, digest: str, suffix: str) -> Path:
        return self.root / digest[:2] / f"{digest}{suffix}"

    def put_arrays(self, arrays: dict[str, np.ndarray]) -> str:
        digest = hash_arrays(arrays)
        target = self.path(digest, ".npz")
        if not target.exists():
            self._write(target, lambda handle: np.savez(handle, **arrays))
        return digest

    def get_arrays(self, digest: str) -> dict[str, np.ndarray]:
        target = self.path(digest, ".npz")
        try:
            with np.load(target, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except FileNotFoundError as exc:
            raise BadInput(f"blob {digest} is missing from {self.root}: run `dvc pull` in the workspace") from exc
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise BadInput(f"blob {target} is corrupt ({exc}): run `dvc checkout` or re-import its log") from exc

    def put_json(self, obj: Any) -> str:
        text = canonical_json(obj)
        digest = sha256_text(text)
        target = self.path(digest, ".json")
        if not target.exists():
            self._write(target, lambda handle: handle.write(text.encode()))
        return digest

    def get_json(self, digest: str) -> Any:
        target = self.path(digest, ".json")
        try:
            return json.loads(target.read_text())
        except FileNotFoundError as exc:
            raise BadInput(f"blob {digest} is missing from {self.root}: run `dvc pull` in the workspace") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"blob {target} is corrupt ({exc}): run `dvc checkout` or re-import its log") from exc

    def verify(self, digest: str, suffix: str) -> bool:
        """Recompute a blob's hash; False when it is missing or its content no longer matches."""
        try:
            if suffix == ".json":
                return sha256_text(canonical_json(self.get_json(digest))) == digest
            return hash_arrays(self.get_arrays(digest)) == digest
        except BadInput:
            return False

    def _write(self, target: Path, write: Any) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
