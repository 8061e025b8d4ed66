"""A Contact's or Lead's privacy choices: Email Opt Out (read) and the Individual's flags."""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework import serializers

from api.serializers.mail import ReadSerializer
from crm.models import Contact, Lead, PrivacyChange
from crm.privacy_changes import PRIVACY_FLAGS
from privacy.models import Individual


class PrivacyChangeSerializer(ReadSerializer):
    """One kept change, as the record's timeline shows it."""

    changed_by = serializers.IntegerField(source="changed_by_id", allow_null=True, read_only=True)

    class Meta:
        model = PrivacyChange
        fields = ["id", "field", "label", "value", "source", "changed_by", "changed_at"]
        read_only_fields = fields


def _flag(name: str) -> serializers.BooleanField:
    field = Individual._meta.get_field(name)
    assert isinstance(field, models.BooleanField)
    return serializers.BooleanField(
        required=False, label=str(field.verbose_name), help_text=str(field.help_text)
    )


class PersonPrivacySerializer(serializers.Serializer):
    """The person's privacy: the Individual's flags (all false when they have no Individual);
    a PATCH changes the flags it names, each change kept as a PrivacyChange."""

    id = serializers.IntegerField(read_only=True)
    individual = serializers.IntegerField(source="individual_id", allow_null=True, read_only=True)
    email_opt_out = serializers.BooleanField(source="has_opted_out_of_email", read_only=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        # The flags the record page edits (crm.privacy_changes.PRIVACY_FLAGS), whatever they are.
        return super().get_fields() | {name: _flag(name) for name in PRIVACY_FLAGS}

    def to_representation(self, person: Contact | Lead) -> dict[str, Any]:
        individual = person.individual
        return {
            "id": person.pk,
            "individual": person.individual_id,
            "email_opt_out": person.has_opted_out_of_email,
            **{name: bool(individual and getattr(individual, name)) for name in PRIVACY_FLAGS},
        }


class PrivacyUpdatedSerializer(PersonPrivacySerializer):
    """The person's privacy after a change, with the changes kept (none when nothing changed)."""

    changes = PrivacyChangeSerializer(many=True, read_only=True)
