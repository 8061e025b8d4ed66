"""The email template library: cloning, archiving, deleting an unused template, and a preview
filled with a chosen record's values. Who may use or change one is EmailTemplate's QuerySet
(`usable_by`, `visible_to`) and `editable_by`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from crm.models import Contact, EmailTemplate, Lead, User
from crm.sending import merge_values
from mailkit.display import safe_email_html
from mailkit.merge import merge


class TemplateInUse(Exception):
    """The template was sent or is waiting to be: it may be archived, never deleted."""


def template_uses(template: EmailTemplate) -> int:
    """How many rows name this template: emails sent from it, scheduled ones, list emails and
    whatever higher apps (sequences) point at it. Read from the model's reverse relations, so a
    new one is counted the day it is added."""
    total = 0
    for relation in EmailTemplate._meta.get_fields(include_hidden=True):
        if not (relation.auto_created and relation.is_relation and not relation.concrete):
            continue
        related: Any = relation.related_model
        field: Any = relation.field  # type: ignore[union-attr]
        total += related._base_manager.filter(**{field.name: template.pk}).count()
    return total


def template_delete(*, template: EmailTemplate) -> None:
    """Delete a template nothing uses; under a lock on its row, so a send that names it at the
    same moment either comes first (and the delete is refused) or finds it gone."""
    with transaction.atomic():
        locked = EmailTemplate.objects.select_for_update().get(pk=template.pk)
        if template_uses(locked):
            raise TemplateInUse("It has been used: archive it instead.")
        locked.delete()


def template_archive(*, template: EmailTemplate, archived: bool = True) -> None:
    """Archive (or restore) a template: archived ones are kept for what was sent from them but
    no longer offered in the composers."""
    EmailTemplate.objects.filter(pk=template.pk).update(
        is_active=not archived, archived_at=timezone.now() if archived else None
    )


def template_clone(*, template: EmailTemplate, user: User) -> EmailTemplate:
    """A copy named "<name> (copy)" (numbered when taken). A rep's copy is private to them; a
    manager's keeps the original's sharing."""
    private = template.is_private or not user.has_perm("crm.manage_shared_templates")
    taken = set(
        _same_scope(private=private, owner=user)
        .filter(name__istartswith=template.name[:100])
        .annotate(lower=Lower("name"))
        .values_list("lower", flat=True)
    )
    base = f"{template.name[:100]} (copy"
    name = f"{base})"
    number = 2
    while name.lower() in taken:
        name = f"{base} {number})"
        number += 1
    return EmailTemplate.objects.create(
        name=name,
        folder=template.folder,
        subject=template.subject,
        html_body=template.html_body,
        is_private=private,
        owner=user,
    )


def template_name_taken(
    *, name: str, private: bool, owner: User, exclude_pk: int | None = None
) -> bool:
    """Names are unique among shared templates, and among each owner's private ones."""
    found = _same_scope(private=private, owner=owner).filter(name__iexact=name.strip())
    if exclude_pk is not None:
        found = found.exclude(pk=exclude_pk)
    return found.exists()


def _same_scope(*, private: bool, owner: User) -> models.QuerySet[EmailTemplate]:
    if private:
        return EmailTemplate.objects.filter(is_private=True, owner=owner)
    return EmailTemplate.objects.filter(is_private=False)


@dataclass
class Preview:
    name: str
    subject: str
    html_body: str  # sanitised, for a sandboxed iframe's srcdoc


def template_preview(
    *, subject: str, html_body: str, person: Contact | Lead, user: User
) -> Preview:
    """The subject and body as this person would get them from this user (merge fields filled
    as crm.sending fills them)."""
    values = merge_values(person, person.name, person.email, user)
    body = merge(html_body, values, as_html=True)
    return Preview(
        name=person.name,
        subject=merge(subject, values, as_html=False),
        html_body=safe_email_html(body),
    )
