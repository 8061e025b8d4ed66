"""The Django admin for Individuals."""

from django.contrib import admin

from privacy.models import Individual


@admin.register(Individual)
class IndividualAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "has_opted_out_tracking",
        "has_opted_out_processing",
        "has_opted_out_solicit",
        "should_forget",
        "updated_at",
    ]
    list_filter = [
        "has_opted_out_tracking",
        "has_opted_out_processing",
        "has_opted_out_profiling",
        "has_opted_out_solicit",
        "has_opted_out_geo_tracking",
        "should_forget",
        "send_individual_data",
    ]
    search_fields = ["first_name", "last_name"]
