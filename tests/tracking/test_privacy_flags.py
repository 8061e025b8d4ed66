"""The person's Individual flags at ingestion: Block Geolocation and Don't Track after the send;
and a forgotten person's opens and clicks after the forget."""

import pytest
from django.db.models import Sum

from crm.models import EmailDailyStat, LinkDailyStat, OrgSettings, TrackedLink
from crm.privacy_changes import privacy_update
from crm.tokens import token_for
from dataprotection.forget import person_forget
from dataprotection.people import person_from
from mailkit.tokens import Purpose
from privacy.models import Individual
from tests.tracking.conftest import CHROME, call, setup_change
from tracking import buffer
from tracking.ingestion import events_ingest
from tracking.models import BufferedEvent, TrackingEvent


@pytest.fixture
def app(embedded, tracking_app):
    return tracking_app()


def _flag(sent_email, **flags: bool) -> None:
    """Turn the person's flags on: Don't Track as a rep would (a PrivacyChange kept), the
    others on the Individual (the record page does not edit them)."""
    contact = sent_email.relation.contact
    tracking = {k: v for k, v in flags.items() if k == "has_opted_out_tracking"}
    privacy_update(person=contact, by=None, source="the record page", flags=tracking)
    contact.refresh_from_db()
    if contact.individual is None:
        contact.individual = Individual.objects.create(last_name=contact.last_name)
        contact.save(update_fields=["individual"])
    Individual.objects.filter(pk=contact.individual_id).update(**flags)


def _open_and_click(app, sent_email) -> None:
    call(app, sent_email.pixel, headers={"User-Agent": CHROME}, remote_addr="203.0.113.77")
    call(app, sent_email.click, headers={"User-Agent": CHROME}, remote_addr="203.0.113.77")


def _totals() -> tuple[int, int, int]:
    """The org's rollups: human opens, human clicks, link clicks."""
    emails = EmailDailyStat.objects.aggregate(opens=Sum("opens_human"), clicks=Sum("clicks_human"))
    links = LinkDailyStat.objects.aggregate(clicks=Sum("clicks_human"))
    return emails["opens"] or 0, emails["clicks"] or 0, links["clicks"] or 0


def _counters(sent_email) -> tuple[int, int, int, int, int]:
    sent_email.relation.refresh_from_db()
    sent_email.email.refresh_from_db()
    link = TrackedLink.objects.get(url="https://example.com/pricing")
    return (
        sent_email.relation.human_opens,
        sent_email.relation.human_clicks,
        sent_email.email.times_opened,
        sent_email.email.times_clicked,
        link.human_clicks,
    )


def _another_copy(sent_email, make_contact):
    """Grace's copy of the same email, sent when the first was."""
    return sent_email.email.relations.create(
        relation_type="to",
        address="grace@example.com",
        contact=make_contact(first_name="Grace", email="grace@example.com"),
        is_tracked=True,
        delivery_status="sent",
        sent_at=sent_email.relation.sent_at,
    )


def test_a_block_geolocation_persons_open_is_stored_with_no_ip(app, sent_email) -> None:
    _flag(sent_email, has_opted_out_geo_tracking=True)
    call(app, sent_email.pixel, headers={"User-Agent": CHROME}, remote_addr="203.0.113.77")

    assert events_ingest().stored == 1

    event = TrackingEvent.objects.get()
    assert event.ip is None
    assert _counters(sent_email)[0] == 1  # counted as ever


def test_another_persons_open_keeps_its_shortened_ip(app, sent_email) -> None:
    call(app, sent_email.pixel, headers={"User-Agent": CHROME}, remote_addr="203.0.113.77")

    events_ingest()

    assert TrackingEvent.objects.get().ip == "203.0.113.0"


def test_a_block_geolocation_persons_open_from_an_internal_range_is_still_internal(
    app, sent_email
) -> None:
    setup_change(internal_ip_ranges="203.0.113.0/24")
    _flag(sent_email, has_opted_out_geo_tracking=True)
    call(app, sent_email.pixel, headers={"User-Agent": CHROME}, remote_addr="203.0.113.77")

    events_ingest()

    event = TrackingEvent.objects.get()
    assert event.internal and event.ip is None
    assert _counters(sent_email)[0] == 0


def test_dont_track_after_the_send_not_stored_keeps_and_counts_nothing(app, sent_email) -> None:
    assert OrgSettings.load().events_after_dont_track == OrgSettings.AfterDontTrack.NOT_STORED
    _flag(sent_email, has_opted_out_tracking=True)
    _open_and_click(app, sent_email)

    assert events_ingest().stored == 0

    assert not TrackingEvent.objects.exists()
    assert not BufferedEvent.objects.exists()  # the buffer is acknowledged all the same
    assert _counters(sent_email) == (0, 0, 0, 0, 0)
    assert _totals() == (0, 0, 0)


def test_dont_track_after_the_send_anonymous_moves_only_the_totals(
    app, sent_email, django_capture_on_commit_callbacks
) -> None:
    setup_change(events_after_dont_track=OrgSettings.AfterDontTrack.ANONYMOUS)
    _flag(sent_email, has_opted_out_tracking=True)
    _open_and_click(app, sent_email)

    with django_capture_on_commit_callbacks() as callbacks:
        assert events_ingest().stored == 0

    assert not TrackingEvent.objects.exists()
    assert not BufferedEvent.objects.exists()
    assert _counters(sent_email) == (0, 0, 0, 0, 0)
    assert _totals() == (1, 1, 1)
    # No cohort: the person is counted as no one who opened.
    assert EmailDailyStat.objects.aggregate(n=Sum("recipients_opened_human"))["n"] == 0
    assert not callbacks  # no activity refresh (metrics, alerts) queued for them


def test_with_privacy_settings_not_enforced_the_flags_change_nothing(app, sent_email) -> None:
    setup_change(enforce_email_privacy=False)
    _flag(sent_email, has_opted_out_tracking=True, has_opted_out_geo_tracking=True)
    _open_and_click(app, sent_email)

    assert events_ingest().stored == 2

    assert set(TrackingEvent.objects.values_list("ip", flat=True)) == {"203.0.113.0"}
    assert _counters(sent_email) == (1, 1, 1, 1, 1)
    assert _totals() == (1, 1, 1)


def test_a_batch_of_several_people_treats_each_by_their_own_flags(
    app, sent_email, make_contact, rep, django_capture_on_commit_callbacks
) -> None:
    """Another person's events in the same batch are stored and counted as ever."""
    setup_change(events_after_dont_track=OrgSettings.AfterDontTrack.ANONYMOUS)
    _flag(sent_email, has_opted_out_tracking=True)
    other = _another_copy(sent_email, make_contact)
    pixel = f"/t/o/{token_for(other.pk, Purpose.TRACK)}.gif"
    call(app, pixel, headers={"User-Agent": CHROME})
    _open_and_click(app, sent_email)

    assert events_ingest().stored == 1

    assert list(TrackingEvent.objects.values_list("relation_id", flat=True)) == [other.pk]
    other.refresh_from_db()
    assert other.human_opens == 1
    assert _counters(sent_email)[:2] == (0, 0)
    assert _totals() == (2, 1, 1)
    assert buffer.read_database(10) == ([], [])


def test_a_dont_profile_persons_opens_and_clicks_count_as_anyones(app, sent_email) -> None:
    """Don't Profile judges nothing about them (crm.activity), but every total counts them."""
    _flag(sent_email, has_opted_out_profiling=True)
    _open_and_click(app, sent_email)

    assert events_ingest().stored == 2

    assert _counters(sent_email) == (1, 1, 1, 1, 1)
    assert _totals() == (1, 1, 1)


def _forget(sent_email) -> None:
    person_forget(person=person_from("contact", sent_email.relation.contact_id))


def test_opens_buffered_before_a_forget_are_not_stored_after_it(app, sent_email) -> None:
    """The open and click reached the buffer before the person was forgotten, ingestion came
    after: nothing that names them is stored again, whatever Setup enforces; the link still
    took them where it leads."""
    setup_change(enforce_email_privacy=False)
    call(app, sent_email.pixel, headers={"User-Agent": CHROME}, remote_addr="203.0.113.77")
    clicked = call(
        app, sent_email.click, headers={"User-Agent": CHROME}, remote_addr="203.0.113.77"
    )
    _forget(sent_email)

    assert events_ingest().stored == 0

    assert clicked.status == 302
    assert not TrackingEvent.objects.exists()
    assert not BufferedEvent.objects.exists()
    assert _counters(sent_email) == (0, 0, 0, 0, 0)
    assert _totals() == (0, 0, 0)


def test_a_forgotten_persons_later_opens_count_anonymously_when_setup_says_so(
    app, sent_email
) -> None:
    setup_change(events_after_dont_track=OrgSettings.AfterDontTrack.ANONYMOUS)
    _forget(sent_email)
    _open_and_click(app, sent_email)

    assert events_ingest().stored == 0

    assert not TrackingEvent.objects.exists()
    assert _counters(sent_email) == (0, 0, 0, 0, 0)
    assert _totals() == (1, 1, 1)


def test_another_persons_open_in_the_batch_of_a_forgotten_ones_is_stored(
    app, sent_email, make_contact
) -> None:
    other = _another_copy(sent_email, make_contact)
    _forget(sent_email)
    call(app, f"/t/o/{token_for(other.pk, Purpose.TRACK)}.gif", headers={"User-Agent": CHROME})
    _open_and_click(app, sent_email)

    assert events_ingest().stored == 1

    assert list(TrackingEvent.objects.values_list("relation_id", flat=True)) == [other.pk]


def test_a_copy_sent_to_a_forgotten_address_alone_is_forgotten_too(app, sent_email) -> None:
    """A copy with no Contact or Lead (a record the sender could not see) is reached by its
    address: the forget blanks it, and its opens are not stored either."""
    contact_id = sent_email.relation.contact_id
    sent_email.relation.contact = None
    sent_email.relation.save(update_fields=["contact"])
    person_forget(person=person_from("contact", contact_id))
    _open_and_click(app, sent_email)

    assert events_ingest().stored == 0

    assert not TrackingEvent.objects.exists()
