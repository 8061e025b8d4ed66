"""The email composer: a new email from a Contact's or Lead's page, and Reply / Reply all /
Forward of an email the user may see (opened from the email's page and from timeline entries).
Both send through crm.sending, now, or later (Send later keeps a crm.scheduling ScheduledEmail
that beat sends at its time)."""

import re
from collections.abc import Sequence
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.html import escape, linebreaks

from crm import forms, hooks
from crm.models import (
    Account,
    Contact,
    EmailMessage,
    EmailMessageRelation,
    EmailSuppression,
    EmailTemplate,
    Lead,
    Opportunity,
    User,
)
from crm.scheduling import ScheduleRefused, scheduled_email_create, user_zone
from crm.sending import SendRefused, email_send
from crm.views.access import current_user, get_record_for_user, visible_pks
from mailkit.display import editable_html

Relation = EmailMessageRelation

# ?compose=<mode> on an email's page opens the composer answering it (tracking.views).
REPLY_MODES = {"reply": "Reply", "reply_all": "Reply all", "forward": "Forward"}

# Opportunities offered under "Related to": a bounded list, the latest closing first.
_OPPORTUNITY_CHOICES = 100


@permission_required("crm.add_emailmessage", raise_exception=True)
def email_compose(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Write an email to a Contact or Lead (and anyone else); it is sent by a Celery task."""
    model: type[Contact] | type[Lead] = Contact if kind == "contact" else Lead
    person = get_record_for_user(model, request, pk, "individual")
    user = current_user(request)
    related = _related_choices(user, [person], original=None)
    default = person.account if isinstance(person, Contact) else person.converted_account
    suppression = EmailSuppression.objects.filter(address=person.email.lower()).first()
    bounce = person.email_bounced_reason or (suppression.detail if suppression else "")
    return _composer(
        request,
        user=user,
        initial={"to": person.email, "related_to": _initial_related(related, default)},
        related=related,
        people=[person],
        original=None,
        mode="",
        context={
            "person": person,
            "kicker": "New email",
            "heading": f"To {person}",
            "cancel_url": person.get_absolute_url(),
            "bounce_alerts": [(person.email, person.email_bounced_at, bounce)] if bounce else [],
            "no_address": "" if person.email else str(person),
        },
    )


def email_reply(request: HttpRequest, pk: int, mode: str) -> HttpResponse:
    """Reply, Reply all or Forward: the composer with the original quoted, its recipients and
    subject filled in; the email sent joins the original's conversation."""
    if mode not in REPLY_MODES:
        raise Http404
    user = current_user(request)
    if not user.has_perm("crm.add_emailmessage"):
        raise PermissionDenied
    # The one rule for email: only what the user may see can be answered or passed on.
    original = get_object_or_404(
        EmailMessage.objects.visible_to(user).select_related(
            "related_account", "related_opportunity"
        ),
        pk=pk,
    )
    rows = list(original.relations.select_related("contact__account", "lead"))
    to, cc = _reply_addresses(original, rows, mode=mode, user=user)
    # Only the records on it the user may see decide what it may be filed under.
    contacts = visible_pks(user, Contact, (row.contact_id for row in rows))
    leads = visible_pks(user, Lead, (row.lead_id for row in rows))
    people: list[Contact | Lead] = [
        *(row.contact for row in rows if row.contact and row.contact.pk in contacts),
        *(row.lead for row in rows if row.lead and row.lead.pk in leads),
    ]
    related = _related_choices(user, people, original=original)
    default = original.related_opportunity or original.related_account
    if default is None:
        default = next((p.account for p in people if isinstance(p, Contact) and p.account), None)
    initial = {
        "to": ", ".join(to),
        "cc": ", ".join(cc),
        "subject": reply_subject(original.subject, forward=mode == "forward"),
        "html_body": quoted_body(original, forward=mode == "forward"),
        "related_to": _initial_related(related, default),
        "campaign": original.campaign_id,
    }
    alerts = [
        (address, None, detail)
        for address, detail in EmailSuppression.objects.filter(
            address__in=[a.lower() for a in to + cc]
        ).values_list("address", "detail")
    ]
    return _composer(
        request,
        user=user,
        initial=initial,
        related=related,
        people=[],
        original=original,
        mode=mode,
        context={
            "original": original,
            "mode": mode,
            "kicker": REPLY_MODES[mode],
            "heading": initial["subject"] or "(no subject)",
            "cancel_url": original.get_absolute_url(),
            "bounce_alerts": alerts,
            "no_address": "",
        },
    )


def _composer(
    request: HttpRequest,
    *,
    user: User,
    initial: dict[str, Any],
    related: Sequence[Account | Opportunity],
    people: Sequence[Contact | Lead],
    original: EmailMessage | None,
    mode: str,
    context: dict[str, Any],
) -> HttpResponse:
    """Show the composer, or send what it posted and go to the new email's page (or keep it
    to send later and go to the Scheduled page)."""
    later = request.POST.get("action") == "later"
    form = forms.EmailComposeForm(
        request.POST or None,
        initial=initial,
        related=related,
        campaigns=hooks.email_campaigns(user=user),
        user=user,
        later=later,
    )
    if request.method == "POST" and form.is_valid() and later:
        data = form.cleaned_data
        try:
            scheduled = scheduled_email_create(
                sender=user,
                to=data["to"],
                cc=data["cc"],
                bcc=data["bcc"],
                subject=data["subject"],
                html_body=data["html_body"],
                send_at=data["send_at"],
                person=people[0] if len(people) == 1 else None,
                related_to=data["related_to"],
                campaign=data.get("campaign"),
                template=data.get("template"),
                reply_to=original,
                forward=mode == "forward",
            )
        except ScheduleRefused as refused:
            form.add_error(None, str(refused))
        else:
            when = timezone.localtime(scheduled.send_at, user_zone(user))
            messages.success(
                request,
                f"Email scheduled for {when:%a, %b} {when.day}, {when:%Y at %H:%M} "
                f"({when.tzinfo}). You can change or cancel it here until it goes.",
            )
            return redirect("crm:scheduled_list")
    elif request.method == "POST" and form.is_valid():
        data = form.cleaned_data

        def recipients(addresses: list[str]) -> list[Contact | Lead | str]:
            # The person the email is written to is named as that record, not matched by address.
            named = {p.email.lower(): p for p in people if p.email}
            return [named.get(a.lower(), a) for a in addresses]

        try:
            if not user.email:
                raise SendRefused("Your user has no email address to send from; ask an admin.")
            email = email_send(
                sender=user,
                to=recipients(data["to"]),
                cc=recipients(data["cc"]),
                bcc=recipients(data["bcc"]),
                subject=data["subject"],
                html_body=data["html_body"],
                related_to=data["related_to"],
                campaign=data.get("campaign"),
                reply_to=original,
                forward=mode == "forward",
                template=data.get("template"),
            )
        except SendRefused as refused:
            form.add_error(None, str(refused))
        else:
            refused_rows = email.relations.filter(
                delivery_status=Relation.Delivery.REFUSED
            ).values_list("address", "refusal_reason")
            notes = "; ".join(
                f"not sent to {address} ({reason})" for address, reason in refused_rows
            )
            messages.success(request, "Email queued." + (f" Note: {notes}." if notes else ""))
            return redirect(email)
    templates = editable_templates(user)
    return render(
        request,
        "crm/email_compose.html",
        context
        | {
            "form": form,
            "templates": templates,
            "body": editable_html(form["html_body"].value() or ""),
        },
    )


def _related_choices(
    user: User, people: Sequence[Contact | Lead], *, original: EmailMessage | None
) -> list[Account | Opportunity]:
    """What an email to these people may be filed under, among the records the user may see:
    their accounts (a converted lead's too), those accounts' opportunities and the ones the
    contacts have a role on, and what the original was filed under. Two queries."""
    accounts_of = [
        p.account_id if isinstance(p, Contact) else p.converted_account_id for p in people
    ]
    opportunity_of = []
    if original is not None:
        accounts_of.append(original.related_account_id)
        opportunity_of.append(original.related_opportunity_id)
    account_ids = {pk for pk in accounts_of if pk is not None}
    opportunity_ids = {pk for pk in opportunity_of if pk is not None}
    contact_ids = {p.pk for p in people if isinstance(p, Contact)}
    accounts: list[Account | Opportunity] = []
    if account_ids:
        accounts += Account.objects.visible_to(user).filter(pk__in=account_ids).order_by("name")
    if not (account_ids or contact_ids or opportunity_ids):
        return accounts
    # A subquery, so a contact's several roles on one opportunity list it once.
    wanted = Opportunity.objects.filter(
        Q(account_id__in=account_ids)
        | Q(roles__contact_id__in=contact_ids)
        | Q(pk__in=opportunity_ids)
    ).values("pk")
    opportunities = (
        Opportunity.objects.visible_to(user)
        .filter(pk__in=wanted)
        .order_by("-close_date", "name", "pk")[:_OPPORTUNITY_CHOICES]
    )
    return [*accounts, *opportunities]


def _initial_related(
    related: Sequence[Account | Opportunity], default: Account | Opportunity | None
) -> str:
    """The "Related to" value to start with: `default` when it is offered, else nothing."""
    if default is None or default not in related:
        return ""
    return forms.related_key(default)


def _reply_addresses(
    original: EmailMessage, rows: Sequence[Relation], *, mode: str, user: User
) -> tuple[list[str], list[str]]:
    """To and Cc of an answer. Reply: the other party (who sent a received email; whom a sent
    one went to). Reply all: every other party, Cc kept as Cc. Forward: nobody. The user's
    own address never; Bcc never (the people on it were hidden from the others)."""
    if mode == "forward":
        return [], []
    by_type: dict[str, list[str]] = {}
    for row in rows:
        by_type.setdefault(row.relation_type, []).append(row.address)
    senders, receivers = by_type.get(Relation.Type.FROM, []), by_type.get(Relation.Type.TO, [])
    if not senders and original.from_address:
        senders = [original.from_address]
    other, rest = (senders, receivers) if original.incoming else (receivers, senders)
    to = other if mode == "reply" else [*other, *rest]
    cc = by_type.get(Relation.Type.CC, []) if mode == "reply_all" else []
    mine = {user.email.lower()} - {""}
    seen: set[str] = set()

    def keep(addresses: list[str]) -> list[str]:
        kept = []
        for address in addresses:
            key = address.lower()
            if key not in mine and key not in seen:
                seen.add(key)
                kept.append(address)
        return kept

    return keep(to), keep(cc)


_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|aw|sv)\s*(?:\[\d+\])?\s*:)+\s*", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"^(?:\s*(?:fwd?|wg)\s*:)+\s*", re.IGNORECASE)


def reply_subject(subject: str, *, forward: bool) -> str:
    """The subject with one "Re: " (or "Fwd: "), however many the original had."""
    if forward:
        return "Fwd: " + _FORWARD_PREFIX.sub("", subject)
    return "Re: " + _REPLY_PREFIX.sub("", subject)


def quoted_body(original: EmailMessage, *, forward: bool) -> str:
    """The composer's starting body: room to write, then "On <date>, <name> wrote:" (or the
    forwarded message's headers) and the original, sanitised, in a blockquote."""
    when = timezone.localtime(original.message_date or original.created_at)
    date = f"{when:%a, %b} {when.day}, {when:%Y} at {when:%H:%M}"
    who = escape(
        f"{original.from_name} <{original.from_address}>"
        if original.from_name
        else original.from_address
    )
    if forward:
        lines = [
            "---------- Forwarded message ----------",
            f"From: {who}",
            f"Date: {date}",
            f"Subject: {escape(original.subject)}",
            f"To: {escape(original.to_addresses)}",
        ]
        if original.cc_addresses:
            lines.append(f"Cc: {escape(original.cc_addresses)}")
        header = "<br>".join(lines)
    else:
        header = f"On {date}, {who} wrote:"
    body = (
        editable_html(original.html_body)
        if original.html_body.strip()
        else linebreaks(original.text_body, autoescape=True)
    )
    quoted = f"<p><br></p><p>{header}</p><blockquote>{body}</blockquote>"
    # What the quote says is not the sender's to fill: a zero-width space keeps "{{name}}" in
    # someone else's words from being merged or refused as an unknown merge field.
    return quoted.replace("{{", "{\u200b{")


def editable_templates(user: User) -> dict[str, dict[str, str]]:
    """The templates this user may use, as the composer's editor takes them
    (static/js/composer.js reads them from the page): the single and list email composers."""
    return {
        str(t.pk): {"subject": t.subject, "html_body": editable_html(t.html_body)}
        for t in EmailTemplate.objects.usable_by(user)
    }
