"""Forms for records, lead conversion, Setup, the composer, the timeline filter, privacy
choices and calls."""

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from crm import internal, scheduling, templates_library
from crm.models import (
    Account,
    Contact,
    EmailTemplate,
    Lead,
    Opportunity,
    OrgSettings,
    Task,
    User,
)
from crm.privacy_changes import privacy_update
from crm.timeline import KINDS
from mailkit import merge


def style_widgets(fields: Iterable[forms.Field]) -> None:
    """Give every widget Bootstrap's class, so templates render any field with one partial."""
    for field in fields:
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput):
            css = "form-check-input"
        elif isinstance(widget, forms.Select | forms.SelectMultiple):
            css = "form-select"
        else:
            css = "form-control"
        widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()


def empty_choices_worded(fields: Iterable[forms.Field]) -> None:
    """A select's empty choice says what it means, where Django writes "---------": "No
    account" when the field may stay empty, "Choose the stage" when it must be chosen."""
    for field in fields:
        label = str(field.label or "one").lower()
        worded = f"No {label}" if not field.required else f"Choose the {label}"
        if isinstance(field, forms.ModelChoiceField):
            if field.empty_label == "---------":
                field.empty_label = worded
        elif isinstance(field, forms.ChoiceField):
            choices: list[Any] = list(field.choices)  # type: ignore[arg-type]
            if choices and choices[0] == ("", "---------"):
                field.choices = [("", worded), *choices[1:]]


class BootstrapMixin:
    fields: dict[str, forms.Field]

    def style_widgets(self) -> None:
        style_widgets(self.fields.values())


class RecordForm(BootstrapMixin, forms.ModelForm):
    """A form for an owned record: the owner is the user unless they may assign to anyone.

    Lookups to other records offer only what the user may see.
    """

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        if "owner" in self.fields:
            if user.sees_all_records:
                owner_field = self.fields["owner"]
                assert isinstance(owner_field, forms.ModelChoiceField)
                owner_field.queryset = User.objects.filter(is_active=True).order_by("username")
                if not self.instance.pk:
                    self.initial.setdefault("owner", user.pk)
            else:
                del self.fields["owner"]
        for name, model in (
            ("account", Account),
            ("who_contact", Contact),
            ("who_lead", Lead),
            ("what_account", Account),
            ("what_opportunity", Opportunity),
        ):
            field = self.fields.get(name)
            if isinstance(field, forms.ModelChoiceField):
                visible: QuerySet[Any] = model.objects.visible_to(user)
                field.queryset = visible
        empty_choices_worded(self.fields.values())
        self.style_widgets()

    def save(self, commit: bool = True) -> Any:
        if "owner" not in self.fields and not self.instance.pk:
            self.instance.owner = self.user
        return super().save(commit=commit)


class PersonForm(RecordForm):
    """Contact and Lead: a new email address clears the old one's bounce alert; a changed Email
    Opt Out is a privacy change like any other (kept for the timeline and the audit trail)."""

    privacy_source = "edit form"  # where the timeline says an Email Opt Out change was made

    def save(self, commit: bool = True) -> Any:
        person = super().save(commit=False)
        if "email" in self.changed_data and person.pk:
            person.email_bounced_at = None
            person.email_bounced_reason = ""
        if not commit:
            return person
        if "has_opted_out_of_email" not in self.changed_data:
            person.save()
            return person
        opt_out = person.has_opted_out_of_email
        with transaction.atomic():
            person.has_opted_out_of_email = not opt_out  # as it was: privacy_update changes it
            person.save()
            privacy_update(
                person=person, by=self.user, source=self.privacy_source, email_opt_out=opt_out
            )
        return person


class AccountForm(RecordForm):
    website = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = Account
        fields = [
            "name",
            "is_person_account",
            "industry",
            "website",
            "phone",
            "billing_city",
            "billing_country",
            "description",
            "owner",
        ]


class ContactForm(PersonForm):
    class Meta:
        model = Contact
        fields = [
            "first_name",
            "last_name",
            "title",
            "account",
            "email",
            "phone",
            "has_opted_out_of_email",
            "mailing_city",
            "mailing_country",
            "owner",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        account = cleaned.get("account")
        if account is not None and account.is_person_account:
            others = account.contacts.exclude(pk=self.instance.pk)
            if others.exists():
                self.add_error(
                    "account", "A person account has exactly one contact: the person it is."
                )
        return cleaned


class LeadForm(PersonForm):
    class Meta:
        model = Lead
        fields = [
            "first_name",
            "last_name",
            "title",
            "company",
            "email",
            "phone",
            "status",
            "lead_source",
            "has_opted_out_of_email",
            "owner",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Converting is its own action: it creates the account and contact.
        status = self.fields["status"]
        assert isinstance(status, forms.ChoiceField)
        status.choices = [
            (value, label) for value, label in Lead.Status.choices if value != Lead.Status.CONVERTED
        ]


class OpportunityForm(RecordForm):
    class Meta:
        model = Opportunity
        fields = ["name", "account", "amount", "stage", "probability", "close_date", "campaign"]
        widgets = {"close_date": forms.DateInput(attrs={"type": "date"})}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "stage" in self.changed_data and "probability" not in self.changed_data:
            # A new stage brings its own probability unless the user typed one.
            cleaned["probability"] = None
        return cleaned


class TaskForm(RecordForm):
    class Meta:
        model = Task
        fields = [
            "subject",
            "status",
            "priority",
            "subtype",
            "due_date",
            "who_contact",
            "who_lead",
            "what_account",
            "what_opportunity",
            "description",
            "owner",
        ]
        widgets = {"due_date": forms.DateInput(attrs={"type": "date"})}
        labels = {
            "who_contact": "Contact",
            "who_lead": "Lead",
            "what_account": "Account",
            "what_opportunity": "Opportunity",
            "subtype": "Type",
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        reopening = (
            self.instance.pk
            and self.instance.kind == Task.Kind.FOLLOW_UP
            and self.instance.is_completed
            and cleaned.get("status") not in (None, Task.Status.COMPLETED)
        )
        if (
            reopening
            and Task.objects.open()
            .filter(
                kind=Task.Kind.FOLLOW_UP,
                who_contact=self.instance.who_contact,
                who_lead=self.instance.who_lead,
                what_opportunity=self.instance.what_opportunity,
            )
            .exclude(pk=self.instance.pk)
            .exists()
        ):
            self.add_error("status", "This record already has an open follow-up; use that one.")
        if cleaned.get("who_contact") and cleaned.get("who_lead"):
            self.add_error("who_lead", "A task is about a contact or a lead, not both.")
        if cleaned.get("what_account") and cleaned.get("what_opportunity"):
            self.add_error(
                "what_opportunity", "A task is related to an account or an opportunity, not both."
            )
        return cleaned

    def save(self, commit: bool = True) -> Any:
        task = super().save(commit=False)
        if task.is_completed and task.completed_at is None:
            task.completed_at = timezone.now()
        elif not task.is_completed:
            task.completed_at = None
        if commit:
            task.save()
        return task


class LeadConvertForm(BootstrapMixin, forms.Form):
    account = forms.ModelChoiceField(
        queryset=Account.objects.none(),
        required=False,
        empty_label="Create a new account from the company name",
        help_text="Attach the new contact to an existing account instead.",
    )
    opportunity_name = forms.CharField(
        max_length=120,
        required=False,
        help_text="Leave empty to convert without creating an opportunity.",
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        account = self.fields["account"]
        assert isinstance(account, forms.ModelChoiceField)
        account.queryset = Account.objects.visible_to(user)
        self.style_widgets()


class SetupForm(BootstrapMixin, forms.ModelForm):
    class Meta:
        model = OrgSettings
        fields = [
            "enhanced_email",
            "email_tracking_enabled",
            "deliverability_access",
            "enforce_email_privacy",
            "data_protection_in_records",
            "daily_single_email_limit",
            "daily_list_email_limit",
            "no_activity_days",
            "engagement_alert_threshold",
            "machine_open_filtering",
            "store_full_ip",
            "internal_addresses",
            "internal_ip_ranges",
            "scanner_window_seconds",
            "soft_bounce_limit",
            "soft_bounce_window_days",
            "list_email_per_minute",
            "influence_time_frame_days",
            "email_log_retention_months",
            "email_body_retention_months",
            "inbound_raw_retention_days",
            "events_after_dont_track",
            "webhook_private_addresses",
            "capture_reach_back_days",
            "capture_excluded_addresses",
            "capture_attachment_contents",
            "capture_attachment_max_kb",
            "captured_body_retention_months",
            "mailbox_failure_limit",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("internal_addresses", "internal_ip_ranges", "capture_excluded_addresses"):
            self.fields[name].widget.attrs["rows"] = 3
        self.style_widgets()

    def clean_internal_addresses(self) -> str:
        value: str = self.cleaned_data["internal_addresses"]
        _, _, errors = internal.parse_addresses(value)
        if errors:
            raise forms.ValidationError(errors)
        return value

    def clean_capture_excluded_addresses(self) -> str:
        value: str = self.cleaned_data["capture_excluded_addresses"]
        _, _, errors = internal.parse_addresses(value)
        if errors:
            raise forms.ValidationError(errors)
        return value

    def clean_internal_ip_ranges(self) -> str:
        value: str = self.cleaned_data["internal_ip_ranges"]
        _, errors = internal.parse_ip_ranges(value)
        if errors:
            raise forms.ValidationError(errors)
        return value


def parse_addresses(value: str) -> list[str]:
    """Addresses typed into a To / Cc / Bcc box: separated by commas, semicolons or spaces."""
    return [part for part in re.split(r"[,;\s]+", value.strip()) if part]


def related_key(record: Account | Opportunity) -> str:
    """A "Related to" choice's value: the kind and the id ("account:7")."""
    return f"{'account' if isinstance(record, Account) else 'opportunity'}:{record.pk}"


class SendAtField(forms.CharField):
    """A date and time typed in the user's zone (the browser's datetime-local box), cleaned to
    an aware datetime within send later's window (crm.scheduling)."""

    FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", "Send at")
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "widget", forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
        )
        super().__init__(**kwargs)
        self.zone = ZoneInfo(timezone.get_default_timezone_name())

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text:
            return None
        for pattern in self.FORMATS:
            try:
                local = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
        else:
            raise ValidationError("Enter a date and time, like 2026-05-04 09:30.")
        try:
            send_at = scheduling.send_at_from_local(local, self.zone)
        except scheduling.ScheduleRefused as refused:
            raise ValidationError(str(refused)) from refused
        problem = scheduling.send_at_problem(send_at)
        if problem:
            raise ValidationError(problem)
        return send_at

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return timezone.localtime(value, self.zone).strftime("%Y-%m-%dT%H:%M")
        return value


class EmailComposeForm(BootstrapMixin, forms.Form):
    template = forms.ModelChoiceField(
        queryset=EmailTemplate.objects.none(),
        required=False,
        empty_label="No template",
        help_text="Fills the subject and body; you can still edit them.",
    )
    to = forms.CharField(label="To", help_text="Email addresses, separated by commas.")
    cc = forms.CharField(label="Cc", required=False)
    bcc = forms.CharField(label="Bcc", required=False)
    subject = forms.CharField(max_length=998)
    html_body = forms.CharField(
        label="Body",
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text="Merge fields: "
        + ", ".join(f"{{{{{name}}}}}" for name in merge.FIELDS)
        + ". The plain-text part is made from this.",
    )
    related_to = forms.ChoiceField(
        label="Related to",
        required=False,
        help_text="The account or opportunity this email is filed under.",
    )
    campaign = forms.ModelChoiceField(
        queryset=EmailTemplate.objects.none(),
        required=False,
        empty_label="No campaign",
        help_text="Counts this email in the campaign's report.",
    )
    send_at = SendAtField(
        help_text="Send later: a date and time in your time zone, up to 60 days ahead. Leave "
        "empty and press Send to send now."
    )

    def __init__(
        self,
        *args: Any,
        related: Iterable[Account | Opportunity] = (),
        campaigns: QuerySet[Any] | None = None,
        user: User | None = None,
        later: bool = False,
        **kwargs: Any,
    ) -> None:
        """`related`: the accounts and opportunities the sender may file it under (records they
        may see); `campaigns`: what crm.hooks.email_campaigns offers (None: no campaign field);
        `user`: whose templates are offered and whose time zone Send at is in; `later`: the
        sender chose Send later, so a time is required."""
        super().__init__(*args, **kwargs)
        self.later = later
        template_field = self.fields["template"]
        assert isinstance(template_field, forms.ModelChoiceField)
        if user is not None:
            template_field.queryset = EmailTemplate.objects.usable_by(user)
            send_at_field = self.fields["send_at"]
            assert isinstance(send_at_field, SendAtField)
            send_at_field.zone = scheduling.user_zone(user)
            send_at_field.help_text = (
                f"Send later: a date and time in your time zone ({send_at_field.zone.key}), up "
                "to 60 days ahead."
            )
        self.related = {related_key(record): record for record in related}
        related_field = self.fields["related_to"]
        assert isinstance(related_field, forms.ChoiceField)
        related_field.choices = [("", "Nothing")] + [
            (key, f"{'Account' if isinstance(record, Account) else 'Opportunity'}: {record}")
            for key, record in self.related.items()
        ]
        if not self.related:
            related_field.help_text = (
                "Nothing to file it under: the recipients have no account or opportunity you "
                "can see."
            )
        if campaigns is None:
            del self.fields["campaign"]
        else:
            campaign_field = self.fields["campaign"]
            assert isinstance(campaign_field, forms.ModelChoiceField)
            campaign_field.queryset = campaigns
            if not campaigns.exists():
                campaign_field.help_text = "No active campaign to count it in."
        self.style_widgets()

    def clean_related_to(self) -> Account | Opportunity | None:
        return self.related.get(self.cleaned_data.get("related_to") or "")

    def _clean_addresses(self, name: str) -> list[str]:
        addresses = parse_addresses(self.cleaned_data.get(name, ""))
        bad = []
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                bad.append(address)
        if bad:
            raise ValidationError(f"Not an email address: {', '.join(bad)}.")
        return addresses

    def clean_to(self) -> list[str]:
        addresses = self._clean_addresses("to")
        if not addresses:
            raise ValidationError("Add at least one recipient.")
        return addresses

    def clean_cc(self) -> list[str]:
        return self._clean_addresses("cc")

    def clean_bcc(self) -> list[str]:
        return self._clean_addresses("bcc")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.later and not cleaned.get("send_at") and "send_at" not in self.errors:
            self.add_error("send_at", "Choose when to send it.")
        if not self.later and cleaned.get("send_at"):
            self.add_error(
                "send_at",
                "You chose a time: press Send later to send it then, or clear the time to send "
                "it now.",
            )
        # Unknown {{fields}} and other tools' (*|FNAME|*, %%FirstName%%) would arrive unfilled;
        # a quoted message is the other side's words, not the sender's to fix.
        written = merge.written_part(cleaned.get("html_body", ""))
        problems = merge.field_problems(cleaned.get("subject", "") + "\n" + written)
        if problems:
            raise ValidationError(problems)
        return cleaned


class EmailTemplateForm(BootstrapMixin, forms.ModelForm):
    """A library template. Only managers and admins write shared ones: a rep's are private."""

    class Meta:
        model = EmailTemplate
        fields = ["name", "folder", "subject", "html_body", "is_private"]
        labels = {"html_body": "Body"}
        widgets = {"html_body": forms.Textarea(attrs={"rows": 12})}

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["html_body"].help_text = (
            "Merge fields: "
            + ", ".join(f"{{{{{name}}}}}" for name in merge.FIELDS)
            + ". They are filled for each recipient."
        )
        folders = (
            EmailTemplate.objects.visible_to(user)
            .exclude(folder="")
            .order_by("folder")
            .values_list("folder", flat=True)
            .distinct()
        )
        self.folders = list(folders[:200])
        self.fields["folder"].widget.attrs["list"] = "template-folders"
        if not user.has_perm("crm.manage_shared_templates"):
            # A rep's templates are their own; the sharing of an existing one never changes.
            del self.fields["is_private"]
        elif self.instance.pk:
            del self.fields["is_private"]
        self.style_widgets()

    def _private(self) -> bool:
        if "is_private" in self.fields:
            return bool(self.cleaned_data.get("is_private"))
        if self.instance.pk:
            return self.instance.is_private
        return True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        problems = merge.field_problems(
            cleaned.get("subject", "") + "\n" + merge.written_part(cleaned.get("html_body", ""))
        )
        if problems:
            self.add_error("html_body", problems)
        name = (cleaned.get("name") or "").strip()
        owner = self.instance.owner if self.instance.pk and self.instance.owner else self.user
        if name and templates_library.template_name_taken(
            name=name, private=self._private(), owner=owner, exclude_pk=self.instance.pk
        ):
            where = "your private templates" if self._private() else "the shared templates"
            self.add_error("name", f"A template named “{name}” is already among {where}.")
        return cleaned

    def save(self, commit: bool = True) -> EmailTemplate:
        template: EmailTemplate = super().save(commit=False)
        template.name = template.name.strip()
        if not template.pk:
            template.owner = self.user
            template.is_private = self._private()
        if commit:
            template.save()
        return template


class TimelineFilterForm(BootstrapMixin, forms.Form):
    show = forms.ChoiceField(choices=list(KINDS.items()), required=False, label="Show")
    start = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.style_widgets()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            raise ValidationError("The start date is after the end date.")
        return cleaned


class PrivacyForm(BootstrapMixin, forms.Form):
    """A person's privacy choices; fields the user may not change are shown but disabled."""

    has_opted_out_of_email = forms.BooleanField(required=False, label="Email Opt Out")
    has_opted_out_tracking = forms.BooleanField(required=False, label="Don't Track")
    has_opted_out_processing = forms.BooleanField(required=False, label="Don't Process")
    has_opted_out_solicit = forms.BooleanField(required=False, label="Don't Market")
    should_forget = forms.BooleanField(required=False, label="Forget this Individual")

    def __init__(
        self, *args: Any, may_opt_out: bool, may_change_individual: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.may_opt_out = may_opt_out
        self.may_change_individual = may_change_individual
        self.may_edit = may_opt_out or may_change_individual
        self.fields["has_opted_out_of_email"].disabled = not may_opt_out
        for name in ("has_opted_out_tracking", "has_opted_out_processing", "has_opted_out_solicit"):
            self.fields[name].disabled = not may_change_individual
        self.fields["should_forget"].disabled = not may_change_individual
        self.style_widgets()


class LogCallForm(BootstrapMixin, forms.Form):
    subject = forms.CharField(max_length=255, initial="Call")
    comments = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.style_widgets()


class LoginForm(AuthenticationForm):
    def clean(self) -> dict[str, Any]:
        # Django does not check the username's length; axes would store it in 255 characters.
        if len(self.cleaned_data.get("username") or "") > (self.username_field.max_length or 150):
            raise self.get_invalid_login_error()
        return super().clean()


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Six-digit code",
        widget=forms.TextInput(
            attrs={
                "class": "form-control",
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": r"[0-9 ]*",
                "maxlength": 7,
            }
        ),
    )

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split())
        if len(code) != 6 or not code.isdigit():
            raise forms.ValidationError("Enter the six digits your authenticator app shows.")
        return code


class SecurityChangeForm(CodeForm):
    """Turning two-factor on or off: a code from the app and the account's password, so a
    session left open is not enough to lock its owner out (or to drop the second factor)."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(
            attrs={"class": "form-control", "autocomplete": "current-password"}
        ),
    )
    field_order = ["password", "code"]

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.")
        return password


def time_zone_choices() -> list[tuple[str, str]]:
    """The zone database's places ("Europe/Paris"), sorted, after the site's own zone."""
    places = sorted(zone for zone in available_timezones() if "/" in zone and "Etc/" not in zone)
    site = f"The site's time zone ({settings.TIME_ZONE})"
    return [("", site), ("UTC", "UTC"), *((zone, zone.replace("_", " ")) for zone in places)]


class TimeZoneForm(BootstrapMixin, forms.ModelForm):
    """The zone a user's pages show dates and times in (config.middleware)."""

    class Meta:
        model = User
        fields = ["time_zone"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["time_zone"]
        # A select, not a text box: a name mistyped would fail, and a list shows what exists.
        self.fields["time_zone"] = forms.ChoiceField(
            label="Time zone",
            choices=time_zone_choices(),
            required=False,
            validators=field.validators,
            help_text="Dates and times on every page are shown in this zone.",
        )
        self.style_widgets()
