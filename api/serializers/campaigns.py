"""Campaigns (read), their member statuses, and their members (added, given a status, removed)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from api.serializers.mail import ReadSerializer
from campaigns.models import Campaign, CampaignMember, CampaignMemberStatus


def _id(*, required: bool = True) -> serializers.IntegerField:
    """A row's id: positive and within a bigint (a larger one is a 400, not a database error)."""
    return serializers.IntegerField(
        required=required, allow_null=not required, min_value=1, max_value=2**63 - 1
    )


class MemberStatusSerializer(ReadSerializer):
    class Meta:
        model = CampaignMemberStatus
        fields = ["id", "label", "sort_order", "is_default", "has_responded", "funnel_step"]
        read_only_fields = fields


class CampaignSerializer(ReadSerializer):
    """A campaign with its member statuses, in the order tracking moves members along them."""

    owner = serializers.IntegerField(source="owner_id", read_only=True)
    statuses = MemberStatusSerializer(many=True, read_only=True)

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "type",
            "status",
            "start_date",
            "end_date",
            "parent",
            "owner",
            "is_active",
            "description",
            "budgeted_cost",
            "actual_cost",
            "expected_revenue",
            "expected_response",
            "statuses",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class MemberSerializer(ReadSerializer):
    """A Contact or a Lead in a campaign, with its status."""

    campaign = serializers.IntegerField(source="campaign_id", read_only=True)
    contact = serializers.IntegerField(source="contact_id", allow_null=True, read_only=True)
    lead = serializers.IntegerField(source="lead_id", allow_null=True, read_only=True)
    status = serializers.IntegerField(source="status_id", read_only=True)
    status_label = serializers.CharField(source="status.label", read_only=True)

    class Meta:
        model = CampaignMember
        fields = [
            "id",
            "campaign",
            "contact",
            "lead",
            "status",
            "status_label",
            "has_responded",
            "first_responded_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class MemberAddSerializer(serializers.Serializer):
    """Who joins which campaign: a Contact or a Lead, with a status (the campaign's default when
    none is given)."""

    campaign = _id()
    contact = _id(required=False)
    lead = _id(required=False)
    status = _id(required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if bool(data.get("contact")) == bool(data.get("lead")):
            raise serializers.ValidationError("Name a contact or a lead (one of them).")
        return data


class MemberStatusSetSerializer(serializers.Serializer):
    """The status to give a member: one of its campaign's statuses."""

    status = _id()
