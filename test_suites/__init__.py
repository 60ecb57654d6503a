"""Scenario test suites and their runner."""
