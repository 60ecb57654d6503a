"""Tests of andon.gates."""
