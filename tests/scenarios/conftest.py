"""Fixtures of the scenario tests."""

import pytest


@pytest.fixture(autouse=True)
def _quiet_reverts(no_source_tracebacks):
    """Every scenario runs without Ape's source tracebacks (tests/conftest.py): the reasons suffice."""
