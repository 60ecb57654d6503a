"""Label-QA: checks on boxes and tracks, and the per-scenario score they give."""
