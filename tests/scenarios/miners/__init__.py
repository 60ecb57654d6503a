"""Tests of the rule-based miners (one file per miner module)."""
