"""django-tables2 tables for the record lists, the email list and "My tasks"."""

from decimal import Decimal

import django_tables2 as tables
from django.template.defaultfilters import floatformat

from crm.models import Account, Contact, EmailMessage, Lead, Opportunity, Task

# An owner is shown by name (User.display_name) and sorted the same way.
_BY_OWNER = ("owner__first_name", "owner__last_name", "owner__username")


class ActivityColumns(tables.Table):
    """A record's activity metrics as sortable columns; the list selects the metric row with it."""

    last_activity = tables.DateTimeColumn(
        accessor="activity__last_activity_at", verbose_name="Last activity", format="DATE_FORMAT"
    )
    inactive_days = tables.Column(accessor="activity__inactive_days", verbose_name="Days quiet")
    emails_sent_30d = tables.Column(accessor="activity__emails_sent_30d", verbose_name="Sent 30d")
    human_opens_30d = tables.Column(accessor="activity__human_opens_30d", verbose_name="Opens 30d")

    class Meta:
        abstract = True


class AccountTable(ActivityColumns):
    name = tables.Column(linkify=True)
    owner = tables.Column(accessor="owner__display_name", verbose_name="Owner", order_by=_BY_OWNER)

    class Meta:
        model = Account
        fields = ["name", "industry", "billing_city", "phone", "owner"]
        sequence = ["name", "industry", "billing_city", "phone", "...", "owner"]
        empty_text = "No accounts match."


class SelectColumn(tables.Table):
    """Tick boxes, so the ticked rows can be added to a campaign."""

    select = tables.CheckBoxColumn(
        accessor="pk", attrs={"th__input": {"aria-label": "Select all", "data-select-all": ""}}
    )

    class Meta:
        abstract = True


class ContactTable(SelectColumn, ActivityColumns):
    name = tables.Column(
        linkify=True,
        accessor="last_name",
        order_by=("last_name", "first_name"),
        verbose_name="Name",
    )
    account = tables.Column(linkify=True)
    owner = tables.Column(accessor="owner__display_name", verbose_name="Owner", order_by=_BY_OWNER)

    class Meta:
        model = Contact
        fields = ["name", "title", "account", "email", "phone", "owner"]
        sequence = ["select", "name", "title", "account", "email", "phone", "...", "owner"]
        empty_text = "No contacts match."

    def render_name(self, record: Contact) -> str:
        return record.name


class LeadTable(SelectColumn, ActivityColumns):
    name = tables.Column(
        linkify=True,
        accessor="last_name",
        order_by=("last_name", "first_name"),
        verbose_name="Name",
    )
    owner = tables.Column(accessor="owner__display_name", verbose_name="Owner", order_by=_BY_OWNER)

    class Meta:
        model = Lead
        fields = ["name", "company", "email", "status", "owner"]
        sequence = ["select", "name", "company", "email", "status", "...", "owner"]
        empty_text = "No leads match."

    def render_name(self, record: Lead) -> str:
        return record.name


class OpportunityTable(tables.Table):
    name = tables.Column(linkify=True)
    account = tables.Column(linkify=True)
    amount = tables.Column(attrs={"td": {"class": "text-end"}, "th": {"class": "text-end"}})
    owner = tables.Column(accessor="owner__display_name", verbose_name="Owner", order_by=_BY_OWNER)

    class Meta:
        model = Opportunity
        fields = ["name", "account", "stage", "amount", "probability", "close_date", "owner"]
        empty_text = "No opportunities match."

    def render_amount(self, value: Decimal) -> str:
        return floatformat(value, "2g")  # 103,000.00, as the record page writes it


class TaskTable(tables.Table):
    subject = tables.Column(linkify=True)
    who = tables.Column(
        accessor="who", verbose_name="Name", orderable=False, linkify=lambda value: value
    )
    owner = tables.Column(
        accessor="owner__display_name", verbose_name="Assigned to", order_by=_BY_OWNER
    )

    class Meta:
        model = Task
        fields = ["subject", "status", "priority", "subtype", "due_date", "who", "owner"]
        empty_text = "No tasks match."


class EmailTable(tables.Table):
    subject = tables.Column(linkify=True, verbose_name="Subject")
    sender = tables.Column(accessor="sender__username", verbose_name="From")
    message_date = tables.DateTimeColumn(verbose_name="Sent", format="M j, Y H:i")
    times_opened = tables.Column(verbose_name="Opens")
    times_clicked = tables.Column(verbose_name="Clicks")
    is_bounced = tables.BooleanColumn(verbose_name="Bounced")
    is_tracked = tables.BooleanColumn(verbose_name="Tracked")

    class Meta:
        model = EmailMessage
        fields = [
            "subject",
            "sender",
            "to_addresses",
            "source",
            "delivery_status",
            "message_date",
            "is_tracked",
            "times_opened",
            "times_clicked",
            "is_bounced",
        ]
        order_by = "-message_date"
        empty_text = "No emails match."

    def render_subject(self, value: str) -> str:
        return value or "(no subject)"


class MyTaskTable(tables.Table):
    """A rep's open follow-ups and engagement alerts."""

    subject = tables.Column(linkify=True)
    kind = tables.Column(verbose_name="Why")
    record = tables.Column(
        accessor="who", verbose_name="Record", orderable=False, linkify=lambda value: value
    )
    opportunity = tables.Column(
        accessor="what_opportunity", verbose_name="Opportunity", linkify=True
    )

    class Meta:
        model = Task
        fields = ["subject", "kind", "record", "opportunity", "due_date", "created_at"]
        order_by = ["due_date", "-created_at"]
        empty_text = "No follow-ups or alerts: every record has had attention lately."
