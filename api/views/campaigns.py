"""Campaigns (read) and their members: added, given a status and removed through
campaigns.members, as the campaign page does, by whoever may edit the campaign."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as BadRequest
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from api import filters
from api.errors import Conflict
from api.serializers import campaigns as serializers
from api.views.mail import ReadViewSet, current_user
from campaigns import filters as campaign_filters
from campaigns.members import members_add, members_remove, members_status_set
from campaigns.models import Campaign, CampaignMember
from crm.models import Contact, Lead, User


def _people_seen_by(user: User) -> Q:
    """Members whose Contact or Lead the user may see: the campaign page lists only them."""
    if user.has_perm("crm.view_all_records"):
        return Q()
    return Q(contact__owner=user) | Q(lead__owner=user)


@extend_schema_view(
    list=extend_schema(summary="Campaigns"),
    retrieve=extend_schema(summary="One campaign, with its member statuses"),
)
class CampaignViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ReadViewSet):
    """Every campaign, for anyone who may see campaigns (as the campaign list)."""

    read_perms = ("campaigns.view_campaign",)
    serializer_class = serializers.CampaignSerializer
    filterset_class = campaign_filters.CampaignFilter
    ordering_fields = ["id", "name", "start_date"]
    queryset = Campaign.objects.none()

    def get_queryset(self) -> QuerySet[Campaign]:
        return Campaign.objects.prefetch_related("statuses")


@extend_schema_view(
    list=extend_schema(summary="Campaign members you may see"),
    retrieve=extend_schema(summary="One campaign member"),
    create=extend_schema(
        summary="Add a Contact or a Lead to a campaign",
        request=serializers.MemberAddSerializer,
        responses={201: serializers.MemberSerializer},
    ),
    partial_update=extend_schema(
        summary="Give a member another status",
        request=serializers.MemberStatusSetSerializer,
        responses={200: serializers.MemberSerializer},
    ),
    destroy=extend_schema(summary="Remove a member from its campaign"),
)
class MemberViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    ReadViewSet,
):
    """Members whose Contact or Lead the user may see (the campaign page's rule); adding,
    removing and setting a status need the right to edit the campaign (its owner, managers,
    admins), else 403."""

    read_perms = ("campaigns.view_campaign",)
    write_perms = ("campaigns.view_campaign",)
    serializer_class = serializers.MemberSerializer
    filterset_class = filters.MemberFilter
    ordering_fields = ["id", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    queryset = CampaignMember.objects.none()

    def get_queryset(self) -> QuerySet[CampaignMember]:
        user = current_user(self.request)
        return CampaignMember.objects.filter(_people_seen_by(user)).select_related(
            "status", "campaign"
        )

    def _editable(self, campaign: Campaign) -> Campaign:
        if not campaign.editable_by(current_user(self.request)):
            raise PermissionDenied(
                "Only the campaign's owner, managers and admins change its members."
            )
        return campaign

    def create(self, request: Request) -> Response:
        user = current_user(request)
        form = serializers.MemberAddSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        campaign = Campaign.objects.filter(pk=data["campaign"]).first()
        if campaign is None:
            raise BadRequest({"campaign": "Not found."})
        self._editable(campaign)
        kind = "contact" if data.get("contact") else "lead"
        model: type[Contact] | type[Lead] = Contact if kind == "contact" else Lead
        person = model.objects.visible_to(user).filter(pk=data[kind]).first()
        if person is None:
            raise BadRequest({kind: "Not found, or not visible to you."})
        wanted = None
        if data.get("status"):
            wanted = campaign.statuses.filter(pk=data["status"]).first()
            if wanted is None:
                raise BadRequest({"status": "Not one of this campaign's member statuses."})
        with transaction.atomic():
            added = members_add(
                campaign=campaign,
                contact_ids=[person.pk] if kind == "contact" else (),
                lead_ids=[person.pk] if kind == "lead" else (),
            )
            if not added:
                raise Conflict(f"This {kind} is already a member of the campaign.")
            member = campaign.members.get(**{kind: person})
            if wanted is not None and wanted.pk != member.status_id:
                members_status_set(campaign=campaign, member_ids=[member.pk], status=wanted)
        member = self.get_queryset().get(pk=member.pk)
        body = serializers.MemberSerializer(member).data
        location = self.reverse_action("detail", args=[member.pk])
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})

    def partial_update(self, request: Request, pk: Any = None) -> Response:
        member = self.get_object()
        campaign = self._editable(member.campaign)
        form = serializers.MemberStatusSetSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        wanted = campaign.statuses.filter(pk=form.validated_data["status"]).first()
        if wanted is None:
            raise BadRequest({"status": "Not one of this campaign's member statuses."})
        members_status_set(campaign=campaign, member_ids=[member.pk], status=wanted)
        return Response(serializers.MemberSerializer(self.get_queryset().get(pk=member.pk)).data)

    def perform_destroy(self, instance: CampaignMember) -> None:
        campaign = self._editable(instance.campaign)
        members_remove(campaign=campaign, member_ids=[instance.pk])


def register(router: DefaultRouter) -> None:
    router.register("campaigns", CampaignViewSet, basename="campaign")
    router.register("campaign-members", MemberViewSet, basename="campaign-member")
