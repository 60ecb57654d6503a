"""The synthetic fleet: road networks, scripted agents, ray-cast lidar and realistic label errors.

`synthesize_log(seed)` gives one log, `synthesize_fleet(catalog, n_logs, seed)` adds many to a catalog;
`raycast_sweep` re-ray-casts a log's recorded scene (meta["scene"], `StaticScene.from_meta`) at any ego
pose. What each behaviour tag means exactly: andon.simulation.fleet.behaviours.
"""

from andon.simulation.fleet.config import FleetConfig
from andon.simulation.fleet.lidar import raycast_sweep
from andon.simulation.fleet.scene import StaticScene
from andon.simulation.fleet.synth import fleet_seeds, synthesize_fleet, synthesize_log

__all__ = ["FleetConfig", "StaticScene", "fleet_seeds", "raycast_sweep", "synthesize_fleet", "synthesize_log"]
