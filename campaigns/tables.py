"""django-tables2 tables for the campaign, member and list email recipient lists."""

from typing import Any

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html

from campaigns.models import Campaign, CampaignMember, ListEmailRecipient


class CampaignTable(tables.Table):
    name = tables.Column(linkify=True)
    members_count = tables.Column(verbose_name="Members", attrs={"td": {"class": "text-end"}})
    responses_count = tables.Column(verbose_name="Responses", attrs={"td": {"class": "text-end"}})
    owner = tables.Column(accessor="owner__username", verbose_name="Owner")

    class Meta:
        model = Campaign
        fields = ["name", "type", "status", "start_date", "end_date", "is_active", "parent"]
        sequence = ["name", "type", "status", "start_date", "end_date", "...", "owner"]
        empty_text = "No campaigns match."


class MemberTable(tables.Table):
    """A campaign's members with their status and their engagement with its emails."""

    select = tables.CheckBoxColumn(
        accessor="pk", attrs={"th__input": {"aria-label": "Select all", "data-select-all": ""}}
    )
    name = tables.Column(
        empty_values=(),
        order_by=("contact__last_name", "lead__last_name", "pk"),
        verbose_name="Name",
    )
    kind = tables.Column(empty_values=(), orderable=False, verbose_name="Type")
    email = tables.Column(empty_values=(), orderable=False, verbose_name="Email")
    status = tables.Column(
        accessor="status__label", order_by=("status__sort_order",), verbose_name="Status"
    )
    has_responded = tables.BooleanColumn(verbose_name="Responded")
    emails_sent = tables.Column(verbose_name="Emails", attrs={"td": {"class": "text-end"}})
    human_opens = tables.Column(verbose_name="Opens", attrs={"td": {"class": "text-end"}})
    machine_opens = tables.Column(verbose_name="Machine opens", attrs={"td": {"class": "text-end"}})
    human_clicks = tables.Column(verbose_name="Clicks", attrs={"td": {"class": "text-end"}})
    created_at = tables.DateColumn(verbose_name="Member since", format="M j, Y")

    class Meta:
        model = CampaignMember
        fields = ["select", "name", "kind", "email", "status", "has_responded", "created_at"]
        sequence = ["select", "name", "kind", "email", "status", "has_responded", "..."]
        empty_text = "No members match."

    def render_name(self, record: CampaignMember) -> Any:
        person = record.person
        return format_html('<a href="{}">{}</a>', person.get_absolute_url(), person.name)

    def render_kind(self, record: CampaignMember) -> str:
        return "Contact" if record.contact_id else "Lead"

    def render_email(self, record: CampaignMember) -> str:
        return record.person.email or "—"


_DELIVERED_AS = {
    "sent": "Sent",
    "bounced": "Sent, then bounced",
    "failed": "Failed: the mail server refused it",
    "refused": "Not sent: see the email",
}


class RecipientTable(tables.Table):
    """Each member of a list email and what became of their copy."""

    name = tables.Column(empty_values=(), orderable=False, verbose_name="Name")
    address = tables.Column(empty_values=(), orderable=False, verbose_name="Email")
    state = tables.Column(verbose_name="Result")
    delivery = tables.Column(verbose_name="Delivery")
    human_opens = tables.Column(verbose_name="Opens")
    human_clicks = tables.Column(verbose_name="Clicks")

    class Meta:
        model = ListEmailRecipient
        fields = ["name", "address", "state"]
        empty_text = "No recipients match."

    def render_name(self, record: ListEmailRecipient) -> Any:
        person = record.contact or record.lead
        if person is None:
            return "—"
        return format_html('<a href="{}">{}</a>', person.get_absolute_url(), person.name)

    def render_address(self, record: ListEmailRecipient) -> str:
        person = record.contact or record.lead
        return person.email if person and person.email else "—"

    def render_state(self, record: ListEmailRecipient) -> str:
        """What became of this member, in words: Waiting, Sending, Sent, Unconfirmed, Skipped:
        <why>."""
        state = ListEmailRecipient.State
        if record.state == state.HANDED:
            # Handed to the send pipeline: its copy's delivery says what the member got.
            if getattr(record, "unconfirmed", False):
                return "Unconfirmed: the worker stopped while sending it"
            return _DELIVERED_AS.get(getattr(record, "delivery", None) or "", "Sending")
        if record.state in (state.SKIPPED, state.FAILED):
            label = "Skipped" if record.state == state.SKIPPED else "Failed"
            return f"{label}: {record.reason}" if record.reason else label
        return "Sending" if record.state == state.SENDING else "Waiting"

    def render_delivery(self, record: ListEmailRecipient, value: str) -> Any:
        if record.email_id is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("tracking:email_detail", args=[record.email_id]),
            value.title(),
        )
