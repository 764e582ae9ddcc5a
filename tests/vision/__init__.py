"""Tests of the vision encoder on real media (tests/data)."""
