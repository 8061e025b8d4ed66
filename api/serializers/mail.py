"""Emails, their recipients (with each copy's tracking), tracking events, activity metrics, and
the request that sends an email."""

from __future__ import annotations

from typing import Any, cast

from django.core.validators import validate_email
from django.db.models import Model
from rest_framework import serializers

from crm.models import (
    Account,
    ActivityMetric,
    Contact,
    EmailMessage,
    EmailMessageRelation,
    Lead,
    Opportunity,
)
from tracking.models import TrackingEvent

# To, Cc and Bcc each take at most this many addresses (the composer's field is one line).
MAX_ADDRESSES = 100


class ReadSerializer(serializers.ModelSerializer):
    """A read-only model serializer whose choice fields allow the blank their model field allows
    (REST framework drops allow_blank from read-only fields, so the OpenAPI enum would refuse
    the "" a blank bounce category or delivery status reads)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        model = cast(type[Model], self.Meta.model)
        model_fields = {f.name: f for f in model._meta.concrete_fields}
        for name, field in fields.items():
            model_field = model_fields.get(field.source if isinstance(field.source, str) else name)
            if isinstance(field, serializers.ChoiceField) and model_field and model_field.blank:
                field.allow_blank = True
        return fields


class EmailSerializer(ReadSerializer):
    """An email as its page shows it (the body is only on the email's own resource)."""

    sender = serializers.IntegerField(source="sender_id", allow_null=True, read_only=True)
    related_account = serializers.IntegerField(
        source="related_account_id", allow_null=True, read_only=True
    )
    related_opportunity = serializers.IntegerField(
        source="related_opportunity_id", allow_null=True, read_only=True
    )
    campaign = serializers.IntegerField(source="campaign_id", allow_null=True, read_only=True)
    reply_to_message = serializers.IntegerField(
        source="reply_to_message_id", allow_null=True, read_only=True
    )

    class Meta:
        model = EmailMessage
        fields = [
            "id",
            "subject",
            "from_address",
            "from_name",
            "to_addresses",
            "cc_addresses",
            "status",
            "delivery_status",
            "failure_reason",
            "source",
            "incoming",
            "is_tracked",
            "is_opened",
            "first_opened_at",
            "last_opened_at",
            "times_opened",
            "times_clicked",
            "is_bounced",
            "is_auto_reply",
            "message_date",
            "created_at",
            "body_removed_at",
            "sender",
            "related_account",
            "related_opportunity",
            "campaign",
            "reply_to_message",
        ]
        read_only_fields = fields


class EmailDetailSerializer(EmailSerializer):
    """One email with its bodies (as stored: a client shows them as it sees fit)."""

    class Meta(EmailSerializer.Meta):
        fields = [*EmailSerializer.Meta.fields, "bcc_addresses", "html_body", "text_body"]
        read_only_fields = fields


class RecipientSerializer(ReadSerializer):
    """One address on an email with its copy's delivery and engagement; its Contact or Lead is
    named only for a user who may see that record (as on the email page)."""

    email = serializers.IntegerField(source="email_id", read_only=True)
    contact = serializers.SerializerMethodField()
    lead = serializers.SerializerMethodField()
    is_opened = serializers.BooleanField(read_only=True)
    opened_by_click = serializers.BooleanField(read_only=True)
    last_clicked_link = serializers.IntegerField(
        source="last_clicked_link_id", allow_null=True, read_only=True
    )

    class Meta:
        model = EmailMessageRelation
        fields = [
            "id",
            "email",
            "relation_type",
            "address",
            "name",
            "contact",
            "lead",
            "delivery_status",
            "refusal_reason",
            "sent_at",
            "is_tracked",
            "untracked_reason",
            "is_opened",
            "opened_by_click",
            "first_opened_at",
            "last_opened_at",
            "human_opens",
            "machine_opens",
            "human_clicks",
            "machine_clicks",
            "last_clicked_at",
            "last_clicked_link",
            "machine_open_label",
            "bounce_category",
            "bounce_status",
            "bounce_diagnostic",
            "bounced_at",
            "replied_at",
        ]
        read_only_fields = fields

    def _visible(self, kind: str, pk: int | None) -> int | None:
        visible: dict[str, set[int]] = self.context.get("visible_people", {})
        return pk if pk is not None and pk in visible.get(kind, set()) else None

    def get_contact(self, row: EmailMessageRelation) -> int | None:
        return self._visible("contact", row.contact_id)

    def get_lead(self, row: EmailMessageRelation) -> int | None:
        return self._visible("lead", row.lead_id)


class EventSerializer(ReadSerializer):
    """One open or click with its human / machine label and the reason for it."""

    recipient = serializers.IntegerField(source="relation_id", read_only=True)
    email = serializers.IntegerField(source="relation.email_id", read_only=True)
    link = serializers.IntegerField(source="link_id", allow_null=True, read_only=True)

    class Meta:
        model = TrackingEvent
        fields = [
            "id",
            "kind",
            "occurred_at",
            "label",
            "reason",
            "internal",
            "recipient",
            "email",
            "link",
            "ip",
            "user_agent",
            "device",
            "client",
            "os",
        ]
        read_only_fields = fields


class MetricSerializer(ReadSerializer):
    """A record's activity metrics; exactly one of contact, lead, account, opportunity is set."""

    contact = serializers.IntegerField(source="contact_id", allow_null=True, read_only=True)
    lead = serializers.IntegerField(source="lead_id", allow_null=True, read_only=True)
    account = serializers.IntegerField(source="account_id", allow_null=True, read_only=True)
    opportunity = serializers.IntegerField(source="opportunity_id", allow_null=True, read_only=True)

    class Meta:
        model = ActivityMetric
        fields = [field.name for field in ActivityMetric._meta.concrete_fields]
        read_only_fields = fields


def _address_list() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=254, validators=[validate_email]),
        max_length=MAX_ADDRESSES,
        required=False,
        default=list,
    )


def _ids(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        max_length=MAX_ADDRESSES,
        required=False,
        default=list,
        help_text=help_text,
    )


class EmailSendSerializer(serializers.Serializer):
    """An email to send, as the composer takes it: addresses, or Contacts and Leads by id (the
    email is written to them as those records), what it is filed under, and its campaign."""

    to = _address_list()
    cc = _address_list()
    bcc = _address_list()
    contacts = _ids("Contacts to write to (To), by id: records you may see.")
    leads = _ids("Leads to write to (To), by id: records you may see.")
    subject = serializers.CharField(max_length=998)
    html_body = serializers.CharField()
    related_account = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1
    )
    related_opportunity = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1
    )
    campaign = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("related_account") and data.get("related_opportunity"):
            raise serializers.ValidationError(
                {"related_opportunity": "File it under an account or an opportunity, not both."}
            )
        if not (data["to"] or data["contacts"] or data["leads"]):
            raise serializers.ValidationError({"to": "Add at least one recipient."})
        return data


class EmailSentSerializer(EmailSerializer):
    """The email just recorded, and the recipients privacy or the suppression list left out
    (the composer's "not sent to ..." note)."""

    not_sent = serializers.SerializerMethodField()

    class Meta(EmailSerializer.Meta):
        fields = [*EmailSerializer.Meta.fields, "not_sent"]
        read_only_fields = fields

    def get_not_sent(self, email: EmailMessage) -> list[dict[str, str]]:
        refused = email.relations.filter(
            delivery_status=EmailMessageRelation.Delivery.REFUSED
        ).values_list("address", "refusal_reason")
        return [{"address": address, "reason": reason} for address, reason in refused]


# The records an email may be named with, by the send request's field.
SEND_RECORDS: dict[str, type[Contact] | type[Lead] | type[Account] | type[Opportunity]] = {
    "contacts": Contact,
    "leads": Lead,
    "related_account": Account,
    "related_opportunity": Opportunity,
}
