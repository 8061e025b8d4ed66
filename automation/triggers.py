"""Triggered emails: rules admins set up, fired by beat for the events since they were made.

Events are found set-based in each run (no hooks in crm): leads created since the rule
(optionally of a source), opportunities at a stage, campaign members at a status, Contacts and
Leads quiet for N days. Each firing is a Firing row unique on (rule, event key), inserted in
the transaction that sends the email or enrols the record, so a rule never fires twice for one
event however runs race.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from automation.eligibility import Person, people_refusals, person_key
from automation.enrolment import EnrolRefused, people_enrol
from automation.models import Firing, Rule
from campaigns.models import CampaignMember
from crm.models import Contact, EmailMessage, Lead, Opportunity, OpportunityContactRole
from crm.sending import SendRefused, email_send

# Events handled per rule and run: a rule matching many records at once goes on next run.
PER_RUN = 500


class _Later(Exception):
    """The send is refused for now (a daily limit): the firing is rolled back, tried next run."""


def rules_fire(*, now: datetime | None = None) -> int:
    """Fire every active rule for its new events; returns how many firings were recorded."""
    now = now or timezone.now()
    fired = 0
    for rule in Rule.objects.filter(is_active=True).select_related(
        "template", "sender", "sequence"
    ):
        fired += rule_fire(rule=rule, now=now)
    return fired


def rule_fire(*, rule: Rule, now: datetime) -> int:
    candidates = list(_events(rule, now))
    done = set(
        Firing.objects.filter(rule=rule, event_key__in=[key for key, _ in candidates]).values_list(
            "event_key", flat=True
        )
    )
    fired = 0
    for key, person in candidates:
        if key in done:
            continue
        try:
            with transaction.atomic():
                firing = Firing.objects.create(
                    rule=rule,
                    event_key=key,
                    contact=person if isinstance(person, Contact) else None,
                    lead=person if isinstance(person, Lead) else None,
                    fired_at=now,
                )
                _act(rule, firing, person)
        except IntegrityError:
            continue  # another run fired it
        except _Later:
            break
        fired += 1
    return fired


def _act(rule: Rule, firing: Firing, person: Person | None) -> None:
    if person is None:
        firing.outcome = "No Contact or Lead to write to"
    elif rule.action == Rule.Action.ENROL and rule.sequence is not None:
        try:
            enrolments, plan = people_enrol(
                sequence=rule.sequence, people=[person], by=None, rule=rule
            )
        except EnrolRefused as error:
            firing.outcome = str(error)
        else:
            if enrolments:
                firing.enrolment, firing.outcome = enrolments[0], "Enrolled"
            else:
                firing.outcome = f"Skipped: {plan.skipped[0][1]}"
    elif rule.template is not None:
        refused = people_refusals([person]).get(person_key(person))
        if refused:
            firing.outcome = f"Skipped: {refused}"
        else:
            try:
                firing.email = email_send(
                    sender=rule.sender or person.owner,
                    to=[person],
                    subject=rule.template.subject,
                    html_body=rule.template.html_body,
                    source=EmailMessage.Source.AUTOMATION,
                    template=rule.template,
                )
            except SendRefused as error:
                if "daily" in str(error):
                    raise _Later from error
                firing.outcome = f"Not sent: {error}"[:255]
            else:
                firing.outcome = "Email sent"
    else:
        firing.outcome = "The rule has no template or sequence"
    firing.save(update_fields=["outcome", "email", "enrolment"])


def _events(rule: Rule, now: datetime) -> Iterator[tuple[str, Person | None]]:
    """The rule's candidate events (event key, the person to write to), oldest first."""
    since = rule.created_at
    if rule.trigger == Rule.Trigger.LEAD_CREATED:
        leads = Lead.objects.filter(created_at__gte=since).exclude(status=Lead.Status.CONVERTED)
        if rule.lead_source:
            leads = leads.filter(lead_source=rule.lead_source)
        fired = Firing.objects.filter(rule=rule, lead__isnull=False).values("lead_id")
        for lead in (
            leads.exclude(pk__in=fired)
            .select_related("individual", "owner")
            .order_by("pk")[:PER_RUN]
        ):
            yield f"lead:{lead.pk}", lead
    elif rule.trigger == Rule.Trigger.OPPORTUNITY_STAGE:
        opportunities = Opportunity.objects.filter(
            stage=rule.opportunity_stage, updated_at__gte=since
        ).order_by("pk")[:PER_RUN]
        people = _opportunity_people([o.pk for o in opportunities])
        for opportunity in opportunities:
            yield f"opportunity:{opportunity.pk}:{opportunity.stage}", people.get(opportunity.pk)
    elif rule.trigger == Rule.Trigger.MEMBER_STATUS and rule.member_status_id:
        for member in (
            CampaignMember.objects.filter(status_id=rule.member_status_id, updated_at__gte=since)
            .select_related(
                "contact__individual", "contact__owner", "lead__individual", "lead__owner"
            )
            .order_by("pk")[:PER_RUN]
        ):
            yield f"member:{member.pk}:{member.status_id}", member.contact or member.lead
    elif rule.trigger == Rule.Trigger.QUIET and rule.quiet_days:
        yield from _quiet(rule, now)


def _opportunity_people(ids: list[int]) -> dict[int, Contact]:
    """Each opportunity's primary contact role's contact (else its first)."""
    people: dict[int, Contact] = {}
    for role in (
        OpportunityContactRole.objects.filter(opportunity_id__in=ids)
        .select_related("contact__individual", "contact__owner")
        .order_by("opportunity_id", "-is_primary", "pk")
    ):
        people.setdefault(role.opportunity_id, role.contact)
    return people


def _quiet(rule: Rule, now: datetime) -> Iterator[tuple[str, Person | None]]:
    """Contacts and Leads with no activity for the rule's days that became quiet after the rule
    was made; the key names the last activity, so a record quiet again later fires again."""
    days = timedelta(days=rule.quiet_days or 0)
    cutoff = now - days
    became_quiet_since = rule.created_at - days
    quiet = Q(created_at__lte=cutoff) & (
        Q(activity__last_activity_at__isnull=True, created_at__gte=became_quiet_since)
        | Q(
            activity__last_activity_at__lte=cutoff,
            activity__last_activity_at__gte=became_quiet_since,
        )
    )
    contacts = Contact.objects.filter(quiet).select_related("individual", "owner", "activity")
    leads = (
        Lead.objects.filter(quiet)
        .exclude(status=Lead.Status.CONVERTED)
        .select_related("individual", "owner", "activity")
    )
    for kind, queryset in (("contact", contacts), ("lead", leads)):
        for person in queryset.order_by("pk")[:PER_RUN]:
            metric = getattr(person, "activity", None)
            last = metric.last_activity_at if metric and metric.last_activity_at else None
            yield f"quiet:{kind}:{person.pk}:{last.isoformat() if last else 'never'}", person
