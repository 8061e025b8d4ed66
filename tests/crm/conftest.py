"""Fixtures crm's tests borrow from other folders."""

from tests.tracking.conftest import smtp_server  # noqa: F401 -- a fixture
