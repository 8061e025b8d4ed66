from django.contrib import admin

from campaigns.models import Campaign


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "type", "status", "start_date", "end_date", "is_active", "owner"]
    list_filter = ["type", "status", "is_active"]
    list_select_related = ["owner"]
    search_fields = ["name", "description"]
    autocomplete_fields = ["parent", "owner"]
