"""Benchmark: a list email to 10,000 campaign members, prepared and handed to the mail backend.

Runs the list email's batches as the Celery task does (no rate limit), on PostgreSQL: each
member goes through the send pipeline (privacy policy, their own EmailMessage with merge fields
filled, their own token, tracked links, pixel, List-Unsubscribe) and their copy is handed to
Django's in-memory mail backend. The floor, in the same run: the very 10,000 messages it handed
over (read back from the backend's outbox: every header, each copy's rewritten links and tokens)
built again and handed to the same backend with no database at all: the cost of the MIME alone.
The target is the list email within 2x the floor. Also printed, for comparison with earlier
figures: the simpler messages this benchmark used as its baseline before (merged by hand, no
tracking). Tasks the send queues for others (activity metrics) go to an in-memory broker and
are not run here.

    .venv/bin/python bench/listemail.py         (make bench runs it)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, not bench/

from bench.env import start_in_process
from bench.measure import write_results

DATABASE = os.environ.get("BENCH_DATABASE", "openrate_bench_listemail")
MEMBERS = 10_000
BODY = (
    "<p>Hi {{first_name}},</p><p>Our spring release is out: see "
    '<a href="https://example.com/spring">what is new</a>, '
    '<a href="https://example.com/pricing">pricing</a> and '
    '<a href="https://example.com/demo">book a demo</a>.</p>'
    "<p>" + "Some more words about it. " * 30 + "</p><p>{{sender_name}}</p>"
)


def main() -> int:
    start_in_process(
        DATABASE,
        CELERY_BROKER_URL="memory://",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    )
    from django.conf import settings

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    list_email_id = _data()

    baseline = _baseline()
    from django.core import mail

    from campaigns.list_email import list_email_batch_send
    from campaigns.models import ListEmail

    mail.outbox = []
    start = time.perf_counter()
    while list_email_batch_send(list_email_id=list_email_id) is not None:
        pass
    seconds = time.perf_counter() - start
    assert ListEmail.objects.get(pk=list_email_id).status == ListEmail.Status.COMPLETED
    handed = len(mail.outbox)
    assert handed == MEMBERS, handed
    floor = _floor(mail.outbox)
    rate = handed / seconds
    print(f"\nList email to {MEMBERS:,} members (PostgreSQL, in-memory mail backend)")
    print(f"{'path':<60} {'seconds':>8} {'emails/s':>9}")
    for label, took in (
        ("floor: the very messages it handed over, no database", floor),
        ("simple: messages merged by hand, no database", baseline),
        ("list email: policy, EmailMessage, token, tracking, handed", seconds),
    ):
        print(f"{label:<60} {took:>8.2f} {MEMBERS / took:>9.0f}")
    print(
        f"\nThe list email costs {seconds / floor:.2f}x building the messages it sent "
        f"({seconds / baseline:.2f}x the simpler messages)."
    )
    write_results(
        "listemail",
        {
            "members": MEMBERS,
            "seconds": seconds,
            "emails_per_second": rate,
            "floor_seconds": floor,
            "floor_emails_per_second": MEMBERS / floor,
            "ratio": seconds / floor,
            "baseline_seconds": baseline,
            "baseline_emails_per_second": MEMBERS / baseline,
        },
    )
    return 0


def _data() -> int:
    from bench.data import analyze, create_user, people
    from campaigns.members import members_add
    from campaigns.models import Campaign, ListEmail, ListEmailRecipient
    from crm.models import OrgSettings

    user = create_user("bench", first_name="Bench", last_name="Rep")
    org = OrgSettings.load()
    org.daily_list_email_limit = 1_000_000
    org.save()
    contacts = people(user, MEMBERS)
    campaign = Campaign.objects.create(name="Spring release", owner=user)
    members_add(campaign=campaign, contact_ids=[c.pk for c in contacts])
    list_email = ListEmail.objects.create(
        campaign=campaign, sender=user, subject="Spring for {{first_name}}", html_body=BODY
    )
    ListEmailRecipient.objects.bulk_create(
        (ListEmailRecipient(list_email=list_email, contact=c) for c in contacts), batch_size=2000
    )
    analyze()
    return list_email.pk


def _floor(outbox: list[Any]) -> float:
    """The floor: the very messages the list email handed over (subject, both parts, every
    header, each copy's rewritten links and tokens, all read from the backend's outbox before
    timing) built again and handed to the same backend, with no database and nothing else."""
    from django.core import mail
    from django.core.mail import EmailMultiAlternatives, get_connection

    parts = [
        (m.subject, m.body, m.from_email, m.to, dict(m.extra_headers), m.alternatives[0][0])
        for m in outbox
    ]
    mail.outbox = []
    start = time.perf_counter()
    backend = get_connection()
    backend.open()
    for subject, body, from_email, to, headers, html in parts:
        message = EmailMultiAlternatives(
            subject=subject,
            body=body,
            from_email=from_email,
            to=to,
            headers=headers,
            connection=backend,
        )
        message.attach_alternative(html, "text/html")
        message.send()
    backend.close()
    return time.perf_counter() - start


def _baseline() -> float:
    """The same number of simpler two-part messages (merged by hand, their links not rewritten,
    no tracking or list headers, the text made from the HTML each time), handed to the same
    backend: the floor this benchmark used before `_floor`."""
    from django.core import mail
    from django.core.mail import EmailMultiAlternatives, get_connection

    from mailkit.rewrite import html_to_text

    mail.outbox = []
    start = time.perf_counter()
    backend = get_connection()
    backend.open()
    for i in range(MEMBERS):
        html = BODY.replace("{{first_name}}", f"Person{i}").replace("{{sender_name}}", "Bench")
        message = EmailMultiAlternatives(
            subject=f"Spring for Person{i}",
            body=html_to_text(html),
            from_email="bench@openrate.example",
            to=[f"person{i}@example.com"],
            connection=backend,
        )
        message.attach_alternative(html, "text/html")
        message.send()
    backend.close()
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
