"""The member funnel: Sent when the email goes out, Opened on a human open, Clicked on a human
click, Responded on a reply; never backwards, never on machine activity under filtering."""

import re
from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from campaigns.members import members_add, members_status_set
from campaigns.models import CampaignMember
from crm.models import EmailMessageRelation, OrgSettings
from inbound.processing import inbound_mail_process
from tests.tracking.conftest import CHROME, call
from tracking.ingestion import events_ingest

APPLE_PROXY = {"User-Agent": "Mozilla/5.0"}


@pytest.fixture
def app(embedded, tracking_app):
    return tracking_app()


@pytest.fixture
def member(campaign, make_contact) -> CampaignMember:
    ada = make_contact(email="ada@example.com")
    members_add(campaign=campaign, contact_ids=[ada.pk])
    return campaign.members.get()


@pytest.fixture
def paths(campaign, member, send_list_email) -> dict[str, str]:
    """Ada's list email went out an hour ago; the tracking paths in her copy."""
    send_list_email(campaign, '<p>See <a href="https://example.com/launch">the launch</a></p>')
    html = mail.outbox[-1].alternatives[0][0]
    base = re.escape(settings.TRACKING_BASE_URL)
    click, _, pixel = (
        url.removeprefix(settings.TRACKING_BASE_URL)
        for url in re.findall(rf'"({base}/t/[^"]+)"', html)
    )
    EmailMessageRelation.objects.filter(contact=member.contact).update(
        sent_at=timezone.now() - timedelta(hours=1)
    )
    return {"pixel": pixel, "click": click}


def _status(member: CampaignMember) -> str:
    member.refresh_from_db()
    return member.status.label


def test_a_new_member_gets_the_default_status_and_the_send_keeps_it_sent(member, paths) -> None:
    assert _status(member) == "Sent"


def test_a_send_moves_a_member_from_a_status_before_sent(
    campaign, make_contact, send_list_email
) -> None:
    planned = campaign.statuses.create(label="Planned", sort_order=0)
    campaign.statuses.update(is_default=False)
    planned.is_default = True
    planned.save()
    members_add(campaign=campaign, contact_ids=[make_contact().pk])
    member = campaign.members.get()
    assert _status(member) == "Planned"

    send_list_email(campaign)

    assert _status(member) == "Sent"


def test_a_human_open_then_a_click_move_the_member_forward(app, member, paths) -> None:
    call(app, paths["pixel"], headers={"User-Agent": CHROME})
    events_ingest()
    assert _status(member) == "Opened"

    call(app, paths["click"], headers={"User-Agent": CHROME})
    events_ingest()
    assert _status(member) == "Clicked"
    assert not member.has_responded


def test_a_machine_open_moves_no_one_while_filtering_is_on(app, member, paths) -> None:
    call(app, paths["pixel"], headers=APPLE_PROXY, remote_addr="17.58.1.20")
    events_ingest()

    assert _status(member) == "Sent"


def test_a_machine_open_counts_when_filtering_is_off(app, member, paths) -> None:
    org = OrgSettings.load()
    org.machine_open_filtering = False
    org.save()

    call(app, paths["pixel"], headers=APPLE_PROXY, remote_addr="17.58.1.20")
    events_ingest()

    assert _status(member) == "Opened"


def test_a_reply_marks_the_member_responded(rep, member, paths) -> None:
    relation = EmailMessageRelation.objects.get(contact=member.contact)
    replied_at = timezone.now().replace(microsecond=0) + timedelta(minutes=1)
    raw = (
        f"From: Ada Lovelace <ada@example.com>\r\nTo: {rep.email}\r\nSubject: Re: News\r\n"
        f"Message-ID: <answer-1@example.com>\r\nIn-Reply-To: <{relation.message_id}>\r\n"
        f"Date: {format_datetime(replied_at)}\r\nContent-Type: text/plain\r\n\r\nYes please.\r\n"
    ).encode()

    inbound_mail_process(raw=raw, source="imap")

    assert _status(member) == "Responded"
    assert member.has_responded and member.first_responded_at == replied_at


def test_the_funnel_never_moves_backwards(app, member, paths) -> None:
    members_status_set(
        campaign=member.campaign,
        member_ids=[member.pk],
        status=member.campaign.statuses.get(label="Clicked"),
    )

    call(app, paths["pixel"], headers={"User-Agent": CHROME})
    events_ingest()

    assert _status(member) == "Clicked"


def test_activity_on_an_email_outside_the_campaign_moves_no_member(
    app, member, rep, django_capture_on_commit_callbacks
) -> None:
    from crm.sending import email_send

    with django_capture_on_commit_callbacks(execute=True):
        email_send(sender=rep, to=[member.contact], subject="1:1", html_body="<p>Hi</p>")
    html = mail.outbox[-1].alternatives[0][0]
    (pixel,) = re.findall(r'"https://t\.openrate\.test(/t/o/[^"]+)"', html)

    call(app, pixel, headers={"User-Agent": CHROME})
    events_ingest()

    assert _status(member) == "Sent"
