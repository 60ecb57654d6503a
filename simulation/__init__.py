"""The synthetic fleet and the log-replay simulator."""
