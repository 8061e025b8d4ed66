"""Forms for campaigns, member statuses, list email and the influence report."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import BaseModelFormSet, modelformset_factory

from campaigns.models import (
    Campaign,
    CampaignMember,
    CampaignMemberStatus,
    FunnelStep,
    InfluenceModel,
)
from crm import scheduling
from crm.filters import owners_by_name
from crm.forms import BootstrapMixin, SendAtField, empty_choices_worded, style_widgets
from crm.models import EmailTemplate, User
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
        owner.queryset = User.objects.filter(is_active=True)
        owners_by_name(self, "owner")
        empty_choices_worded(self.fields.values())
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


# How many members the preview offers to show the email as (the first, by name).
PREVIEW_CHOICES = 100


class ListEmailForm(BootstrapMixin, forms.Form):
    template = forms.ModelChoiceField(
        queryset=EmailTemplate.objects.none(),
        required=False,
        empty_label="No template",
        help_text="Fills the subject and body; you can still edit them.",
    )
    subject = forms.CharField(max_length=998)
    html_body = forms.CharField(
        label="Body",
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text="Merge fields, filled for each member: "
        + ", ".join(f"{{{{{name}}}}}" for name in merge.FIELDS)
        + ". Every link is tracked, and every copy carries a one-click unsubscribe.",
    )
    preview_member = forms.ModelChoiceField(
        label="Preview and test as",
        queryset=CampaignMember.objects.none(),
        required=False,
        empty_label=None,
        help_text=f"Whose values fill the merge fields in the preview and the test "
        f"(the first {PREVIEW_CHOICES} members by name).",
    )
    send_at = SendAtField(
        help_text="Send later: when the first batch goes, in your time zone, up to 60 days "
        "ahead. Leave empty to send now."
    )

    def __init__(
        self,
        *args: Any,
        members: QuerySet[CampaignMember] | None = None,
        user: User | None = None,
        later: bool = False,
        sending_now: bool = False,
        **kwargs: Any,
    ) -> None:
        """`later` / `sending_now`: the button pressed was Send later / Send (a preview or a
        test ignores the time)."""
        super().__init__(*args, **kwargs)
        self.later, self.sending_now = later, sending_now
        if user is not None:
            template_field = self.fields["template"]
            assert isinstance(template_field, forms.ModelChoiceField)
            template_field.queryset = EmailTemplate.objects.usable_by(user)
            send_at_field = self.fields["send_at"]
            assert isinstance(send_at_field, SendAtField)
            send_at_field.zone = scheduling.user_zone(user)
            send_at_field.help_text = (
                f"Send later: when the first batch goes, in your time zone "
                f"({send_at_field.zone.key}), up to 60 days ahead. Leave empty to send now."
            )
        field = self.fields["preview_member"]
        assert isinstance(field, forms.ModelChoiceField)
        if members is not None:
            chosen = members.select_related("contact", "lead").order_by(
                "contact__last_name", "lead__last_name", "pk"
            )
            field.queryset = CampaignMember.objects.filter(
                pk__in=chosen.values("pk")[:PREVIEW_CHOICES]
            ).select_related("contact", "lead")
            field.label_from_instance = _member_label  # type: ignore[method-assign,assignment]
        self.style_widgets()

    def clean_html_body(self) -> str:
        body: str = self.cleaned_data["html_body"]
        problems = merge.field_problems(merge.written_part(body))
        if problems:
            raise ValidationError(problems)
        return body

    def clean_subject(self) -> str:
        subject: str = self.cleaned_data["subject"]
        problems = merge.field_problems(subject)
        if problems:
            raise ValidationError(problems)
        return subject

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.later and not cleaned.get("send_at") and "send_at" not in self.errors:
            self.add_error("send_at", "Choose when to send it.")
        if self.sending_now and cleaned.get("send_at"):
            self.add_error(
                "send_at",
                "You chose a time: press Send later to start it then, or clear the time to send "
                "it now.",
            )
        return cleaned


def _member_label(member: CampaignMember) -> str:
    person = member.contact or member.lead
    if person is None:
        return "—"
    return f"{person.name} <{person.email}>" if person.email else person.name


class InfluenceModelForm(forms.Form):
    model = forms.ChoiceField(choices=InfluenceModel.choices, initial=InfluenceModel.PRIMARY)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        style_widgets(self.fields.values())
