"""The model DAG: fingerprints, staleness and ordered retraining."""
