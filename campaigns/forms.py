"""Forms for campaigns, member statuses, list email and the influence report."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms import BaseModelFormSet, modelformset_factory

from campaigns.models import Campaign, CampaignMemberStatus, FunnelStep, InfluenceModel
from crm.forms import BootstrapMixin, style_widgets
from crm.models import User
from mailkit import merge


class CampaignForm(BootstrapMixin, forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "name",
            "type",
            "status",
            "start_date",
            "end_date",
            "parent",
            "budgeted_cost",
            "actual_cost",
            "expected_revenue",
            "expected_response",
            "is_active",
            "description",
            "owner",
        ]
        widgets = {
            "start_date": forms.DateInput(attrs={"type": "date"}),
            "end_date": forms.DateInput(attrs={"type": "date"}),
            "description": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        parent = self.fields["parent"]
        assert isinstance(parent, forms.ModelChoiceField)
        parents = Campaign.objects.order_by("name")
        if self.instance.pk:
            parents = parents.exclude(pk__in=self._descendants(self.instance.pk))
        parent.queryset = parents
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = User.objects.filter(is_active=True).order_by("username")
        if not self.instance.pk:
            self.initial.setdefault("owner", user.pk)
        self.style_widgets()

    @staticmethod
    def _descendants(pk: int) -> set[int]:
        """The campaign and every campaign below it: none of them may become its parent."""
        children: dict[int | None, list[int]] = {}
        for child, parent in Campaign.objects.values_list("pk", "parent_id"):
            children.setdefault(parent, []).append(child)
        found, stack = set(), [pk]
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(children.get(current, []))
        return found

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", "The end date is before the start date.")
        return data


class MemberStatusForm(BootstrapMixin, forms.ModelForm):
    class Meta:
        model = CampaignMemberStatus
        fields = ["label", "sort_order", "is_default", "has_responded", "funnel_step"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.style_widgets()


class BaseMemberStatusFormSet(BaseModelFormSet):
    """One default, each label and funnel step once, and no status in use deleted."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        kept = [
            form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        if not kept:
            raise ValidationError("A campaign needs at least one member status.")
        if sum(bool(form.cleaned_data.get("is_default")) for form in kept) != 1:
            raise ValidationError("Mark exactly one status as the default for new members.")
        labels = [form.cleaned_data["label"].strip().lower() for form in kept]
        if len(labels) != len(set(labels)):
            raise ValidationError("Each status needs its own label.")
        steps = [form.cleaned_data["funnel_step"] for form in kept]
        steps = [step for step in steps if step != FunnelStep.NONE]
        if len(steps) != len(set(steps)):
            raise ValidationError("Each tracking event can move members to one status only.")
        for form in self.deleted_forms:
            if form.instance.pk and form.instance.members.exists():
                raise ValidationError(
                    f"“{form.instance.label}” still has members: give them another status first."
                )


MAX_MEMBER_STATUSES = 50
MemberStatusFormSet = modelformset_factory(
    CampaignMemberStatus,
    form=MemberStatusForm,
    formset=BaseMemberStatusFormSet,
    extra=1,
    can_delete=True,
    # A campaign has a handful of statuses; the bound keeps a forged TOTAL_FORMS from making
    # Django build thousands of forms (absolute_max) and says so in words (validate_max).
    max_num=MAX_MEMBER_STATUSES,
    absolute_max=MAX_MEMBER_STATUSES,
    validate_max=True,
)


class ListEmailForm(BootstrapMixin, forms.Form):
    subject = forms.CharField(max_length=998)
    html_body = forms.CharField(
        label="Body",
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text="Merge fields, filled for each member: "
        + ", ".join(f"{{{{{name}}}}}" for name in merge.FIELDS)
        + ". Every copy carries a one-click unsubscribe.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.style_widgets()


class InfluenceModelForm(forms.Form):
    model = forms.ChoiceField(choices=InfluenceModel.choices, initial=InfluenceModel.PRIMARY)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        style_widgets(self.fields.values())
