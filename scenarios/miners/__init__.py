"""Rule-based miners that tag windows of logs (one module per miner)."""
