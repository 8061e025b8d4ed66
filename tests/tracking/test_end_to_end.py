"""Send through a real SMTP server on loopback, then open and click as the recipient would."""

import re

import pytest
from django.conf import settings

import crm.tasks
from config.celery import app as celery_app
from crm.delivery import email_deliver
from crm.models import EmailMessageRelation
from crm.sending import email_send
from crm.tasks import MAX_DELIVERY_RETRIES, deliver_email
from tests.tracking.conftest import CHROME, call, free_port, html_of, text_of
from tracking.ingestion import events_ingest
from tracking.models import TrackingEvent

HTML = """<!DOCTYPE html>
<html><head><style>p { color: #333 }</style></head>
<body>
<p>Hi {{first_name}},</p>
<p>Our <a href='https://example.com/pricing?plan=team&amp;seats=5' class=cta>pricing</a>,
<a href="#top">top</a>, <a href="tel:+15550100">call us</a>,
<a data-notrack href="https://example.com/unsubscribe-info">why you get this</a>.</p>
</body></html>"""


@pytest.fixture(params=["embedded", "redis"])
def mode(request):
    request.getfixturevalue("embedded" if request.param == "embedded" else "redis_client")
    return request.param


def test_a_tracked_email_round_trip(
    mode,
    smtp_server,
    tracking_app,
    rep,
    make_contact,
    make_individual,
    django_capture_on_commit_callbacks,
) -> None:
    ada = make_contact(first_name="Ada", email="ada@example.com")
    private = make_contact(
        first_name="Linus",
        last_name="Torvalds",
        email="linus@example.com",
        individual=make_individual(has_opted_out_tracking=True),
    )
    with django_capture_on_commit_callbacks(execute=True):
        email = email_send(sender=rep, to=[ada, private], subject="Team pricing", html_body=HTML)

    # One SMTP transaction per recipient, each with its own envelope recipient.
    assert sorted(rcpt for rcpt, _ in smtp_server.messages) == [
        ["ada@example.com"],
        ["linus@example.com"],
    ]
    tracked, untracked = (
        smtp_server.for_address("ada@example.com"),
        smtp_server.for_address("linus@example.com"),
    )
    assert (
        tracked["To"]
        == untracked["To"]
        == "Ada Lovelace <ada@example.com>, Linus Torvalds <linus@example.com>"
    )
    assert tracked["From"] == f"Rita Rep <{rep.email}>"
    relation = EmailMessageRelation.objects.get(address="ada@example.com")
    assert tracked["Message-ID"] == f"<{relation.message_id}>"

    # The untracked copy is the HTML exactly as written (merge fields filled), nothing added.
    # (SMTP carries CRLF line ends; the parts are compared with LF.)
    assert html_of(untracked).replace("\r\n", "\n").rstrip("\n") == HTML.replace(
        "{{first_name}}", "Linus"
    )
    # The tracked copy: only the trackable hrefs changed, a pixel and a hidden honeypot added.
    html = html_of(tracked).replace("\r\n", "\n").rstrip("\n")
    base = re.escape(settings.TRACKING_BASE_URL)
    click_paths = re.findall(rf"href='{base}(/t/c/[^']+)'", html)
    pixel_paths = re.findall(rf'<img src="{base}(/t/o/[^"]+\.gif)"', html)
    assert len(click_paths) == 1 and len(pixel_paths) == 1
    assert re.sub(r"href='[^']+' class=cta", "", html) == re.sub(
        r"href='[^']+' class=cta", "", HTML.replace("{{first_name}}", "Ada")
    ).replace(
        "</body>",
        html[html.index('<a href="' + settings.TRACKING_BASE_URL) : html.index("</body>")]
        + "</body>",
    )
    for kept in (
        'href="#top"',
        'href="tel:+15550100"',
        'data-notrack href="https://example.com/unsubscribe-info"',
    ):
        assert kept in html
    assert settings.TRACKING_BASE_URL + "/t/c/" in text_of(tracked)

    # The recipient's mail client loads the image and the recipient clicks, an hour later.
    EmailMessageRelation.objects.filter(pk=relation.pk).update(
        sent_at=relation.sent_at.replace(year=2020)
    )
    app = tracking_app()
    assert call(app, pixel_paths[0], headers={"User-Agent": CHROME}).status == 200
    redirect = call(app, click_paths[0], headers={"User-Agent": CHROME})
    assert redirect.status == 302
    assert redirect.headers["Location"] == "https://example.com/pricing?plan=team&seats=5"

    assert events_ingest().stored == 2

    relation.refresh_from_db()
    email.refresh_from_db()
    assert (relation.human_opens, relation.human_clicks, relation.machine_opens) == (1, 1, 0)
    assert email.is_opened and email.times_opened == 1
    assert sorted(TrackingEvent.objects.values_list("kind", "label")) == [
        ("click", "human"),
        ("open", "human"),
    ]
    pricing = email.tracked_links.get(is_honeypot=False)
    assert (pricing.url, pricing.human_clicks) == (
        "https://example.com/pricing?plan=team&seats=5",
        1,
    )
    assert not EmailMessageRelation.objects.get(address="linus@example.com").is_tracked


def test_a_refused_recipient_fails_with_the_servers_reason_and_the_rest_go_out(
    smtp_server, rep, django_capture_on_commit_callbacks
) -> None:
    smtp_server.refuse["gone@example.com"] = "550 5.1.1 <gone@example.com>: user unknown"

    with django_capture_on_commit_callbacks(execute=True):
        email = email_send(
            sender=rep,
            to=["ok@example.com", "gone@example.com"],
            subject="Hi",
            html_body="<p>Hi</p>",
        )

    email.refresh_from_db()
    assert email.delivery_status == "partial"
    gone = email.relations.get(address="gone@example.com")
    assert (gone.delivery_status, gone.refusal_reason) == (
        "failed",
        "550 5.1.1 <gone@example.com>: user unknown",
    )
    assert "gone@example.com: 550 5.1.1" in email.failure_reason
    assert [rcpt for rcpt, _ in smtp_server.messages] == [["ok@example.com"]]


def test_an_unreachable_mail_server_is_retried_then_reported(settings, rep, monkeypatch) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 1
    email = email_send(sender=rep, to=["ok@example.com"], subject="Hi", html_body="<p>Hi</p>")
    attempts = []
    monkeypatch.setattr(
        crm.tasks, "email_deliver", lambda **kw: attempts.append(kw) or email_deliver(**kw)
    )

    # Eager Celery runs the retries inline: every try, then the report.
    celery_app.conf.task_eager_propagates = False
    deliver_email.apply(args=[email.pk])

    assert len(attempts) == MAX_DELIVERY_RETRIES + 1
    email.refresh_from_db()
    assert email.delivery_status == "failed"
    assert "could not be reached" in email.failure_reason
    assert email.relations.get(address="ok@example.com").delivery_status == "failed"
