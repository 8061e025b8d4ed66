"""The email page: each recipient's HTML Email Status, machine opens apart, clicks per link."""

from django.urls import reverse

from tests.tracking.conftest import CHROME, call
from tracking.ingestion import events_ingest


def test_it_shows_human_and_machine_activity_per_recipient(
    client_for, rep, sent_email, embedded, tracking_app, django_assert_max_num_queries
) -> None:
    app = tracking_app()
    call(app, sent_email.pixel, headers={"User-Agent": CHROME})
    call(app, sent_email.pixel, headers={"User-Agent": "Mozilla/5.0"}, remote_addr="17.1.2.3")
    call(app, sent_email.click, headers={"User-Agent": CHROME})
    events_ingest()
    client = client_for(rep)
    client.get("/")

    # 14: the page also asks which recipients' records the viewer may see, and the
    # email's conversation.
    with django_assert_max_num_queries(14):
        page = client.get(reverse("tracking:email_detail", args=[sent_email.email.pk]))

    row = page.context["rows"][0]
    assert row["relation"].human_opens == 1
    assert row["machine_opens"] == [("Apple Mail Privacy Protection", 1)]
    ((link, clicks),) = row["links"]
    assert (link.url, clicks) == ("https://example.com/pricing", {"human": 1, "machine": 0})
    content = page.content.decode()
    assert "Opened 1 time" in content
    assert "Apple Mail Privacy Protection: 1" in content


def test_the_email_page_is_hidden_from_other_reps(
    client_for, other_rep, manager, sent_email
) -> None:
    url = reverse("tracking:email_detail", args=[sent_email.email.pk])

    assert client_for(other_rep).get(url).status_code == 404
    assert client_for(manager).get(url).status_code == 200


def test_a_queued_email_page_refreshes_itself(client_for, rep) -> None:
    from crm.sending import email_send

    email = email_send(sender=rep, to=["a@example.com"], subject="Hi", html_body="<p>Hi</p>")

    page = client_for(rep).get(email.get_absolute_url())

    assert b'http-equiv="refresh"' in page.content
    assert b"Queued" in page.content


def test_a_timeline_entry_loads_the_recipients_opens_and_clicks(
    client_for, rep, other_rep, sent_email, embedded, tracking_app
) -> None:
    app = tracking_app()
    call(app, sent_email.click, headers={"User-Agent": CHROME})
    events_ingest()
    url = reverse("tracking:relation_activity", args=[sent_email.relation.pk])

    fragment = client_for(rep).get(url)

    assert fragment.context["clicks"] == [
        {"link__url": "https://example.com/pricing", "human": 1, "machine": 0}
    ]
    assert b"click on https://example.com/pricing, human" in fragment.content
    assert client_for(other_rep).get(url).status_code == 404
