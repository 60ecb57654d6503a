"""Small helpers shared by the importers: refusing bad files and frame conversions."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.scenarios.records import wrap_angle
from andon.scenarios.transforms import world_to_ego_xy

__all__ = ["load_pickle", "read_float32_records", "require_file", "require_finite", "world_to_ego_xy",
           "yaw_from_quaternion"]


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise BadInput(f"{path}: missing {what}; check the path points at the dataset's files")
    return path


def require_finite(path: Path, name: str, values: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise BadInput(f"{path}: {name} holds NaN or infinite values")
    return values


def yaw_from_quaternion(qw: np.ndarray, qx: np.ndarray, qy: np.ndarray, qz: np.ndarray) -> np.ndarray:
    """Heading (rotation about +z) of unit quaternions, wrapped into (-pi, pi]."""
    return wrap_angle(np.arctan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz)))


# The only globals a dataset index pickle (e.g. mmdetection3d's info files) may name: numpy scalars,
# arrays and dtypes. Anything else could run code while loading, so it is refused.
_PICKLE_GLOBALS = {
    ("numpy", "dtype"), ("numpy", "ndarray"), ("_codecs", "encode"),
    ("numpy.core.multiarray", "scalar"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy._core.multiarray", "_reconstruct"),
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a data file has no need of")
        return super().find_class(module, name)


def load_pickle(path: Path, what: str) -> Any:
    """Load a pickle of plain data (dicts, lists, numbers, numpy arrays), refusing any other global.

    Raises:
        BadInput: the file is missing, truncated, not a pickle, or names a non-data global.
    """
    require_file(path, what)
    try:
        with path.open("rb") as handle:
            return _DataUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError, UnicodeDecodeError, MemoryError) as exc:
        raise BadInput(f"{path}: not a readable {what} ({type(exc).__name__}: {exc}); "
                       f"check the file is complete and is the dataset's index pickle") from exc


def read_float32_records(path: Path, n_columns: int, what: str) -> np.ndarray:
    """Read a headerless little-endian float32 file of `n_columns`-wide records as (N, n_columns).

    Raises:
        BadInput: the file is missing, its size is not a whole number of records, or a value is not finite.
    """
    require_file(path, what)
    record_bytes = 4 * n_columns
    size = path.stat().st_size
    if size % record_bytes:
        raise BadInput(f"{path}: {size} bytes is not a whole number of {n_columns}-float32 records "
                       f"({record_bytes} bytes each); the {what} is truncated or has another layout")
    values = np.fromfile(path, dtype="<f4").reshape(-1, n_columns)
    return require_finite(path, what, values)
