"""Accounts, Contacts, Leads, Opportunities (with their contact roles) and Tasks.

A write is validated by the record's own page form (crm.forms): the serializer checks the
types, then the form holds every rule the page holds (visible lookups only, a person account's
one contact, a task about a contact or a lead, ...), and saves as the page saves. No rule is
written twice, and none is weaker here.
"""

from __future__ import annotations

from typing import Any

from django import forms as django_forms
from django.db.models import Model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crm import forms
from crm.models import (
    Account,
    Contact,
    Lead,
    Opportunity,
    OpportunityContactRole,
    Task,
    User,
)

# Lookups a form offers from the records the user may see; the serializer offers the same, so
# an id outside them reads as "does not exist" whoever owns it.
VISIBLE_LOOKUPS: dict[str, type[Model]] = {
    "account": Account,
    "who_contact": Contact,
    "who_lead": Lead,
    "what_account": Account,
    "what_opportunity": Opportunity,
}
STAMPS = ("id", "created_at", "updated_at")
# What a person's page shows but no form edits: bounces (set by inbound mail), erasure, and a
# lead's conversion (set by converting it).
PERSON_READ_ONLY = (*STAMPS, "email_bounced_at", "email_bounced_reason", "forgotten_at")
LEAD_READ_ONLY = (
    *PERSON_READ_ONLY,
    "converted_at",
    "converted_account",
    "converted_contact",
    "converted_opportunity",
)


class FormBackedSerializer(serializers.ModelSerializer):
    """A record serializer whose writes go through `form_class` (a crm.forms.RecordForm)."""

    form_class: type[forms.RecordForm]

    def build_relational_field(self, field_name: str, relation_info: Any) -> Any:
        field_class, kwargs = super().build_relational_field(field_name, relation_info)
        if field_name == "owner":
            kwargs["required"] = False  # the user, unless a manager names another owner
        return field_class, kwargs

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        user = self.user
        if user is None:
            return  # the OpenAPI description is generated without one
        for name, model in VISIBLE_LOOKUPS.items():
            field = self.fields.get(name)
            if isinstance(field, serializers.PrimaryKeyRelatedField) and not field.read_only:
                field.queryset = model.objects.visible_to(user)  # type: ignore[attr-defined]
        owner = self.fields.get("owner")
        if isinstance(owner, serializers.PrimaryKeyRelatedField) and not owner.read_only:
            # A rep's form has no owner field (their records are their own): theirs is ignored.
            owner.queryset = User.objects.filter(is_active=True)

    @property
    def user(self) -> User | None:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return user if isinstance(user, User) else None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance
        model: type[Model] = self.form_class._meta.model
        record = instance if isinstance(instance, Model) else model()
        names = list(self.form_class._meta.fields or [])
        # What is not sent keeps its current value (its default for a new record).
        assert self.user is not None
        data = {**django_forms.model_to_dict(record, fields=names), **attrs}
        if instance is None and data.get("owner") is None:
            data["owner"] = self.user.pk  # the page's form starts with the user chosen
        form = self.form_class(data=data, instance=instance, user=self.user)
        if isinstance(form, forms.PersonForm):
            form.privacy_source = "API"
        if not form.is_valid():
            raise serializers.ValidationError(
                {name: [str(message) for message in errors] for name, errors in form.errors.items()}
            )
        self._form = form
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Any:
        return self._form.save()

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        return self._form.save()


class AccountSerializer(FormBackedSerializer):
    form_class = forms.AccountForm
    # The form checks it, after adding the https:// a user may leave out (as on the page).
    website = serializers.CharField(required=False, allow_blank=True, max_length=200)

    class Meta:
        model = Account
        fields = [*STAMPS, *forms.AccountForm._meta.fields]  # type: ignore[misc]
        read_only_fields = STAMPS


class ContactSerializer(FormBackedSerializer):
    form_class = forms.ContactForm

    class Meta:
        model = Contact
        fields = [*PERSON_READ_ONLY, *forms.ContactForm._meta.fields]  # type: ignore[misc]
        read_only_fields = PERSON_READ_ONLY


class LeadSerializer(FormBackedSerializer):
    form_class = forms.LeadForm

    class Meta:
        model = Lead
        fields = [*LEAD_READ_ONLY, *forms.LeadForm._meta.fields]  # type: ignore[misc]
        read_only_fields = LEAD_READ_ONLY


class ContactRoleSerializer(serializers.ModelSerializer):
    # Declared: a read-only field made from the model loses allow_blank, and the description
    # would then refuse the blank role a contact role may have.
    role = serializers.ChoiceField(
        choices=OpportunityContactRole.RoleName.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = OpportunityContactRole
        fields = ["id", "contact", "role", "is_primary"]
        read_only_fields = fields


class OpportunitySerializer(FormBackedSerializer):
    form_class = forms.OpportunityForm
    contact_roles = serializers.SerializerMethodField(
        help_text="Its contacts and their roles: those whose contact you may see, as its page "
        "shows them."
    )

    class Meta:
        model = Opportunity
        fields = [
            *STAMPS,
            *forms.OpportunityForm._meta.fields,  # type: ignore[misc]
            "owner",
            "contact_roles",
        ]
        read_only_fields = (*STAMPS, "owner")

    @extend_schema_field(ContactRoleSerializer(many=True))
    def get_contact_roles(self, opportunity: Opportunity) -> list[dict[str, Any]]:
        roles = getattr(opportunity, "visible_roles", None)
        if roles is None:
            visible = Contact.objects.visible_to(self.user) if self.user else Contact.objects.none()
            roles = opportunity.roles.filter(contact__in=visible)
        return ContactRoleSerializer(roles, many=True).data  # type: ignore[return-value]


class TaskSerializer(FormBackedSerializer):
    form_class = forms.TaskForm

    class Meta:
        model = Task
        fields = [
            *STAMPS,
            *forms.TaskForm._meta.fields,  # type: ignore[misc]
            "kind",
            "completed_at",
        ]
        read_only_fields = (*STAMPS, "kind", "completed_at")


class LeadConvertSerializer(serializers.Serializer):
    """Converting a lead, as its Convert page does (crm.forms.LeadConvertForm)."""

    account = serializers.PrimaryKeyRelatedField(
        queryset=Account.objects.none(),
        required=False,
        allow_null=True,
        help_text="An account you may see to attach the new contact to; empty: a new account "
        "from the lead's company.",
    )
    opportunity_name = serializers.CharField(
        max_length=120,
        required=False,
        allow_blank=True,
        default="",
        help_text="Empty: convert without creating an opportunity.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if isinstance(user, User):
            field = self.fields["account"]
            assert isinstance(field, serializers.PrimaryKeyRelatedField)
            field.queryset = Account.objects.visible_to(user)


class ConversionSerializer(serializers.Serializer):
    """What a conversion made, and how much of the lead's story moved to the contact."""

    lead = serializers.IntegerField(source="lead.pk")
    account = serializers.IntegerField(source="account.pk")
    contact = serializers.IntegerField(source="contact.pk")
    opportunity = serializers.IntegerField(source="opportunity.pk", allow_null=True)
    emails_moved = serializers.IntegerField()
    tasks_moved = serializers.IntegerField()
