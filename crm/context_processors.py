"""Values every page's navigation shows."""

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from crm.models import Task


def my_task_count(request: HttpRequest) -> dict[str, Any]:
    """How many open follow-ups and alerts the user has: one query, only if a page shows it."""
    user = request.user

    def count() -> int:
        return Task.objects.filter(owner_id=user.pk).open().exclude(kind=Task.Kind.REGULAR).count()

    return {"my_task_count": SimpleLazyObject(count)}
