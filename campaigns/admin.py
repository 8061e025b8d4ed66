"""The Django admin for campaigns, members, list emails and influence."""

from django.contrib import admin

from campaigns.models import (
    Campaign,
    CampaignInfluence,
    CampaignMember,
    CampaignMemberStatus,
    ListEmail,
)


class MemberStatusInline(admin.TabularInline):
    model = CampaignMemberStatus
    extra = 0


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "type", "status", "start_date", "end_date", "is_active", "owner"]
    list_filter = ["type", "status", "is_active"]
    list_select_related = ["owner"]
    search_fields = ["name", "description"]
    autocomplete_fields = ["parent", "owner"]
    inlines = [MemberStatusInline]


@admin.register(CampaignMember)
class CampaignMemberAdmin(admin.ModelAdmin):
    list_display = ["campaign", "contact", "lead", "status", "has_responded", "created_at"]
    list_filter = ["has_responded"]
    list_select_related = ["campaign", "contact", "lead", "status"]
    raw_id_fields = ["campaign", "contact", "lead", "status"]


@admin.register(ListEmail)
class ListEmailAdmin(admin.ModelAdmin):
    list_display = ["subject", "campaign", "sender", "status", "created_at", "finished_at"]
    list_filter = ["status"]
    list_select_related = ["campaign", "sender"]
    raw_id_fields = ["campaign", "sender"]


@admin.register(CampaignInfluence)
class CampaignInfluenceAdmin(admin.ModelAdmin):
    list_display = ["opportunity", "campaign", "contact", "model", "influence", "revenue_share"]
    list_filter = ["model"]
    list_select_related = ["opportunity", "campaign", "contact"]
    raw_id_fields = ["opportunity", "campaign", "contact"]
