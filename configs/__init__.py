"""Hydra configs, shipped as package data (pkg://andon.configs)."""
