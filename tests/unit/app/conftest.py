"""The app-channel fixtures (tests/support/apps.py)."""

from tests.support.apps import (  # noqa: F401 (fixtures)
    app_domain,
    apps,
    both,
    move,
    open_app,
    register,
    sign_app,
    sla,
    sla_data,
)
