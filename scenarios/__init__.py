"""Logs, scenarios and the catalog that holds them (the fleet-data curator's domain)."""

from andon.scenarios.catalog import Catalog, NewScenario
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import CLASSES, Frame, Log, Provenance, RoadMap, Scenario

__all__ = ["CLASSES", "Catalog", "Frame", "ImportedLog", "Log", "NewScenario", "Provenance", "RoadMap", "Scenario"]
