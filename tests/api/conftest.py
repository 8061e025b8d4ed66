"""API clients: a Django test client sending a user's personal token as a Bearer header."""

from collections.abc import Callable

import pytest
from django.test import Client

from api.tokens import token_create
from crm.models import User


@pytest.fixture
def api_for() -> Callable[[User], Client]:
    def make(user: User) -> Client:
        _, text = token_create(user=user, name="tests")
        return Client(headers={"Authorization": f"Bearer {text}"})

    return make
