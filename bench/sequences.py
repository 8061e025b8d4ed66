"""Benchmark: 50,000 sequence enrolments falling due at once, advanced; beat's due-step query at
500,000 enrolments.

On PostgreSQL, each of `RUNS` runs starts from the same state and measures, one after the other:
- the baseline, list email: a campaign's list email to 10,000 members, its batches run as the
  Celery task runs them (no rate limit) (the same path bench/listemail.py measures);
- sequences: 50,000 active enrolments due now at an email step followed by a call task and a
  wait, advanced by `enrolments_advance` as beat runs it: each person's email goes through the
  send pipeline (policy, their own EmailMessage with merge fields, token, tracked links) and is
  handed to the same in-memory mail backend; each gets the owner's task; each then waits.
Both rates are in emails per second; the ratio is list / sequences (the issue asks for < 3).

Then 500,000 enrolments (10 sequences x 50,000 people; most waiting, many finished or stopped,
500 due) and beat's due-step query (`automation.advance._DUE_SQL`, FOR UPDATE SKIP LOCKED in a
transaction), timed with EXPLAIN ANALYZE (its plan must use the partial index
enrolment_due_active) and from Python, each worst of 7.

    .venv/bin/python bench/sequences.py         (make bench runs it)
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
from bench.listemail import BODY  # the same email as the list email it is compared with
from bench.measure import write_results

DATABASE = os.environ.get("BENCH_DATABASE", "openrate_bench_sequences")
PEOPLE = int(os.environ.get("BENCH_PEOPLE", "50000"))
LIST_MEMBERS = int(os.environ.get("BENCH_LIST_MEMBERS", "10000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SEQUENCES_FOR_QUERY = 10  # x PEOPLE enrolments for the due-step query
DUE_FOR_QUERY = 500
QUERY_RUNS = 7


def main() -> int:
    start_in_process(
        DATABASE,
        CELERY_BROKER_URL="memory://",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    )
    from django.conf import settings

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    ids = _data()
    # The due-step query first (it replaces the enrolments; each run below starts afresh).
    query = _due_query(ids)
    runs: list[dict[str, float]] = []
    for run in range(1, RUNS + 1):
        _reset(ids)
        list_rate = _list_email(ids)
        sequence_rate, seconds = _sequences(ids)
        runs.append(
            {
                "list_email_per_second": list_rate,
                "sequence_emails_per_second": sequence_rate,
                "sequence_seconds": seconds,
                "ratio": list_rate / sequence_rate,
            }
        )
        print(
            f"run {run}: list email {list_rate:.0f}/s, sequences {sequence_rate:.0f}/s "
            f"({PEOPLE:,} in {seconds:.1f} s), ratio {list_rate / sequence_rate:.2f}",
            flush=True,
        )
        # Kept after each run, so a long bench cut short still leaves its figures.
        write_results("sequences", {"people": PEOPLE, "runs": runs, **query})
    worst = max(runs, key=lambda r: r["ratio"])
    print(f"\n{PEOPLE:,} enrolments due at once (PostgreSQL, in-memory mail backend), {RUNS} runs")
    print(f"worst run: sequences {worst['sequence_emails_per_second']:.0f} emails/s against list")
    print(f"email's {worst['list_email_per_second']:.0f}/s in the same run: {worst['ratio']:.2f}x")
    print(f"\nDue-step query at {query['enrolments']:,} enrolments ({DUE_FOR_QUERY} due):")
    print(f"  EXPLAIN ANALYZE worst of {QUERY_RUNS}: {query['explain_worst_ms']:.2f} ms")
    print(f"  from Python, worst of {QUERY_RUNS}:    {query['python_worst_ms']:.2f} ms")
    print(f"  plan uses enrolment_due_active: {query['uses_partial_index']}")
    write_results(
        "sequences",
        {"people": PEOPLE, "list_members": LIST_MEMBERS, "runs": runs, "worst": worst, **query},
    )
    return 0


def _data() -> dict[str, Any]:
    from automation.models import Sequence, Step
    from bench.data import analyze, create_user, people
    from campaigns.members import members_add
    from campaigns.models import Campaign
    from crm.models import EmailTemplate, OrgSettings

    user = create_user("bench", first_name="Bench", last_name="Rep")
    org = OrgSettings.load()
    org.daily_list_email_limit = 10_000_000
    org.daily_single_email_limit = 10_000_000
    org.save()
    contacts = people(user, PEOPLE)
    campaign = Campaign.objects.create(name="Spring release", owner=user)
    members_add(campaign=campaign, contact_ids=[c.pk for c in contacts[:LIST_MEMBERS]])
    template = EmailTemplate.objects.create(
        name="Spring", subject="Spring for {{first_name}}", html_body=BODY
    )
    sequence = Sequence.objects.create(name="Spring outreach", owner=user)
    first = Step.objects.create(sequence=sequence, position=1, kind="email", template=template)
    Step.objects.create(
        sequence=sequence, position=2, kind="task", task_kind="call", task_subject="Call"
    )
    Step.objects.create(
        sequence=sequence, position=3, kind="wait", wait_kind="business_days", wait_days=3
    )
    analyze()
    return {"user": user, "campaign": campaign, "sequence": sequence, "first_step": first}


def _reset(ids: dict[str, Any]) -> None:
    """Every run from the same state: no email, task or history; 50,000 enrolments due now."""
    from bench.data import analyze

    with _cursor() as cursor:
        cursor.execute(
            "TRUNCATE crm_emailmessage, crm_task, automation_enrolmentevent, "
            "automation_steprun, automation_enrolment, campaigns_listemail CASCADE"
        )
        cursor.execute(
            """
            INSERT INTO automation_enrolment (sequence_id, contact_id, owner_id, current_step_id,
                next_due_at, status, stop_reason, created_at, updated_at)
            SELECT %s, id, %s, %s, now() - interval '1 minute', 'active', '', now(), now()
            FROM crm_contact
            """,
            [ids["sequence"].pk, ids["user"].pk, ids["first_step"].pk],
        )
        cursor.execute("CHECKPOINT")
    analyze()


def _list_email(ids: dict[str, Any]) -> float:
    from django.core import mail

    from campaigns.list_email import list_email_batch_send
    from campaigns.models import ListEmail, ListEmailRecipient

    campaign = ids["campaign"]
    list_email = ListEmail.objects.create(
        campaign=campaign, sender=ids["user"], subject="Spring for {{first_name}}", html_body=BODY
    )
    ListEmailRecipient.objects.bulk_create(
        (
            ListEmailRecipient(list_email=list_email, contact_id=contact_id)
            for contact_id in campaign.members.values_list("contact_id", flat=True)
        ),
        batch_size=2000,
    )
    mail.outbox = []
    start = time.perf_counter()
    while list_email_batch_send(list_email_id=list_email.pk) is not None:
        pass
    seconds = time.perf_counter() - start
    assert len(mail.outbox) == LIST_MEMBERS, len(mail.outbox)
    return LIST_MEMBERS / seconds


def _sequences(ids: dict[str, Any]) -> tuple[float, float]:
    from django.core import mail

    from automation.advance import enrolments_advance
    from automation.models import Enrolment
    from crm.models import Task

    mail.outbox = []
    start = time.perf_counter()
    enrolments_advance()
    seconds = time.perf_counter() - start
    assert len(mail.outbox) == PEOPLE, len(mail.outbox)
    assert Task.objects.filter(subtype=Task.Subtype.CALL).count() == PEOPLE
    waiting = Enrolment.objects.filter(current_step__position=3, status="active").count()
    assert waiting == PEOPLE, waiting
    return PEOPLE / seconds, seconds


def _due_query(ids: dict[str, Any]) -> dict[str, Any]:
    """500,000 enrolments, 500 of them due; beat's claim timed (rolled back each time)."""
    from django.db import connection, transaction

    from automation.advance import _DUE_SQL
    from automation.models import Sequence, Step
    from bench.data import analyze

    user, first = ids["user"], ids["first_step"]
    with _cursor() as cursor:
        cursor.execute(
            "TRUNCATE automation_enrolmentevent, automation_steprun, automation_enrolment CASCADE"
        )
        for n in range(SEQUENCES_FOR_QUERY):
            sequence = Sequence.objects.create(name=f"Load {n}", owner=user)
            step = Step.objects.create(
                sequence=sequence, position=1, kind="email", template_id=first.template_id
            )
            # A third finished or stopped, the rest waiting up to 30 days ahead.
            cursor.execute(
                """
                INSERT INTO automation_enrolment (sequence_id, contact_id, owner_id,
                    current_step_id, next_due_at, status, stop_reason, created_at, updated_at)
                SELECT %s, id, %s, %s,
                    CASE WHEN id %% 3 = 0 THEN NULL
                         ELSE now() + (id %% 43200) * interval '1 minute' + interval '1 hour' END,
                    CASE WHEN id %% 3 = 0 THEN (CASE WHEN id %% 2 = 0 THEN 'finished'
                                                    ELSE 'stopped' END)
                         ELSE 'active' END,
                    '', now(), now()
                FROM crm_contact
                """,
                [sequence.pk, user.pk, step.pk],
            )
        cursor.execute(
            """
            UPDATE automation_enrolment SET next_due_at = now() - interval '5 minutes'
            WHERE id IN (SELECT id FROM automation_enrolment WHERE status = 'active'
                         ORDER BY random() LIMIT %s)
            """,
            [DUE_FOR_QUERY],
        )
        cursor.execute("SELECT count(*) FROM automation_enrolment")
        (total,) = cursor.fetchone()
        cursor.execute("VACUUM ANALYZE automation_enrolment")
    analyze()
    explain_ms: list[float] = []
    python_ms: list[float] = []
    plan = ""
    for _ in range(QUERY_RUNS):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + _DUE_SQL, [_now(), 500])
            lines = [row[0] for row in cursor.fetchall()]
            plan = "\n".join(lines)
            explain_ms.append(
                float(next(li for li in lines if li.startswith("Execution Time")).split()[2])
            )
            transaction.set_rollback(True)
        with transaction.atomic(), connection.cursor() as cursor:
            start = time.perf_counter()
            cursor.execute(_DUE_SQL, [_now(), 500])
            claimed = len(cursor.fetchall())
            python_ms.append((time.perf_counter() - start) * 1000)
            transaction.set_rollback(True)
        assert claimed == DUE_FOR_QUERY, claimed
    print(plan, flush=True)
    return {
        "enrolments": total,
        "explain_ms": explain_ms,
        "explain_worst_ms": max(explain_ms),
        "python_ms": python_ms,
        "python_worst_ms": max(python_ms),
        "uses_partial_index": "enrolment_due_active" in plan,
        "plan": plan,
    }


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


def _cursor() -> Any:
    from django.db import connection

    return connection.cursor()


if __name__ == "__main__":
    raise SystemExit(main())
