"""Cursor pages for every API list: keyset pagination (WHERE key < last seen ORDER BY key),
so page 10,000 costs what page 1 does, and rows added meanwhile neither repeat nor vanish."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request

from crm.listing import DEFAULT_PER_PAGE, PER_PAGE_CHOICES, page_size


class RecordCursorPagination(CursorPagination):
    """Newest first by primary key (always indexed and unique) unless the list is ordered by
    another allowed column; `page_size` is one of crm.listing's sizes, as on the pages."""

    ordering = "-pk"
    page_size = DEFAULT_PER_PAGE
    page_size_query_param = "page_size"
    max_page_size = max(PER_PAGE_CHOICES)

    def get_page_size(self, request: Request) -> int:
        return page_size(request.query_params.get(self.page_size_query_param))

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        # A cursor is base64 the client can forge: a position that is no value of the ordering
        # column ("p=abc" for an id) is an invalid cursor (404), not a server error.
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError, ValidationError) as error:
            raise NotFound(self.invalid_cursor_message) from error
