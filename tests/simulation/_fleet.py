"""Shared fixtures of the fleet tests: small, fast configs (the lidar only where a test is about it)."""

from __future__ import annotations

from andon.simulation.fleet.config import FleetConfig

# Labels and behaviours only: no lidar.
NO_LIDAR = FleetConfig(with_lidar=False)
# A coarse lidar: 16 beams x 360 azimuths, enough to see boxes at a few tens of metres.
SMALL_LIDAR = FleetConfig(lidar_beams=16, lidar_azimuth_steps=360)
