"""Forgetting a person: after the job, no table and no column holds their name, addresses or IP,
and the dashboards' totals are what they were."""

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import pytest
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from automation.enrolment import people_enrol
from automation.models import Enrolment, Sequence, Step
from campaigns.figures import campaign_figures
from campaigns.influence import influence_recompute
from campaigns.members import members_add
from campaigns.models import Campaign, CampaignInfluence, CampaignMember
from capture.addresses import capture_address
from capture.models import CapturedAttachment
from crm.models import (
    Contact,
    EmailDailyStat,
    EmailMessage,
    EmailMessageRelation,
    EmailSuppression,
    Lead,
    LinkDailyStat,
    OpportunityContactRole,
    ScheduledEmail,
    Task,
)
from crm.scheduling import scheduled_email_create
from crm.sending import email_send
from dataprotection.models import DataRequest
from inbound.models import InboundMessage
from inbound.processing import inbound_mail_process
from privacy.forgotten import forgotten_among
from privacy.models import AuditEntry
from tests.campaigns.conftest import make_campaign, send_list_email  # noqa: F401 -- fixtures
from tests.capture.conftest import mail as mail_written
from tests.inbound.conftest import dsn
from tests.tracking.conftest import (  # noqa: F401 -- fixtures
    CHROME,
    call,
    embedded,
    setup_change,
    tracking_app,
)
from tracking.ingestion import events_ingest
from tracking.models import TrackingEvent

ADA_IP = "203.0.113.77"
BOB_IP = "198.51.100.20"
ADA = "ada.lovelace@analytical.example"
ADA_OTHER = "countess@engine.example"  # her lead's address: the same person, another record
BOB = "bob.brown@example.org"
# What must be gone: her full name, her last name, each address and her IP.
NEEDLES = ("ada lovelace", "lovelace", ADA, ADA_OTHER, ADA_IP)


@dataclass
class History:
    ada: Contact
    lead: Lead
    bob: Contact
    campaign: Campaign
    single: EmailMessage
    shared: EmailMessage


def _copy(address: str, subject: str) -> Any:
    return next(m for m in reversed(mail.outbox) if address in m.to[0] and m.subject == subject)


def _tracking_paths(address: str, subject: str) -> tuple[str, str]:
    """(pixel, first link) of the copy this address got."""
    html = _copy(address, subject).alternatives[0][0]
    base = settings.TRACKING_BASE_URL
    paths = [u.removeprefix(base) for u in re.findall(rf'"({re.escape(base)}/t/[^"]+)"', html)]
    return paths[-1], paths[0]


def _reply(relation: EmailMessageRelation, *, sender: str, body: str) -> bytes:
    date = format_datetime(timezone.now() + timedelta(minutes=1))
    return (
        f"From: {sender}\r\nTo: rita@openrate.example\r\nSubject: Re: Pricing\r\n"
        f"Message-ID: <answer-{abs(hash(body))}@example.net>\r\n"
        f"In-Reply-To: <{relation.message_id}>\r\nDate: {date}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


@pytest.fixture
def history(
    settings,
    rep,
    admin_user,
    make_contact,
    make_lead,
    make_individual,
    make_opportunity,
    make_task,
    make_campaign,  # noqa: F811
    send_list_email,  # noqa: F811
    embedded,  # noqa: F811
    tracking_app,  # noqa: F811
) -> History:
    """Ada's rich history (and Bob's, who stays): single, shared and list email, opens and
    clicks, a bounce, a reply, captured mail, a campaign, an opportunity, a task."""
    settings.INBOUND_VERP_DOMAIN = "bounces.openrate.test"
    settings.CAPTURE_ADDRESS_DOMAIN = "capture.openrate.test"
    setup_change(store_full_ip=True)  # so her IP is there to be erased
    individual = make_individual(
        first_name="Ada",
        last_name="Lovelace",
        birth_date=timezone.localdate() - timedelta(days=36 * 365),
        has_opted_out_profiling=True,
    )
    ada = make_contact(
        first_name="Ada",
        last_name="Lovelace",
        email=ADA,
        phone="+44 20 7946 0958",
        title="Countess",
        mailing_city="Marylebone",
        individual=individual,
    )
    lead = make_lead(first_name="Ada", last_name="Lovelace", email=ADA_OTHER, individual=individual)
    bob = make_contact(first_name="Bob", last_name="Brown", email=BOB)
    campaign = make_campaign()
    members_add(campaign=campaign, contact_ids=[ada.pk, bob.pk], lead_ids=[lead.pk])
    opportunity = make_opportunity(amount=Decimal("12000"), campaign=campaign)
    OpportunityContactRole.objects.create(opportunity=opportunity, contact=ada, is_primary=True)
    OpportunityContactRole.objects.create(opportunity=opportunity, contact=bob)
    influence_recompute()

    single = email_send(
        sender=rep,
        to=[ada],
        subject="Pricing",
        html_body='<p>Dear Ada Lovelace, see <a href="https://example.com/p?who={{email}}">'
        "your pricing</a>.</p>",
    )
    shared = email_send(
        sender=rep,
        to=[ada, bob],
        subject="Meeting with Ada Lovelace and Bob",
        html_body='<p>Ada Lovelace and Bob Brown: <a href="https://example.com/agenda">'
        "agenda</a>. Call +44 20 7946 0958.</p>",
    )
    send_list_email(campaign, '<p>Hello {{name}}, <a href="https://example.com/news">news</a></p>')
    EmailMessageRelation.objects.update(sent_at=timezone.now() - timedelta(hours=1))

    app = tracking_app()
    for address, ip in ((ADA, ADA_IP), (BOB, BOB_IP)):
        for subject in ("Pricing", "Meeting with Ada Lovelace and Bob", "News"):
            if address == BOB and subject == "Pricing":
                continue
            pixel, link = _tracking_paths(address, subject)
            call(app, pixel, headers={"User-Agent": CHROME}, remote_addr=ip)
            call(app, link, headers={"User-Agent": CHROME}, remote_addr=ip)
    events_ingest()

    # A hard bounce of her lead's list email, her reply to the pricing email, captured mail.
    bounced = _copy(ADA_OTHER, "News")
    inbound_mail_process(
        raw=dsn(
            to=bounced.from_email,
            recipient=ADA_OTHER,
            status="5.1.1",
            diagnostic=f"550 5.1.1 <{ADA_OTHER}>: Recipient address rejected",
        ),
        source="pipe",
    )
    pricing = EmailMessageRelation.objects.get(email=single, contact=ada)
    inbound_mail_process(
        raw=_reply(pricing, sender=f"Ada Lovelace <{ADA}>", body="Yes. Ada Lovelace"),
        source="imap",
    )
    inbound_mail_process(
        raw=f"From: Ada Lovelace <{ADA}>\r\nTo: sales@openrate.test\r\nSubject: Hello\r\n\r\n"
        "Lovelace here, new enquiry.\r\n".encode(),
        source="pipe",
    )
    make_task(who_contact=ada, subject="Call Ada Lovelace", description="Ada Lovelace, Marylebone")
    # Mail Rita Bcc'd to her capture address, with an attachment kept; an email scheduled for
    # tomorrow; a sequence she is going through.
    setup_change(capture_attachment_contents=True)
    raw, _ = mail_written(
        sender=f"Rita <{rep.email}>",
        to=[f"Ada Lovelace <{ADA}>", f"Bob Brown <{BOB}>"],
        subject="Notes for Ada Lovelace",
        body="Ada Lovelace asked for the terms.",
        attachments=[("Lovelace terms.pdf", b"%PDF terms for Ada Lovelace")],
    )
    captured = inbound_mail_process(
        raw=f"Delivered-To: {capture_address(rep.pk)}\r\n".encode() + raw, source="pipe"
    )
    assert captured.created_email is not None, captured.note
    scheduled_email_create(
        sender=rep,
        to=[ADA, BOB],
        subject="Follow-up for Ada Lovelace",
        html_body="<p>Ada Lovelace, Bob Brown: the follow-up.</p>",
        send_at=timezone.now() + timedelta(days=1),
        person=ada,
    )
    sequence = Sequence.objects.create(name="Outreach", owner=rep)
    Step.objects.create(
        sequence=sequence,
        position=1,
        kind=Step.Kind.TASK,
        task_kind=Step.TaskKind.CALL,
        task_subject="Call",
    )
    people_enrol(sequence=sequence, people=[ada], by=rep)
    LogEntry.objects.create(
        user=admin_user,
        content_type=ContentType.objects.get_for_model(Contact),
        object_id=str(ada.pk),
        object_repr="Ada Lovelace",
        action_flag=CHANGE,
        change_message="[]",
    )
    return History(ada, lead, bob, campaign, single, shared)


def _totals(campaign: Campaign) -> dict[str, Any]:
    stats = [f.name for f in EmailDailyStat._meta.fields if f.name not in ("id", "day")]
    return {
        "email_daily": EmailDailyStat.objects.aggregate(*(Sum(name) for name in stats)),
        "link_daily": LinkDailyStat.objects.aggregate(Sum("clicks_human"), Sum("clicks_machine")),
        "campaign": campaign_figures(campaign=campaign),
        "influence": CampaignInfluence.objects.aggregate(Sum("revenue_share"), Sum("influence")),
        "members": CampaignMember.objects.count(),
        "copies": EmailMessageRelation.objects.aggregate(
            Sum("human_opens"), Sum("human_clicks"), Sum("machine_opens")
        ),
    }


def _text(value: Any) -> str:
    if isinstance(value, memoryview | bytes):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _hits_in_database() -> list[str]:
    """Every table, every column, every row: where a needle still is."""
    hits = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            columns = [
                c.name for c in connection.introspection.get_table_description(cursor, table)
            ]
            quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
            cursor.execute(f"SELECT {quoted} FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    text = _text(value).lower()
                    hits += [f"{table}.{column}: {n}" for n in NEEDLES if n.lower() in text]
    return hits


def _hits_in_dump() -> list[str]:
    db = connection.settings_dict
    command = ["pg_dump", "--data-only", "--no-owner", "-U", db["USER"], db["NAME"]]
    command += ["-h", db.get("HOST") or "127.0.0.1", "-p", str(db.get("PORT") or 5432)]
    dump = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
        env={"PGPASSWORD": db.get("PASSWORD") or ""},
    ).stdout.lower()
    assert "crm_contact" in dump  # the dump is of this database
    return [needle for needle in NEEDLES if needle.lower() in dump]


@pytest.mark.django_db(transaction=True)
def test_a_forgotten_person_is_nowhere_in_the_database_and_totals_stay(
    history, client_for, admin_user
) -> None:
    assert len(_hits_in_database()) > 20  # the history is rich: she is in many places
    assert InboundMessage.objects.count() == 4
    assert CapturedAttachment.objects.get().content is not None
    bob_ip = TrackingEvent.objects.filter(ip=BOB_IP).count()
    bob_body = EmailMessage.objects.get(relations__address=BOB, subject="News").html_body
    before = _totals(history.campaign)

    response = client_for(admin_user).post(f"/privacy/forget/contact/{history.ada.pk}/")

    data_request = DataRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/privacy/requests/{data_request.pk}/"
    assert data_request.status == DataRequest.Status.DONE, data_request.error
    assert _hits_in_database() == []
    if connection.vendor == "postgresql" and shutil.which("pg_dump"):
        assert _hits_in_dump() == []
    assert _totals(history.campaign) == before
    # Bob is intact: his record, his copies, his opens' IP, his email's body.
    bob = Contact.objects.get(pk=history.bob.pk)
    assert (bob.name, bob.email, bob.forgotten_at) == ("Bob Brown", BOB, None)
    assert TrackingEvent.objects.filter(ip=BOB_IP).count() == bob_ip > 0
    assert EmailMessage.objects.get(relations__address=BOB, subject="News").html_body == bob_body
    shared = EmailMessage.objects.get(pk=history.shared.pk)
    assert "Bob Brown" in shared.html_body and "[forgotten]" in shared.html_body
    assert BOB in shared.to_addresses
    # What waits for her does not go; what she is going through stops.
    scheduled = ScheduledEmail.objects.get()
    assert (scheduled.status, scheduled.failure_reason) == (
        ScheduledEmail.Status.CANCELLED,
        "Not sent: a recipient was forgotten.",
    )
    assert BOB in scheduled.to_addresses
    enrolment = Enrolment.objects.get()
    assert (enrolment.status, enrolment.stop_reason) == (Enrolment.Status.STOPPED, "Forgotten")
    attachment = CapturedAttachment.objects.get()
    assert (attachment.name, attachment.content) == ("[forgotten] terms.pdf", None)


@pytest.mark.django_db(transaction=True)
def test_forgetting_anonymises_the_records_and_remembers_the_addresses(
    history, client_for, admin_user
) -> None:
    client_for(admin_user).post(f"/privacy/forget/lead/{history.lead.pk}/")

    ada = Contact.objects.get(pk=history.ada.pk)
    lead = Lead.objects.get(pk=history.lead.pk)
    for record in (ada, lead):
        assert (record.first_name, record.last_name, record.email, record.phone) == (
            "",
            "Forgotten person",
            "",
            "",
        )
        assert record.forgotten_at is not None
    assert ada.individual.should_forget and ada.individual.birth_date is None
    assert forgotten_among([ADA.upper(), ADA_OTHER, BOB]) == {ADA.upper(), ADA_OTHER}
    email = EmailMessage.objects.get(pk=history.single.pk)
    assert (email.subject, email.html_body, email.text_body) == ("(forgotten)", "", "")
    assert email.body_removed_at is not None
    assert not InboundMessage.objects.exists()
    assert not EmailSuppression.objects.exists()
    assert not TrackingEvent.objects.filter(relation__contact=ada, ip__isnull=False).exists()
    assert set(Task.objects.filter(who_contact=ada).values_list("description", flat=True)) == {""}
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", "target"))
    assert actions == [("forget_requested", f"Lead #{lead.pk}"), ("forgotten", f"Lead #{lead.pk}")]
    done = DataRequest.objects.get()
    assert done.counts["contacts"] == 1 and done.counts["leads"] == 1
    assert done.counts["emails_erased"] >= 3
