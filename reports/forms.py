"""The dashboard's filter form (period, rep, campaign)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from campaigns.models import Campaign
from crm.filters import owners_by_name
from crm.forms import style_widgets
from crm.models import Role, User
from reports.selectors import Scope

DEFAULT_DAYS = 30
MAX_DAYS = 366


def sales_users() -> QuerySet[User]:
    """The people whose email the dashboards count: active Sales Reps and Sales Managers."""
    roles = [Role.REP.value, Role.MANAGER.value]
    return User.objects.filter(is_active=True, groups__name__in=roles).distinct()


class DashboardFilterForm(forms.Form):
    """The dashboard's filters, read from the query string; bad input falls back to defaults."""

    start = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    end = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    rep = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, empty_label="All reps", label="Rep"
    )
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.none(),
        required=False,
        empty_label="All campaigns",
        label="Campaign",
    )

    def __init__(self, *args: Any, with_rep: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if with_rep:
            rep_field = self.fields["rep"]
            assert isinstance(rep_field, forms.ModelChoiceField)
            rep_field.queryset = sales_users()
            owners_by_name(self, "rep")
        else:
            del self.fields["rep"]
        campaign_field = self.fields["campaign"]
        assert isinstance(campaign_field, forms.ModelChoiceField)
        campaign_field.queryset = Campaign.objects.order_by("name")
        # An unfiltered page shows the period it covers.
        default = self._period({})
        self.fields["start"].initial, self.fields["end"].initial = default
        style_widgets(self.fields.values())

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            raise forms.ValidationError("The start date must be on or before the end date.")
        if start and end and (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(f"Choose a period of at most {MAX_DAYS} days.")
        return data

    @staticmethod
    def _period(data: dict[str, Any]) -> tuple[date, date]:
        end: date = data.get("end") or timezone.localdate()
        start: date = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            end = start
        if (end - start).days >= MAX_DAYS:
            start = end - timedelta(days=MAX_DAYS - 1)
        return start, end

    def scope(self, *, sender_id: int | None = None) -> Scope:
        """The filters as a Scope: the last 30 days, all reps and campaigns unless chosen."""
        data = self.cleaned_data if self.is_valid() else {}
        start, end = self._period(data)
        rep, campaign = data.get("rep"), data.get("campaign")
        return Scope(
            start=start,
            end=end,
            sender_id=sender_id if sender_id is not None else (rep.pk if rep else None),
            campaign_id=campaign.pk if campaign else None,
        )
