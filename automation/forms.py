"""The automation pages' forms: a sequence, a step, a triggered-email rule."""

from __future__ import annotations

from typing import Any

from django import forms

from automation.models import Rule, Sequence, Step
from campaigns.models import CampaignMemberStatus
from crm.forms import empty_choices_worded, style_widgets
from crm.models import EmailTemplate, Lead, Opportunity, User


def _shared_templates(user: User) -> Any:
    # A sequence or a rule is shared: a private template would be sent by people who cannot see it.
    return EmailTemplate.objects.usable_by(user).filter(is_private=False)


def _choices(form: forms.BaseForm, name: str) -> forms.ModelChoiceField:
    field = form.fields[name]
    assert isinstance(field, forms.ModelChoiceField)
    return field


class SequenceForm(forms.ModelForm):
    class Meta:
        model = Sequence
        fields = ["name", "pause_on_auto_reply"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        style_widgets(self.fields.values())


class StepForm(forms.ModelForm):
    class Meta:
        model = Step
        fields = [
            "kind",
            "template",
            "thread",
            "wait_kind",
            "wait_days",
            "wait_weekday",
            "wait_time",
            "task_kind",
            "task_subject",
        ]
        widgets = {"wait_time": forms.TimeInput(attrs={"type": "time"})}
        labels = {"wait_days": "Business days", "wait_weekday": "Weekday", "wait_time": "Time"}

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "template").queryset = _shared_templates(user)
        self.fields["thread"].required = False
        self.fields["wait_kind"].required = False
        empty_choices_worded(self.fields.values())
        style_widgets(self.fields.values())

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind == Step.Kind.EMAIL:
            if not data.get("template"):
                self.add_error("template", "Choose the template this email sends.")
            data["thread"] = data.get("thread") or Step.Thread.NEW
        elif kind == Step.Kind.WAIT:
            wait_kind = data.get("wait_kind")
            if wait_kind == Step.WaitKind.BUSINESS_DAYS:
                if not data.get("wait_days"):
                    self.add_error("wait_days", "Give the number of business days (1 or more).")
            elif wait_kind == Step.WaitKind.WEEKDAY_TIME:
                if data.get("wait_weekday") is None:
                    self.add_error("wait_weekday", "Choose the weekday.")
                if data.get("wait_time") is None:
                    self.add_error("wait_time", "Give the time of day.")
            else:
                self.add_error("wait_kind", "Choose how long to wait.")
        elif kind == Step.Kind.TASK and not data.get("task_kind"):
            self.add_error("task_kind", "Choose the kind of task.")
        return data


class RuleForm(forms.ModelForm):
    class Meta:
        model = Rule
        fields = [
            "name",
            "is_active",
            "trigger",
            "lead_source",
            "opportunity_stage",
            "member_status",
            "quiet_days",
            "action",
            "template",
            "sender",
            "sequence",
        ]

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lead_source"] = forms.ChoiceField(
            choices=[("", "Any source"), *Lead.Source.choices], required=False
        )
        self.fields["opportunity_stage"] = forms.ChoiceField(
            choices=[("", "—"), *Opportunity.Stage.choices], required=False
        )
        statuses = _choices(self, "member_status")
        statuses.queryset = CampaignMemberStatus.objects.select_related("campaign").order_by(
            "campaign__name", "sort_order"
        )
        statuses.label_from_instance = lambda s: f"{s.campaign}: {s.label}"  # type: ignore[method-assign,assignment]
        _choices(self, "template").queryset = _shared_templates(user)
        sender = _choices(self, "sender")
        sender.queryset = User.objects.filter(is_active=True).order_by("username")
        sender.empty_label = "The record's owner"
        _choices(self, "sequence").queryset = Sequence.objects.filter(status=Sequence.Status.ACTIVE)
        empty_choices_worded(self.fields.values())
        style_widgets(self.fields.values())

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        trigger, action = data.get("trigger"), data.get("action")
        if trigger == Rule.Trigger.OPPORTUNITY_STAGE and not data.get("opportunity_stage"):
            self.add_error("opportunity_stage", "Choose the stage.")
        if trigger == Rule.Trigger.MEMBER_STATUS and not data.get("member_status"):
            self.add_error("member_status", "Choose the campaign member status.")
        if trigger == Rule.Trigger.QUIET and not data.get("quiet_days"):
            self.add_error("quiet_days", "Give the number of quiet days (1 or more).")
        if action == Rule.Action.SEND_TEMPLATE and not data.get("template"):
            self.add_error("template", "Choose the template to send.")
        if action == Rule.Action.ENROL and not data.get("sequence"):
            self.add_error("sequence", "Choose the sequence to enrol in.")
        return data
