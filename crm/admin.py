"""The Django admin for crm: users and roles, records, emails and recipients, Setup, templates,
the suppression list, privacy changes, tracked links and activity metrics."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from crm.activity import activity_metrics_recompute
from crm.models import (
    Account,
    ActivityMetric,
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
    ScheduledEmail,
    Task,
    TrackedLink,
    User,
)
from crm.tasks import recompute_activity_metrics
from crm.templates_library import template_uses
from privacy.audit import audit_record
from privacy.models import AuditEntry


@admin.register(User)
class OpenrateUserAdmin(UserAdmin):
    list_display = ["username", "email", "first_name", "last_name", "is_active", "is_staff"]
    list_filter = ["groups", "is_active", "is_staff"]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Save the user's roles, and audit a change of them (before -> after)."""
        user = form.instance
        before = sorted(user.groups.values_list("name", flat=True)) if change else []
        super().save_related(request, form, formsets, change)
        after = sorted(user.groups.values_list("name", flat=True))
        if before != after:
            audit_record(
                actor=request.user,
                action=AuditEntry.Action.ROLE,
                target=f"User #{user.pk}",
                field="Role",
                before=", ".join(before) or "No role",
                after=", ".join(after) or "No role",
            )


class OwnedAdmin(admin.ModelAdmin):
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    date_hierarchy = "created_at"


class QuietListFilter(admin.SimpleListFilter):
    """Records (or metric rows) by days without activity, as of the last recompute."""

    title = "days without activity"
    parameter_name = "quiet"
    field = "activity__inactive_days"
    BUCKETS = ((0, 6), (7, 13), (14, 29), (30, 89), (90, None))

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (str(low), f"{low}+ days" if high is None else f"{low} to {high} days")
            for low, high in self.BUCKETS
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        for low, high in self.BUCKETS:
            if self.value() == str(low):
                queryset = queryset.filter(**{f"{self.field}__gte": low})
                if high is not None:
                    queryset = queryset.filter(**{f"{self.field}__lte": high})
        return queryset


class MetricQuietListFilter(QuietListFilter):
    field = "inactive_days"


ACTIVITY_COLUMNS = ["activity__last_activity_at", "activity__inactive_days"]


@admin.action(description="Recompute activity metrics")
def recompute_record_metrics(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]
) -> None:
    """Recompute the selected records' metrics now (and their accounts' and opportunities')."""
    ids = list(queryset.values_list("pk", flat=True))
    model = queryset.model
    activity_metrics_recompute(
        contact_ids=ids if model is Contact else [],
        lead_ids=ids if model is Lead else [],
        account_ids=ids if model is Account else [],
    )
    modeladmin.message_user(request, f"Activity metrics recomputed for {len(ids)} records.")


@admin.register(Account)
class AccountAdmin(OwnedAdmin):
    list_display = [
        "name",
        "is_person_account",
        "industry",
        "billing_city",
        *ACTIVITY_COLUMNS,
        "owner",
    ]
    list_filter = ["is_person_account", "industry", QuietListFilter, "owner"]
    list_select_related = ["owner", "activity"]
    actions = [recompute_record_metrics]
    search_fields = ["name", "website", "billing_city"]


@admin.register(Contact)
class ContactAdmin(OwnedAdmin):
    list_display = [
        "__str__",
        "email",
        "account",
        "has_opted_out_of_email",
        "email_bounced_at",
        *ACTIVITY_COLUMNS,
        "owner",
    ]
    list_filter = [
        "has_opted_out_of_email",
        QuietListFilter,
        "owner",
        ("email_bounced_at", admin.EmptyFieldListFilter),
    ]
    list_select_related = ["owner", "account", "activity"]
    actions = [recompute_record_metrics]
    search_fields = ["first_name", "last_name", "email", "account__name"]
    autocomplete_fields = ["owner", "account", "individual"]


@admin.register(Lead)
class LeadAdmin(OwnedAdmin):
    list_display = [
        "__str__",
        "company",
        "email",
        "status",
        "lead_source",
        *ACTIVITY_COLUMNS,
        "owner",
    ]
    list_filter = ["status", "lead_source", "has_opted_out_of_email", QuietListFilter, "owner"]
    list_select_related = ["owner", "activity"]
    actions = [recompute_record_metrics]
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
    list_display = ["subject", "kind", "status", "priority", "subtype", "due_date", "owner"]
    list_filter = ["kind", "status", "priority", "subtype", "owner"]
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

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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

    # A stored email is a record of what was sent or received: read-only, as in Salesforce.
    # Email is created by sending (crm.sending) and inbound mail, never by hand here.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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

    # A recipient's copy is part of the stored email: read-only too.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        # Setup changes on its own page (/setup/), where each change is audited and the apps
        # that react to it (recounts) are told; here it is shown only.
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "folder", "subject", "is_private", "owner", "is_active", "updated_at"]
    list_filter = ["is_active", "is_private"]
    search_fields = ["name", "subject", "folder"]
    actions = None  # no bulk delete: a template in use is archived, never deleted

    def has_delete_permission(self, request: HttpRequest, obj: EmailTemplate | None = None) -> bool:
        if obj is not None and template_uses(obj):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(ScheduledEmail)
class ScheduledEmailAdmin(admin.ModelAdmin):
    list_display = ["subject", "sender", "send_at", "status"]
    list_filter = ["status"]
    search_fields = ["subject", "to_addresses"]
    raw_id_fields = [
        "sender",
        "contact",
        "lead",
        "related_account",
        "related_opportunity",
        "campaign",
        "template",
        "reply_to",
        "email",
    ]


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


class RecordTypeListFilter(admin.SimpleListFilter):
    title = "record type"
    parameter_name = "type"
    TYPES = ("contact", "lead", "account", "opportunity")

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name.capitalize()) for name in self.TYPES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in self.TYPES:
            return queryset.filter(**{f"{self.value()}__isnull": False})
        return queryset


@admin.register(ActivityMetric)
class ActivityMetricAdmin(admin.ModelAdmin):
    """Read-only: the rows are computed; the actions recompute them."""

    list_display = [
        "__str__",
        "last_activity_at",
        "inactive_days",
        "emails_sent_30d",
        "emails_received_30d",
        "human_opens_30d",
        "human_clicks_30d",
        "activities_30d",
        "computed_at",
    ]
    list_filter = [RecordTypeListFilter, MetricQuietListFilter]
    list_select_related = ["contact", "lead", "account", "opportunity"]
    search_fields = ["contact__last_name", "lead__last_name", "account__name", "opportunity__name"]
    ordering = ["-inactive_days", "pk"]
    actions = ["recompute_selected", "recompute_all"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Recompute activity metrics of the selected records")
    def recompute_selected(self, request: HttpRequest, queryset: QuerySet[ActivityMetric]) -> None:
        def ids(column: str) -> list[int]:
            return list(
                queryset.filter(**{f"{column}__isnull": False}).values_list(column, flat=True)
            )

        activity_metrics_recompute(
            contact_ids=ids("contact_id"),
            lead_ids=ids("lead_id"),
            account_ids=ids("account_id"),
            opportunity_ids=ids("opportunity_id"),
        )
        self.message_user(request, f"Activity metrics recomputed for {queryset.count()} records.")

    @admin.action(description="Recompute every record's activity metrics (in the background)")
    def recompute_all(self, request: HttpRequest, queryset: QuerySet[ActivityMetric]) -> None:
        recompute_activity_metrics.delay()
        self.message_user(
            request,
            "Every record's activity metrics are being recomputed; reload in a minute.",
            messages.SUCCESS,
        )
