from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from crm.models import (
    Account,
    Contact,
    EmailMessage,
    EmailMessageRelation,
    EmailSuppression,
    EmailTemplate,
    Lead,
    Opportunity,
    OpportunityContactRole,
    OrgSettings,
    PrivacyChange,
    Task,
    TrackedLink,
    User,
)


@admin.register(User)
class OpenrateUserAdmin(UserAdmin):
    list_display = ["username", "email", "first_name", "last_name", "is_active", "is_staff"]
    list_filter = ["groups", "is_active", "is_staff"]


class OwnedAdmin(admin.ModelAdmin):
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    date_hierarchy = "created_at"


@admin.register(Account)
class AccountAdmin(OwnedAdmin):
    list_display = ["name", "is_person_account", "industry", "billing_city", "owner"]
    list_filter = ["is_person_account", "industry", "owner"]
    search_fields = ["name", "website", "billing_city"]


@admin.register(Contact)
class ContactAdmin(OwnedAdmin):
    list_display = [
        "__str__",
        "email",
        "account",
        "has_opted_out_of_email",
        "email_bounced_at",
        "owner",
    ]
    list_filter = [
        "has_opted_out_of_email",
        "owner",
        ("email_bounced_at", admin.EmptyFieldListFilter),
    ]
    list_select_related = ["owner", "account"]
    search_fields = ["first_name", "last_name", "email", "account__name"]
    autocomplete_fields = ["owner", "account", "individual"]


@admin.register(Lead)
class LeadAdmin(OwnedAdmin):
    list_display = ["__str__", "company", "email", "status", "lead_source", "owner"]
    list_filter = ["status", "lead_source", "has_opted_out_of_email", "owner"]
    search_fields = ["first_name", "last_name", "email", "company"]
    autocomplete_fields = ["owner", "individual"]


class ContactRoleInline(admin.TabularInline):
    model = OpportunityContactRole
    autocomplete_fields = ["contact"]
    extra = 0


@admin.register(Opportunity)
class OpportunityAdmin(OwnedAdmin):
    list_display = ["name", "account", "stage", "amount", "probability", "close_date", "owner"]
    list_filter = ["stage", "owner", "campaign"]
    list_select_related = ["owner", "account"]
    search_fields = ["name", "account__name"]
    autocomplete_fields = ["owner", "account", "campaign"]
    inlines = [ContactRoleInline]


@admin.register(Task)
class TaskAdmin(OwnedAdmin):
    list_display = ["subject", "status", "priority", "subtype", "due_date", "owner"]
    list_filter = ["status", "priority", "subtype", "owner"]
    search_fields = ["subject", "description"]
    autocomplete_fields = ["owner", "who_contact", "who_lead", "what_account", "what_opportunity"]


RELATION_COLUMNS = (
    "relation_type",
    "address",
    "delivery_status",
    "is_tracked",
    "human_opens",
    "machine_opens",
    "human_clicks",
    "bounce_category",
)


class RelationInline(admin.TabularInline):
    model = EmailMessageRelation
    fields = readonly_fields = RELATION_COLUMNS
    extra = 0
    can_delete = False


@admin.register(EmailMessage)
class EmailMessageAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "sender",
        "status",
        "delivery_status",
        "source",
        "is_tracked",
        "is_opened",
        "times_opened",
        "is_bounced",
        "message_date",
    ]
    list_filter = ["status", "delivery_status", "source", "incoming", "is_opened", "is_bounced"]
    list_select_related = ["sender"]
    search_fields = ["subject", "to_addresses", "from_address", "message_identifier"]
    date_hierarchy = "message_date"
    raw_id_fields = ["reply_to_message", "related_account", "related_opportunity", "sender"]
    inlines = [RelationInline]


@admin.register(EmailMessageRelation)
class EmailMessageRelationAdmin(admin.ModelAdmin):
    list_display = [
        "address",
        "relation_type",
        "email",
        "delivery_status",
        "human_opens",
        "machine_opens",
        "human_clicks",
        "bounce_category",
    ]
    list_filter = ["relation_type", "delivery_status", "is_tracked", "bounce_category"]
    list_select_related = ["email"]
    search_fields = ["address", "email__subject", "message_id"]
    raw_id_fields = ["email", "contact", "lead", "user"]


@admin.register(OrgSettings)
class OrgSettingsAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "enhanced_email",
        "email_tracking_enabled",
        "deliverability_access",
        "enforce_email_privacy",
        "updated_at",
    ]
    readonly_fields = ["updated_at", "updated_by"]

    def has_add_permission(self, request: object) -> bool:
        return not OrgSettings.objects.exists()

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "subject", "is_active", "updated_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "subject"]


@admin.register(EmailSuppression)
class EmailSuppressionAdmin(admin.ModelAdmin):
    list_display = ["address", "reason", "detail", "created_at"]
    list_filter = ["reason"]
    search_fields = ["address", "detail"]


@admin.register(PrivacyChange)
class PrivacyChangeAdmin(admin.ModelAdmin):
    list_display = ["changed_at", "label", "value", "contact", "lead", "changed_by", "source"]
    list_filter = ["field", "value", "source"]
    raw_id_fields = ["contact", "lead", "changed_by"]
    date_hierarchy = "changed_at"


@admin.register(TrackedLink)
class TrackedLinkAdmin(admin.ModelAdmin):
    list_display = ["url", "email", "position", "is_honeypot", "human_clicks", "machine_clicks"]
    list_filter = ["is_honeypot"]
    search_fields = ["url"]
    raw_id_fields = ["email"]
