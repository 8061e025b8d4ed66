"""Whether a person's Individual flags bind what happens after a send, in one place.

The flags bind only while Setup's "Enforce email privacy settings" is on, as they do for sending
(privacy.policy.email_policy): ingestion (Block Geolocation, Don't Track), activity metrics and
engagement alerts (Don't Profile) and the pages that say so all ask here, in Python, as a
QuerySet filter or as SQL over a recipient's copy (crm_emailmessagerelation). A forgotten person
(dataprotection.forget) is asked about here too: that binds whatever Setup says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import OuterRef, Q, Subquery
from django.utils import formats, timezone

from crm.models import Contact, EmailMessageRelation, Lead, OrgSettings, PrivacyChange
from privacy.models import Individual

DONT_TRACK = "has_opted_out_tracking"
DONT_PROFILE = "has_opted_out_profiling"
BLOCK_GEOLOCATION = "has_opted_out_geo_tracking"
_FLAGS = (DONT_TRACK, DONT_PROFILE, BLOCK_GEOLOCATION)


def flags_bind(org: OrgSettings | None = None) -> bool:
    """Setup enforces the Individual's flags ("Enforce email privacy settings")."""
    return (org or OrgSettings.load()).enforce_email_privacy


def individual_flag(
    individual: Individual | None, flag: str, org: OrgSettings | None = None
) -> bool:
    """The flag is on for this person and binds."""
    assert flag in _FLAGS
    return individual is not None and getattr(individual, flag) and flags_bind(org)


def person_flagged(flag: str, org: OrgSettings | None = None, *, prefix: str = "") -> Q:
    """A filter on Contacts or Leads (or, with `prefix` "contact__", rows naming one): the
    person's flag is on and binds. Matches nothing when Setup does not enforce the flags."""
    assert flag in _FLAGS
    if not flags_bind(org):
        return Q(pk__in=[])
    return Q(**{f"{prefix}individual__{flag}": True})


def row_person_flagged(flag: str, org: OrgSettings | None = None) -> Q:
    """The same on rows naming a Contact or a Lead (a copy, a campaign member, a list email's
    recipient): the flag of the one they name is on and binds."""
    return person_flagged(flag, org, prefix="contact__") | person_flagged(
        flag, org, prefix="lead__"
    )


def relation_individual_joins(relation: str = "r") -> str:
    """SQL LEFT JOINs from a copy (alias `relation`) to its person's Individual, `flag_i`."""
    return f"""
        LEFT JOIN crm_contact AS flag_c ON flag_c.id = {relation}.contact_id
        LEFT JOIN crm_lead AS flag_l ON flag_l.id = {relation}.lead_id
        LEFT JOIN privacy_individual AS flag_i
            ON flag_i.id = COALESCE(flag_c.individual_id, flag_l.individual_id)
    """


def relation_forgotten(relation: EmailMessageRelation) -> bool:
    """The copy's person has been forgotten (dataprotection.forget). Told by its blank
    address: the forget blanks every copy of the person, those linked to their Contact or Lead
    and those sent to their address alone (a record the sender could not see), and a copy we
    send always has one. Not a flag Setup can switch off: it always binds."""
    return not relation.address


def relation_forgotten_sql(relation: str = "r") -> str:
    """SQL, true when the copy `relation` was forgotten (relation_forgotten)."""
    return f"({relation}.address = '')"


def relation_flag_sql(flag: str, org: OrgSettings | None = None) -> str:
    """SQL, true when the flag of the copy's person is on and binds; reads `flag_i`
    (relation_individual_joins), or nothing when Setup does not enforce the flags."""
    assert flag in _FLAGS
    return f"COALESCE(flag_i.{flag}, FALSE)" if flags_bind(org) else "FALSE"


def relation_flagged_sql(flag: str, org: OrgSettings | None = None, *, relation: str = "r") -> str:
    """SQL, true when the flag of the person of the copy `relation` is on and binds, for a
    WHERE clause that should not change its query's joins: the flagged people are few, read
    once as a set (not a subquery per row)."""
    assert flag in _FLAGS
    if not flags_bind(org):
        return "FALSE"

    def flagged(table: str) -> str:
        join = "JOIN privacy_individual AS i ON i.id = p.individual_id"
        return f"SELECT p.id FROM {table} AS p {join} WHERE i.{flag}"  # noqa: S608

    # COALESCE: a copy with no contact (or no lead) is NULL IN (...), which is not false.
    return (
        f"(COALESCE({relation}.contact_id IN ({flagged('crm_contact')}), FALSE) "
        f"OR COALESCE({relation}.lead_id IN ({flagged('crm_lead')}), FALSE))"
    )


@dataclass(frozen=True)
class DontTrack:
    """A person under Don't Track now: since when (the PrivacyChange that turned it on, when
    there is one), and what becomes of the opens and clicks on copies sent to them before."""

    since: datetime | None
    anonymous: bool  # Setup's "Counted anonymously", else "Not stored"

    def covers(self, sent_at: datetime | None) -> bool:
        """A copy sent at `sent_at` went out before the flag (or when is unknown)."""
        return self.since is None or sent_at is None or sent_at < self.since

    @property
    def note(self) -> str:
        when = (
            f" since {formats.date_format(timezone.localtime(self.since), 'DATE_FORMAT')}"
            if self.since
            else ""
        )
        fate = "counted only in totals" if self.anonymous else "not recorded"
        return f"Don't Track{when}: later opens and clicks are {fate}"


def dont_track_of(people: Iterable[Contact | Lead]) -> dict[tuple[str, int], DontTrack]:
    """The people among these under Don't Track (binding), by ("contact" | "lead", id): one
    query per kind, and none for people with no Individual."""
    wanted = {
        kind: {p.pk for p in people if isinstance(p, model) and p.individual_id}
        for kind, model in (("contact", Contact), ("lead", Lead))
    }
    if not any(wanted.values()):
        return {}
    org = OrgSettings.load()
    if not flags_bind(org):
        return {}
    anonymous = org.events_after_dont_track == OrgSettings.AfterDontTrack.ANONYMOUS
    found: dict[tuple[str, int], DontTrack] = {}
    for kind, model in (("contact", Contact), ("lead", Lead)):
        if not wanted[kind]:
            continue
        turned_on = PrivacyChange.objects.filter(
            **{kind: OuterRef("pk")}, field=DONT_TRACK, value=True
        ).order_by("-changed_at", "-pk")
        rows = (
            model.objects.filter(pk__in=wanted[kind], **{f"individual__{DONT_TRACK}": True})
            .annotate(since=Subquery(turned_on.values("changed_at")[:1]))
            .values_list("pk", "since")
        )
        found |= {(kind, pk): DontTrack(since, anonymous) for pk, since in rows}
    return found
