"""The bounds every list keeps, whatever its query string says: a page size among a few
choices, a page that exists, sort keys that name a sortable column, and a search of a few words.

Every list page configures its table with `table_configure` (or `BoundedTableMixin`) and every
search box is a `SearchField` (or `SearchFilter`), so a new list gets the bounds by using them.
"""

import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import django_filters
from django import forms
from django.core.paginator import EmptyPage
from django.forms import BoundField
from django.http import HttpRequest
from django_tables2 import SingleTableMixin, Table

PER_PAGE_CHOICES = (25, 50, 100)
DEFAULT_PER_PAGE = 25
# The query string's names a list reads for itself: they are not filters.
LIST_PARAMS = frozenset({"page", "per_page", "sort"})
TABLE_TEMPLATE = "django_tables2/openrate.html"

# SQLite refuses a WHERE clause deeper than 1,000 terms and a LIKE pattern past 50,000 bytes;
# a search of more words than a person types is not a search anyway.
SEARCH_MAX_WORDS = 10
SEARCH_MAX_CHARS = 200
SEARCH_CUT_NOTICE = (
    f"Search uses the first {SEARCH_MAX_WORDS} words and {SEARCH_MAX_CHARS} characters."
)


def page_size(value: str | None, default: int = DEFAULT_PER_PAGE) -> int:
    """The page size asked for if it is one of PER_PAGE_CHOICES, else `default`."""
    return next((size for size in PER_PAGE_CHOICES if value == str(size)), default)


def _page_number(value: str | None) -> int:
    """The page asked for; anything but a whole number is the first page (past the last page
    is dealt with once the count is known)."""
    if not value or not value.isascii() or not value.isdigit():
        return 1
    # int() refuses more than 4,300 digits; no list has that many pages.
    return max(1, int(value)) if len(value) <= 18 else sys.maxsize


def _sortable(table: Table, key: str) -> bool:
    name = key.removeprefix("-")
    return name in table.columns and table.columns[name].orderable


def table_configure(
    request: HttpRequest, table: Table, *, per_page: int = DEFAULT_PER_PAGE
) -> Table:
    """Sort and paginate `table` as the query string asks, within bounds: unknown sort keys are
    ignored (the table's default order stays), a page size not among PER_PAGE_CHOICES is
    `per_page`, a page past the last is the last and anything but a page number is the first."""
    assert per_page in PER_PAGE_CHOICES
    table.request = request
    table.template_name = TABLE_TEMPLATE
    table.page_sizes = PER_PAGE_CHOICES
    # One key per column (the first): a repeated parameter would only add ORDER BY terms.
    sort: dict[str, str] = {}
    for key in request.GET.getlist(table.prefixed_order_by_field):
        if _sortable(table, key):
            sort.setdefault(key.removeprefix("-"), key)
    if sort:
        table.order_by = list(sort.values())
    size = page_size(request.GET.get(table.prefixed_per_page_field), per_page)
    try:
        table.paginate(per_page=size, page=_page_number(request.GET.get(table.prefixed_page_field)))
    except EmptyPage:
        # A link to a page that no longer exists (rows were deleted since): its last page.
        table.page = table.paginator.page(table.paginator.num_pages)
    return table


class BoundedTableMixin(SingleTableMixin):
    """django-tables2's SingleTableMixin, its table configured by `table_configure`."""

    per_page = DEFAULT_PER_PAGE

    def get_table(self, **kwargs: Any) -> Table:
        table = self.get_table_class()(data=self.get_table_data(), **kwargs)
        return table_configure(self.request, table, per_page=self.per_page)


def ids_from(values: Iterable[str]) -> list[int]:
    """The ids among `values` (a list's ticked rows, a chosen record): whole numbers a primary
    key can hold. Anything else is left out: "²".isdigit() is true, for one."""
    return [
        int(value) for value in values if value.isascii() and value.isdigit() and len(value) <= 18
    ]


def filter_query(request: HttpRequest) -> str:
    """The query string's filters (without the page, its size or the sort), to carry them on."""
    return urlencode([(k, v) for k, v in request.GET.items() if k not in LIST_PARAMS and v])


def search_text(value: str) -> str:
    """What a search reads of `value`: its first SEARCH_MAX_WORDS words within its first
    SEARCH_MAX_CHARS characters."""
    return " ".join(value[:SEARCH_MAX_CHARS].split()[:SEARCH_MAX_WORDS])


class SearchField(forms.CharField):
    """A search box: what is typed past the bounds is left out, and the box's help text then
    says so."""

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        return {**super().widget_attrs(widget), "maxlength": str(SEARCH_MAX_CHARS)}

    def get_bound_field(self, form: forms.BaseForm, field_name: str) -> BoundField:
        bound = super().get_bound_field(form, field_name)
        typed = bound.data if form.is_bound and isinstance(bound.data, str) else ""
        if search_text(typed) != " ".join(typed.split()):
            bound.help_text = SEARCH_CUT_NOTICE
        return bound

    def clean(self, value: Any) -> str:
        return search_text(super().clean(value))


class SearchFilter(django_filters.CharFilter):
    """A filter set's search box, bounded as SearchField is."""

    field_class = SearchField
