"""The API's list filters are the list pages' own filter sets (crm.filters): the same names,
the same bounded search, the owner filter only for those who see everyone's records."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.request import Request

from crm.filters import RecordFilter


class RecordFilterBackend(DjangoFilterBackend):
    """django-filter's DRF backend, giving a record filter set (crm.filters.RecordFilter) its
    user as the pages do; any other filter set is built as django-filter builds it."""

    def get_filterset_kwargs(
        self, request: Request, queryset: QuerySet[Any], view: Any
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = super().get_filterset_kwargs(request, queryset, view)
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and issubclass(filterset_class, RecordFilter):
            kwargs["user"] = request.user
        return kwargs
