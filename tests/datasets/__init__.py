"""Tests of andon.datasets: specs, materialisation, versions, validation and the CLI."""
