"""An enrolment stops by itself on a reply, a hard bounce, an unsubscribe or complaint, a lead
conversion, or when the owner stops it; auto-replies pause it. The reason is kept."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from automation.advance import enrolments_advance, enrolments_stops_detect
from automation.enrolment import enrolment_stop, people_enrol
from automation.models import Enrolment, EnrolmentEvent, Sequence
from crm.conversion import lead_convert
from crm.models import EmailMessage, EmailMessageRelation
from crm.privacy_changes import privacy_update
from inbound.effects import bounce_record, complaint_record, reply_record

pytestmark = pytest.mark.django_db
START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)  # past the 2 business days' wait


@pytest.fixture
def started(make_sequence, make_contact, rep) -> Callable[..., Enrolment]:
    """A person enrolled in email, wait 2 days, email; the first email sent."""

    def start(person=None, sequence: Sequence | None = None) -> Enrolment:
        sequence = sequence or make_sequence("email", ("wait", 2), "email")
        person = person or make_contact(email="ada@example.com")
        with time_machine.travel(START, tick=False):
            (enrolment,), _ = people_enrol(sequence=sequence, people=[person], by=rep)
            enrolments_advance()
        return enrolment

    return start


def _copy(enrolment: Enrolment) -> EmailMessageRelation:
    return EmailMessageRelation.objects.get(
        email__source=EmailMessage.Source.AUTOMATION,
        relation_type=EmailMessageRelation.Type.TO,
        email__in=enrolment.runs.values("email"),
    )


def _reply(copy: EmailMessageRelation, *, auto: bool, when: datetime) -> None:
    reply_record(
        original=copy,
        from_address=copy.address,
        subject="Re: hello",
        html_body="<p>Thanks</p>",
        text_body="Thanks",
        message_id=f"reply-{auto}-{when.timestamp()}@example.com",
        received_at=when,
        is_auto_reply=auto,
    )


def _advanced_later(enrolment: Enrolment) -> Enrolment:
    with time_machine.travel(LATER, tick=False):
        enrolments_advance()
    enrolment.refresh_from_db()
    return enrolment


def _sent(enrolment: Enrolment) -> int:
    return enrolment.runs.exclude(email=None).count()


def test_a_reply_stops_it_before_the_next_email(started) -> None:
    enrolment = started()
    _reply(_copy(enrolment), auto=False, when=START + timedelta(hours=2))

    enrolment = _advanced_later(enrolment)

    assert enrolment.status == Enrolment.Status.STOPPED
    assert enrolment.stop_reason == "Replied"
    assert _sent(enrolment) == 1


def test_the_sweep_stops_a_replied_enrolment_before_it_is_due(started) -> None:
    enrolment = started()
    _reply(_copy(enrolment), auto=False, when=START + timedelta(hours=2))

    assert enrolments_stops_detect() == 1

    enrolment.refresh_from_db()
    assert (enrolment.status, enrolment.stop_reason) == (Enrolment.Status.STOPPED, "Replied")
    assert enrolment.events.filter(kind=EnrolmentEvent.Kind.STOPPED, detail="Replied").exists()


def test_an_auto_reply_pauses_it_when_the_sequence_says_so_and_never_stops_it(started) -> None:
    enrolment = started()

    with time_machine.travel(LATER, tick=False):
        _reply(_copy(enrolment), auto=True, when=LATER - timedelta(hours=1))
        enrolments_advance()
    enrolment.refresh_from_db()

    assert enrolment.status == Enrolment.Status.PAUSED
    assert enrolment.stop_reason.startswith("Auto-replies (out of office)")
    assert _sent(enrolment) == 1
    # A week after the last auto-reply it goes on by itself.
    with time_machine.travel(LATER + timedelta(days=8), tick=False):
        enrolments_advance()
    enrolment.refresh_from_db()
    assert _sent(enrolment) == 2
    assert enrolment.status == Enrolment.Status.FINISHED


def test_an_auto_reply_changes_nothing_when_the_owner_chose_not_to_pause(
    started, make_sequence
) -> None:
    enrolment = started(
        sequence=make_sequence("email", ("wait", 2), "email", pause_on_auto_reply=False)
    )
    with time_machine.travel(LATER, tick=False):
        _reply(_copy(enrolment), auto=True, when=LATER - timedelta(hours=1))
        enrolments_advance()

    enrolment.refresh_from_db()
    assert enrolment.status == Enrolment.Status.FINISHED
    assert _sent(enrolment) == 2


def test_a_hard_bounce_stops_it(started) -> None:
    enrolment = started()
    bounce_record(
        relation=_copy(enrolment), hard=True, status="5.1.1", diagnostic="no such user", when=START
    )

    enrolment = _advanced_later(enrolment)

    assert (enrolment.status, enrolment.stop_reason) == (Enrolment.Status.STOPPED, "Hard bounce")
    assert _sent(enrolment) == 1


def test_a_complaint_stops_it(started) -> None:
    enrolment = started()
    copy = _copy(enrolment)
    complaint_record(relation=copy, address=copy.address, feedback_type="abuse")

    enrolment = _advanced_later(enrolment)

    assert enrolment.stop_reason == "Spam complaint"


def test_an_unsubscribe_stops_it(started, make_contact) -> None:
    ada = make_contact(email="ada@example.com")
    enrolment = started(person=ada)
    privacy_update(person=ada, by=None, source="unsubscribe page", email_opt_out=True)

    enrolment = _advanced_later(enrolment)

    assert enrolment.stop_reason == "Unsubscribed (Email Opt Out)"
    assert _sent(enrolment) == 1


def test_dont_market_set_after_enrolment_stops_it_at_the_next_step(
    started, make_contact, make_individual
) -> None:
    ada = make_contact(email="ada@example.com")
    enrolment = started(person=ada)
    privacy_update(person=ada, by=None, source="test", flags={"has_opted_out_solicit": True})

    enrolment = _advanced_later(enrolment)

    assert (enrolment.status, enrolment.stop_reason) == (Enrolment.Status.STOPPED, "Don't Market")


def test_converting_the_lead_stops_it(started, make_lead) -> None:
    grace = make_lead()
    enrolment = started(person=grace)

    lead_convert(lead_id=grace.pk)

    enrolment.refresh_from_db()
    assert (enrolment.status, enrolment.stop_reason) == (Enrolment.Status.STOPPED, "Lead converted")


def test_the_owner_stops_it_and_nothing_more_is_sent(started, rep) -> None:
    enrolment = started()

    assert enrolment_stop(enrolment=enrolment, by=rep)

    enrolment = _advanced_later(enrolment)
    assert enrolment.status == Enrolment.Status.STOPPED
    assert enrolment.stop_reason == "Stopped by " + rep.display_name
    assert _sent(enrolment) == 1
