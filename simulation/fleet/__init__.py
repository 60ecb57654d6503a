"""The synthetic fleet: road networks, scripted agents, ray-cast lidar and realistic label errors."""
