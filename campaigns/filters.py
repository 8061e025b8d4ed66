"""django-filter filter sets for the campaign, member and list email recipient lists."""

from typing import Any

import django_filters
from django.db.models import Q, QuerySet

from campaigns.models import Campaign, CampaignMember, CampaignMemberStatus, ListEmailRecipient
from crm.filters import empty_choices_named, yes_no_filter
from crm.forms import style_widgets
from crm.listing import SearchFilter


class CampaignFilter(django_filters.FilterSet):
    q = SearchFilter(method="search", label="Search")
    is_active = yes_no_filter("Active")

    class Meta:
        model = Campaign
        fields = ["q", "type", "status", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        empty_choices_named(self.form)
        style_widgets(self.form.fields.values())

    def search(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        for word in value.split():
            queryset = queryset.filter(Q(name__icontains=word) | Q(description__icontains=word))
        return queryset


class MemberFilter(django_filters.FilterSet):
    q = SearchFilter(method="search", label="Search")
    status = django_filters.ModelChoiceFilter(
        queryset=CampaignMemberStatus.objects.none(), empty_label="Any status"
    )
    kind = django_filters.ChoiceFilter(
        method="of_kind",
        label="Type",
        choices=[("contact", "Contacts"), ("lead", "Leads")],
        empty_label="Contacts and leads",
    )
    has_responded = yes_no_filter("Responded")

    class Meta:
        model = CampaignMember
        fields = ["q", "status", "kind", "has_responded"]

    def __init__(self, *args: Any, campaign: Campaign, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters["status"].queryset = campaign.statuses.all()
        empty_choices_named(self.form)
        style_widgets(self.form.fields.values())

    def search(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        condition = Q()
        for word in value.split():
            any_field = Q()
            for field in ("first_name", "last_name", "email"):
                any_field |= Q(**{f"contact__{field}__icontains": word})
                any_field |= Q(**{f"lead__{field}__icontains": word})
            condition &= any_field
        return queryset.filter(condition)

    def of_kind(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(**{f"{value}__isnull": False}) if value else queryset


class RecipientFilter(django_filters.FilterSet):
    # The results in the table's words (campaigns.tables.RecipientTable.render_state).
    state = django_filters.ChoiceFilter(
        label="Result",
        choices=[
            ("queued", "Waiting"),
            ("sending", "Sending"),
            ("handed", "Sent (handed to delivery)"),
            ("skipped", "Skipped"),
            ("failed", "Failed"),
        ],
        empty_label="Any result",
    )

    class Meta:
        model = ListEmailRecipient
        fields = ["state"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        empty_choices_named(self.form)
        style_widgets(self.form.fields.values())
