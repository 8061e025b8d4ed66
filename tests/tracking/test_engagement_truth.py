"""Engagement a person would recognise: a human click shows an open the pixel missed, and
Setup's internal addresses and IP ranges are never engagement. Ingestion, the recount after a
Setup change and the rollups rebuilt from the events must all tell the same story."""

import random
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from crm.models import EmailDailyStat, EmailMessage, EmailMessageRelation, OrgSettings, TrackedLink
from crm.rollups import first_day_held_in_full
from crm.timeline import OPENED_BY_CLICK
from tests.tracking.conftest import CHROME, call, setup_change
from tracking.ingestion import events_ingest
from tracking.models import TrackingEvent
from tracking.recount import counters_recount_all, internal_recount_all
from tracking.rollups import rollups_rebuild

APPLE_PROXY = {"User-Agent": "Mozilla/5.0"}
PERSON = {"User-Agent": CHROME}


@pytest.fixture
def app(embedded, tracking_app):
    return tracking_app()


def _relation(sent) -> EmailMessageRelation:
    return EmailMessageRelation.objects.get(pk=sent.relation.pk)


def _email(sent) -> EmailMessage:
    return EmailMessage.objects.get(pk=sent.email.pk)


def _cohorts() -> tuple[int, int, int, int]:
    totals = EmailDailyStat.objects.aggregate(
        *(
            Sum(name)
            for name in (
                "recipients_opened_human",
                "recipients_opened_any",
                "recipients_clicked_human",
                "recipients_clicked_any",
            )
        )
    )
    return tuple(value or 0 for value in totals.values())  # type: ignore[return-value]


# A human click with no open


def test_a_human_click_without_an_open_shows_the_copy_opened(app, sent_email) -> None:
    call(app, sent_email.click, headers=PERSON)
    events_ingest()

    relation, email = _relation(sent_email), _email(sent_email)
    click = TrackingEvent.objects.get()
    assert relation.is_opened and relation.opened_by_click
    assert relation.first_opened_at == relation.last_opened_at == click.occurred_at
    assert email.is_opened and email.times_opened == 0  # no open was recorded, and none is made up
    assert email.first_opened_at == click.occurred_at
    # People's open rate counts it; the rate as Salesforce shows it (the pixel) does not.
    assert _cohorts() == (1, 0, 1, 1)


def test_an_open_after_the_click_leaves_the_copy_opened_from_the_click_on(app, sent_email) -> None:
    call(app, sent_email.click, headers=PERSON)
    events_ingest()
    call(app, sent_email.pixel, headers=PERSON)
    events_ingest()

    relation = _relation(sent_email)
    click, pixel = TrackingEvent.objects.order_by("occurred_at", "pk")
    assert relation.is_opened and not relation.opened_by_click
    assert (relation.first_opened_at, relation.last_opened_at) == (
        click.occurred_at,
        pixel.occurred_at,
    )
    assert _email(sent_email).times_opened == 1
    assert _cohorts() == (1, 1, 1, 1)  # the person is counted once


def test_a_scanner_click_shows_no_open(app, sent_email) -> None:
    call(app, sent_email.honeypot, headers=PERSON)
    events_ingest()

    relation, email = _relation(sent_email), _email(sent_email)
    assert not relation.is_opened and relation.first_opened_at is None
    assert not email.is_opened
    assert _cohorts() == (0, 0, 0, 1)


def test_the_timeline_the_email_page_and_the_campaign_report_say_shown_by_a_click(
    app, sent_email, client_for, rep
) -> None:
    call(app, sent_email.click, headers=PERSON)
    events_ingest()
    client = client_for(rep)

    timeline = client.get(sent_email.relation.contact.get_absolute_url()).content.decode()
    page = client.get(reverse("tracking:email_detail", args=[sent_email.email.pk]))

    assert OPENED_BY_CLICK in timeline
    assert "Opened, shown by a click (the images were blocked)" in page.content.decode()
    assert "opened, shown by a click" in page.content.decode()


def test_the_recount_and_the_rebuilt_rollups_agree_with_ingestion(
    app, rep, make_contact, django_capture_on_commit_callbacks, settings
) -> None:
    """Random opens and clicks, human and machine, on several copies, ingested in several
    batches; then counted again from the stored events: the same figures, with machine-open
    filtering on and off."""
    from django.core import mail

    from crm.sending import email_send

    rng = random.Random(15)
    contacts = [make_contact(email=f"p{i}@example.org", last_name=f"P{i}") for i in range(8)]
    with django_capture_on_commit_callbacks(execute=True):
        email_send(
            sender=rep,
            to=contacts,
            subject="Hello",
            html_body='<p><a href="https://example.com/a">a</a> <a href="https://example.com/b">b</a></p>',
        )
    EmailMessageRelation.objects.update(sent_at=timezone.now() - timedelta(hours=1))
    base = settings.TRACKING_BASE_URL
    paths = []
    for message in mail.outbox:
        html = message.alternatives[0][0]
        paths.append([part.split('"')[0].removeprefix(base) for part in html.split(f'"{base}')[1:]])
    # The last person only clicks: their copy is opened, shown by a click.
    call(app, paths[-1][0], headers=PERSON)
    for _ in range(60):
        click_a, click_b, honeypot, pixel = rng.choice(paths[:-1])
        path = rng.choice([click_a, click_b, pixel, pixel, honeypot])
        headers = rng.choice([PERSON, PERSON, APPLE_PROXY])
        call(app, path, headers=headers, remote_addr=f"198.51.100.{rng.randint(1, 200)}")
        if rng.random() < 0.3:
            events_ingest()
    events_ingest()

    def figures():
        relations = list(
            EmailMessageRelation.objects.order_by("pk").values_list(
                "human_opens",
                "machine_opens",
                "human_clicks",
                "machine_clicks",
                "first_opened_at",
                "last_opened_at",
                "last_clicked_at",
            )
        )
        emails = list(
            EmailMessage.objects.values_list(
                "times_opened", "times_clicked", "is_opened", "first_opened_at", "last_opened_at"
            )
        )
        links = list(
            TrackedLink.objects.order_by("pk").values_list("human_clicks", "machine_clicks")
        )
        return relations, emails, links, _cohorts()

    assert TrackingEvent.objects.count() == 61
    assert any(r.opened_by_click for r in EmailMessageRelation.objects.all())
    ingested = figures()
    counters_recount_all(links=True)
    rollups_rebuild()
    assert figures() == ingested

    # Switched off, machine opens count for the emails; the copies' counters stay apart.
    setup_change(machine_open_filtering=False)
    counters_recount_all()
    unfiltered = figures()
    machine_opens = TrackingEvent.objects.filter(kind="open").exclude(label="human").count()
    assert machine_opens
    assert sum(e[0] for e in unfiltered[1]) == sum(e[0] for e in ingested[1]) + machine_opens
    assert [r[:4] for r in unfiltered[0]] == [r[:4] for r in ingested[0]]


# Internal addresses and IP ranges


def test_events_from_an_internal_ip_range_are_stored_but_never_counted(app, sent_email) -> None:
    setup_change(internal_ip_ranges="10.0.0.0/8\n198.51.100.0/28  # the office")

    call(app, sent_email.pixel, headers=PERSON, remote_addr="198.51.100.9")
    call(app, sent_email.click, headers=PERSON, remote_addr="198.51.100.9")
    events_ingest()

    assert set(TrackingEvent.objects.values_list("internal", flat=True)) == {True}
    relation, email = _relation(sent_email), _email(sent_email)
    assert (relation.human_opens, relation.human_clicks, relation.first_opened_at) == (0, 0, None)
    assert not email.is_opened and email.times_clicked == 0
    assert TrackedLink.objects.get(url="https://example.com/pricing").human_clicks == 0
    assert _cohorts() == (0, 0, 0, 0)
    assert not EmailDailyStat.objects.filter(opens_human__gt=0).exists()


def test_an_ip_outside_the_ranges_still_counts(app, sent_email) -> None:
    setup_change(internal_ip_ranges="198.51.100.0/28", store_full_ip=True)

    call(app, sent_email.pixel, headers=PERSON, remote_addr="198.51.100.77")
    events_ingest()

    assert not TrackingEvent.objects.get().internal
    assert _relation(sent_email).human_opens == 1


def test_with_short_ips_a_narrow_range_is_widened_to_what_is_stored(app, sent_email) -> None:
    """Only the /24 is stored: a /32 range matches the /24 it lies in, at ingestion and at the
    recount alike, so both give the same answer."""
    setup_change(internal_ip_ranges="198.51.100.9", store_full_ip=False)

    call(app, sent_email.pixel, headers=PERSON, remote_addr="198.51.100.200")
    events_ingest()
    event = TrackingEvent.objects.get()
    assert (event.ip, event.internal) == ("198.51.100.0", True)

    internal_recount_all()
    assert TrackingEvent.objects.get().internal


def test_email_to_an_internal_domain_is_not_engagement(
    app, rep, make_contact, django_capture_on_commit_callbacks, settings
) -> None:
    from django.core import mail

    from crm.sending import email_send

    setup_change(internal_addresses="openrate.test")
    colleague = make_contact(email="kim@sales.openrate.test", last_name="Kim")
    with django_capture_on_commit_callbacks(execute=True):
        email_send(sender=rep, to=[colleague], subject="Test", html_body="<p>Testing</p>")
    EmailMessageRelation.objects.update(sent_at=timezone.now() - timedelta(hours=1))
    html = mail.outbox[-1].alternatives[0][0]
    base = settings.TRACKING_BASE_URL
    pixel = html.split(f'"{base}')[-1].split('"')[0]

    call(app, pixel, headers=PERSON)
    events_ingest()

    assert TrackingEvent.objects.get().internal
    assert not EmailMessageRelation.objects.get(address="kim@sales.openrate.test").is_opened


def test_changing_the_internal_ranges_recounts_counters_links_and_rollups(
    app, sent_email, django_capture_on_commit_callbacks, admin_user, client_for
) -> None:
    call(app, sent_email.pixel, headers=PERSON, remote_addr="203.0.113.5")
    call(app, sent_email.click, headers=PERSON, remote_addr="203.0.113.5")
    events_ingest()
    counted = (_relation(sent_email).human_opens, _cohorts())
    assert counted == (1, (1, 1, 1, 1))

    # Setup saves the range through the page: the recount is queued and run (eagerly here).
    data = {
        **{
            name: value
            for name, value in _setup_form_data().items()
            if name not in ("internal_ip_ranges",)
        },
        "internal_ip_ranges": "203.0.113.0/24",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(admin_user).post(reverse("crm:setup"), data)
    assert response.status_code == 302, response.content.decode()[:2000]

    relation = _relation(sent_email)
    assert set(TrackingEvent.objects.values_list("internal", flat=True)) == {True}
    assert (relation.human_opens, relation.human_clicks, relation.first_opened_at) == (0, 0, None)
    assert TrackedLink.objects.get(url="https://example.com/pricing").human_clicks == 0
    assert _cohorts() == (0, 0, 0, 0)

    # Taking the range out counts them again.
    setup_change(internal_ip_ranges="")
    internal_recount_all()
    assert (_relation(sent_email).human_opens, _cohorts()) == counted


def _setup_form_data() -> dict[str, str]:
    from crm.forms import SetupForm

    form = SetupForm(instance=OrgSettings.load())
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = str(value)
    return data


def test_setup_refuses_what_is_not_an_address_a_domain_or_a_range(admin_user, client_for) -> None:
    data = {
        **_setup_form_data(),
        "internal_addresses": "rep@example.com\nexample.org\nnot an address",
        "internal_ip_ranges": "10.0.0.0/8\n999.1.1.1",
    }

    response = client_for(admin_user).post(reverse("crm:setup"), data)

    assert response.status_code == 200
    page = response.content.decode()
    assert "is neither an email address nor a domain" in page
    assert "is not an IP address or range" in page
    assert OrgSettings.load().internal_ip_ranges == ""


def test_the_rebuild_starts_on_the_first_day_the_log_holds_in_full() -> None:
    today = timezone.localdate()
    first = first_day_held_in_full(1)
    assert today - timedelta(days=32) <= first <= today - timedelta(days=27)
