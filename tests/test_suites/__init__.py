"""Tests of andon.test_suites (scenario test suites)."""
