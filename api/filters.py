"""The API's list filters where the pages have none to reuse (recipients, events, members,
metrics; emails and campaigns use crm.filters and campaigns.filters), and keyset ordering."""

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django_filters.fields import IsoDateTimeField
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request

from campaigns.models import CampaignMember
from crm.models import ActivityMetric, EmailMessageRelation
from tracking.models import TrackingEvent


class KeysetOrdering(OrderingFilter):
    """The client's ordering (one of the view's `ordering_fields`), then the primary key the same
    way: rows that tie on the first field keep one order from page to page, so a cursor neither
    repeats nor skips them."""

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> list[str]:
        ordering = list(super().get_ordering(request, queryset, view) or [])[:1]
        if not ordering:
            return ["-id"]
        first = ordering[0]
        if first.lstrip("-") in ("id", "pk"):
            return ["-id" if first.startswith("-") else "id"]
        return [first, "-id" if first.startswith("-") else "id"]


class IdFilter(django_filters.NumberFilter):
    """A row's id: a whole number within a bigint, else a 400 (never a database error)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, min_value=1, max_value=2**63 - 1, **kwargs)


class RecipientFilter(django_filters.FilterSet):
    """An email's recipients, as the email page lists them."""

    email = IdFilter(field_name="email_id")
    contact = IdFilter(field_name="contact_id")
    lead = IdFilter(field_name="lead_id")
    opened = django_filters.BooleanFilter(method="filter_opened")
    clicked = django_filters.BooleanFilter(method="filter_clicked")
    bounced = django_filters.BooleanFilter(
        field_name="bounced_at", lookup_expr="isnull", exclude=True
    )
    replied = django_filters.BooleanFilter(
        field_name="replied_at", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = EmailMessageRelation
        fields = ["email", "contact", "lead", "relation_type", "delivery_status", "is_tracked"]

    def filter_opened(
        self, queryset: QuerySet[Any], name: str, value: bool | None
    ) -> QuerySet[Any]:
        # Opened as the email page says it: a human open, or a human click (images blocked).
        return _either(queryset, Q(human_opens__gt=0) | Q(human_clicks__gt=0), value)

    def filter_clicked(
        self, queryset: QuerySet[Any], name: str, value: bool | None
    ) -> QuerySet[Any]:
        return _either(queryset, Q(human_clicks__gt=0), value)


def _either(queryset: QuerySet[Any], condition: Q, value: bool | None) -> QuerySet[Any]:
    """The rows meeting `condition` (True), those not meeting it (False), or all (None)."""
    if value is None:
        return queryset
    return queryset.filter(condition) if value else queryset.exclude(condition)


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, as UTC: an offset Python accepts but PostgreSQL does not (beyond
    15:59, e.g. -20:48) must not reach the query, and a time no offset can move into range is
    refused like any other bad value."""

    def to_python(self, value: Any) -> datetime | None:
        result = super().to_python(value)
        if result is None or result.tzinfo is None:
            return result
        try:
            return result.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Enter a date and time in range.", code="invalid") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class EventFilter(django_filters.FilterSet):
    """Tracking events by email, recipient, kind, label and time."""

    email = IdFilter(field_name="relation__email_id")
    recipient = IdFilter(field_name="relation_id")
    occurred_after = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = TrackingEvent
        fields = ["email", "recipient", "kind", "label", "internal"]


def _of_kind(queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
    return queryset.filter(**{f"{value}__isnull": False}) if value else queryset


def kind_filter(*kinds: str) -> django_filters.ChoiceFilter:
    """Rows of one kind of record: those whose foreign key of that name is set."""
    return django_filters.ChoiceFilter(
        method=_of_kind, choices=[(kind, kind.title()) for kind in kinds]
    )


class MemberFilter(django_filters.FilterSet):
    """A campaign's members (campaigns.filters.MemberFilter): by status, kind, responded."""

    campaign = IdFilter(field_name="campaign_id")
    status = IdFilter(field_name="status_id")
    contact = IdFilter(field_name="contact_id")
    lead = IdFilter(field_name="lead_id")
    kind = kind_filter("contact", "lead")

    class Meta:
        model = CampaignMember
        fields = ["campaign", "status", "contact", "lead", "kind", "has_responded"]


class MetricFilter(django_filters.FilterSet):
    """Activity metrics of one record, or of one kind of record."""

    contact = IdFilter(field_name="contact_id")
    lead = IdFilter(field_name="lead_id")
    account = IdFilter(field_name="account_id")
    opportunity = IdFilter(field_name="opportunity_id")
    kind = kind_filter("contact", "lead", "account", "opportunity")
    inactive_days_min = django_filters.NumberFilter(
        field_name="inactive_days", lookup_expr="gte", min_value=0, max_value=2**31 - 1
    )

    class Meta:
        model = ActivityMetric
        fields = ["contact", "lead", "account", "opportunity", "kind"]
