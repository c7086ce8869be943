"""The app-channel fixtures (tests/support/apps.py) for test_app_stateful.py."""

from tests.support.apps import app_domain, apps, sla  # noqa: F401 (fixtures)
