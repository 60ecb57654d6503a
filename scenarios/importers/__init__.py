"""Importers of real driving-data formats.

Each importer module has NAME, VERSION and `read(path) -> list[ImportedLog]`; it maps the source's
classes onto andon's (documented in the module), converts frames and units, and raises BadInput naming
the file and the problem for any bad input. It never writes: the catalog validates and stores.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from andon.errors import BadInput

FORMATS: dict[str, str] = {
    "av2": "andon.scenarios.importers.av2_sensor",
    "kitti": "andon.scenarios.importers.kitti",
    "nuscenes": "andon.scenarios.importers.nuscenes",
    "eth-ucy": "andon.scenarios.importers.eth_ucy",
    "av2-forecasting": "andon.scenarios.importers.av2_forecasting",
    "commonroad": "andon.scenarios.importers.commonroad",
}


def importer(fmt: str) -> ModuleType:
    if fmt not in FORMATS:
        raise BadInput(f"unknown import format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return importlib.import_module(FORMATS[fmt])
