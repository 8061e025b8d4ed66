"""django-filter filter sets for the record lists, the email list and "My tasks"."""

from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django_filters.conf import settings as filter_settings

from crm.forms import style_widgets
from crm.listing import SearchFilter
from crm.models import Account, Contact, EmailMessage, Lead, Opportunity, Task, User

# django-filter's empty choice (its EMPTY_CHOICE_LABEL setting, Django's "---------").
EMPTY_CHOICE_LABEL = filter_settings.EMPTY_CHOICE_LABEL


def empty_choices_named(form: forms.Form) -> None:
    """Each select's empty choice says what choosing it does ("Any status"), where Django and
    django-filter write "---------", which a user cannot read as "no filter"."""
    for field in form.fields.values():
        if getattr(field, "empty_label", None) == EMPTY_CHOICE_LABEL:
            label = str(field.label or "value")
            field.empty_label = f"Any {label[:1].lower()}{label[1:]}"  # type: ignore[attr-defined]
            # The widget's choices may iterate over a copy of the field (django-filter's
            # ChoiceIterator after the form's deepcopy): give it the field's own.
            field.widget.choices = field.choices  # type: ignore[attr-defined]


def owners_by_name(form: forms.BaseForm, name: str) -> None:
    """A user filter lists people by their name (User.display_name), in that order."""
    field = form.fields.get(name)
    if isinstance(field, forms.ModelChoiceField) and field.queryset is not None:
        field.queryset = field.queryset.order_by("first_name", "last_name", "username")
        field.label_from_instance = _display_name  # type: ignore[method-assign,assignment]


def _display_name(user: User) -> str:
    return user.display_name


def yes_no_filter(label: str, **kwargs: Any) -> django_filters.BooleanFilter:
    """A yes / no filter whose empty choice reads "Any" (django-filter's says "Unknown")."""
    choices = [("", "Any"), ("true", "Yes"), ("false", "No")]
    return django_filters.BooleanFilter(label=label, widget=forms.Select(choices=choices), **kwargs)


class RecordFilter(django_filters.FilterSet):
    """A free-text search over `search_fields` (each word in any of them), and an owner filter
    for those who see everyone's."""

    search_fields: tuple[str, ...] = ()

    q = SearchFilter(method="search", label="Search")
    owner = django_filters.ModelChoiceFilter(queryset=User.objects.none(), label="Owner")

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if user.sees_all_records:
            self.filters["owner"].queryset = User.objects.filter(is_active=True)
        else:
            del self.filters["owner"]
        owners_by_name(self.form, "owner")
        empty_choices_named(self.form)
        style_widgets(self.form.fields.values())

    def search(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        condition = Q()
        for word in value.split():
            any_field = Q()
            for field in self.search_fields:
                any_field |= Q(**{f"{field}__icontains": word})
            condition &= any_field
        return queryset.filter(condition)


class QuietFilter(django_filters.FilterSet):
    """ "No activity for N+ days", read from the stored metrics (as the Days quiet column is)."""

    quiet = django_filters.ChoiceFilter(
        label="No activity for",
        empty_label="Any time",
        choices=[(str(days), f"{days}+ days") for days in (7, 14, 30, 60, 90)],
        method="filter_quiet",
    )

    def filter_quiet(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(activity__inactive_days__gte=int(value))


class AccountFilter(RecordFilter, QuietFilter):
    search_fields = ("name", "billing_city", "website")
    is_person_account = yes_no_filter("Person account")

    class Meta:
        model = Account
        fields = ["q", "industry", "is_person_account", "quiet", "owner"]


class ContactFilter(RecordFilter, QuietFilter):
    search_fields = ("first_name", "last_name", "email", "title", "account__name")
    has_opted_out_of_email = yes_no_filter("Email Opt Out")

    class Meta:
        model = Contact
        fields = ["q", "has_opted_out_of_email", "quiet", "owner"]


class LeadFilter(RecordFilter, QuietFilter):
    search_fields = ("first_name", "last_name", "email", "company")

    class Meta:
        model = Lead
        fields = ["q", "status", "lead_source", "quiet", "owner"]


class OpportunityFilter(RecordFilter):
    search_fields = ("name", "account__name")

    class Meta:
        model = Opportunity
        fields = ["q", "stage", "owner"]


class TaskFilter(RecordFilter):
    search_fields = ("subject", "description")

    class Meta:
        model = Task
        fields = ["q", "status", "priority", "subtype", "owner"]


class EmailFilter(RecordFilter):
    search_fields = ("subject", "to_addresses", "from_address")
    owner = django_filters.ModelChoiceFilter(
        queryset=User.objects.none(), label="Sender", field_name="sender"
    )
    opened = yes_no_filter("Opened", field_name="is_opened")
    clicked = django_filters.BooleanFilter(
        label="Clicked",
        method="filter_clicked",
        widget=forms.Select(choices=[("", "Any"), ("true", "Yes"), ("false", "No")]),
    )
    bounced = yes_no_filter("Bounced", field_name="is_bounced")
    sent_after = django_filters.DateFilter(
        field_name="message_date",
        lookup_expr="date__gte",
        label="Sent from",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    sent_before = django_filters.DateFilter(
        field_name="message_date",
        lookup_expr="date__lte",
        label="Sent to",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = EmailMessage
        fields = ["q", "delivery_status", "owner"]

    def filter_clicked(
        self, queryset: QuerySet[Any], name: str, value: bool | None
    ) -> QuerySet[Any]:
        if value is None:
            return queryset
        return queryset.filter(times_clicked__gt=0) if value else queryset.filter(times_clicked=0)


class MyTaskFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(
        label="Why",
        empty_label="Follow-ups and alerts",
        choices=[(k.value, k.label) for k in (Task.Kind.FOLLOW_UP, Task.Kind.ENGAGEMENT_ALERT)],
    )

    class Meta:
        model = Task
        fields = ["kind"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        empty_choices_named(self.form)
        style_widgets(self.form.fields.values())
