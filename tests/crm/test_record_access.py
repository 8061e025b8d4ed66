"""Record access in one place: a rep reaches another rep's records through no page, form,
merge field or recipient match (crm.models' `visible_to` is the only rule).

Rita owns Zelda (a contact), a lead, an account, an opportunity, a task and an email to Zelda.
Otto, another rep, tries every URL that names a record with Rita's ids, every list and search,
and emails Zelda's address with merge fields: he learns nothing Rita's records hold.
"""

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from automation.models import Enrolment, Sequence
from crm.models import Contact, EmailMessage, EmailMessageRelation, EmailTemplate
from crm.scheduling import scheduled_email_create
from crm.sending import email_send

SECRETS = ("Zelda", "Quixote", "Chief Secret Officer", "Hidden Corp", "Xavier", "Hidden Deal")
# A record-naming URL answers one of these to someone who may not see the record.
REFUSED = {403, 404, 405}


@pytest.fixture
def ritas(rep, make_account, make_contact, make_lead, make_opportunity, make_task, roles):
    account = make_account(name="Hidden Corp")
    zelda = make_contact(
        first_name="Zelda",
        last_name="Quixote",
        email="zelda@secret.example",
        title="Chief Secret Officer",
        account=account,
    )
    lead = make_lead(first_name="Xavier", last_name="Hiddenlead", email="xavier@secret.example")
    opportunity = make_opportunity(name="Hidden Deal", account=account)
    task = make_task(subject="Call Zelda", who_contact=zelda)
    email = email_send(sender=rep, to=[zelda], subject="For Zelda", html_body="<p>Hi Zelda</p>")
    relation = email.relations.get(relation_type=EmailMessageRelation.Type.TO)
    template = EmailTemplate.objects.create(
        name="Zelda's own",
        folder="Zelda",  # a rep's private folder name shows in no one else's lists
        subject="For Zelda Quixote",
        html_body="<p>Hi</p>",
        is_private=True,
        owner=rep,
    )
    scheduled = scheduled_email_create(
        sender=rep,
        to=[zelda.email],
        subject="Later for Zelda",
        html_body="<p>Hi Zelda</p>",
        send_at=timezone.now() + timedelta(days=1),
        person=zelda,
    )
    sequence = Sequence.objects.create(name="Outreach", owner=rep)
    enrolment = Enrolment.objects.create(sequence=sequence, contact=zelda, owner=rep)
    return {
        "enrolment": enrolment,
        "template": template,
        "scheduled": scheduled,
        "account": account,
        "contact": zelda,
        "lead": lead,
        "opportunity": opportunity,
        "task": task,
        "email": email,
        "relation": relation,
    }


@pytest.fixture
def ottos_contact(other_rep, make_contact):
    return make_contact(
        first_name="Olive", last_name="Own", email="olive@ok.example", owner=other_rep
    )


def _compose(client, contact, **fields):
    data = {"to": contact.email, "cc": "", "bcc": "", "subject": "Hi", "html_body": ""} | fields
    return client.post(reverse("crm:contact_email", args=[contact.pk]), data)


def _assert_no_secret(content: bytes, where: str) -> None:
    text = content.decode("utf-8", "replace")
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, f"{where} shows {leaked}"


def test_emailing_a_hidden_contacts_address_fills_no_merge_field_and_links_nothing(
    ritas, other_rep, ottos_contact, client_for, django_capture_on_commit_callbacks
):
    client = client_for(other_rep)
    body = "<p>{{name}} / {{title}} / {{company}} / {{first_name}}</p>"

    with django_capture_on_commit_callbacks(execute=True):
        response = _compose(
            client, ottos_contact, to=f"{ottos_contact.email}, zelda@secret.example", html_body=body
        )

    email = EmailMessage.objects.get(sender=other_rep)
    assert response["Location"] == email.get_absolute_url()
    zelda_copy = email.relations.get(address="zelda@secret.example")
    assert zelda_copy.contact is None and zelda_copy.lead is None and zelda_copy.name == ""
    delivered = next(m for m in mail.outbox if m.to == ["zelda@secret.example"])
    _assert_no_secret(delivered.body.encode(), "the copy to Zelda's address")
    _assert_no_secret(delivered.alternatives[0][0].encode(), "the copy to Zelda's address")
    page = client.get(email.get_absolute_url())
    _assert_no_secret(page.content, "Otto's email page")
    assert ritas["contact"].get_absolute_url().encode() not in page.content


def test_a_single_recipient_email_to_a_hidden_address_is_stored_without_its_fields(
    ritas, other_rep, ottos_contact, client_for
):
    _compose(
        client_for(other_rep),
        ottos_contact,
        to="ZELDA@secret.example",
        subject="{{name}}",
        html_body="<p>{{title}} at {{company}}</p>",
    )

    email = EmailMessage.objects.get(sender=other_rep)
    _assert_no_secret(f"{email.subject} {email.html_body} {email.to_addresses}".encode(), "it")


def test_the_hidden_records_privacy_still_governs_the_send(
    ritas, other_rep, make_individual, ottos_contact
):
    zelda = ritas["contact"]
    zelda.individual = make_individual(last_name="Quixote", has_opted_out_processing=True)
    zelda.save(update_fields=["individual"])

    email = email_send(
        sender=other_rep, to=["zelda@secret.example"], subject="Hi", html_body="<p>Hi</p>"
    )

    copy = email.relations.get(address="zelda@secret.example")
    assert copy.delivery_status == EmailMessageRelation.Delivery.REFUSED
    assert copy.contact is None
    # The reason does not name the hidden record's flags to the sender.
    assert copy.refusal_reason == "the person's privacy settings"
    assert "Don't Process" not in email.failure_reason


def test_a_visible_record_is_still_matched(ritas, rep, manager):
    email = email_send(sender=manager, to=["zelda@secret.example"], subject="Hi", html_body="x")

    assert email.relations.get(address="zelda@secret.example").contact == ritas["contact"]


def test_the_email_page_names_only_the_recipients_the_viewer_may_see(ritas, other_rep, client_for):
    """An email Otto may open (he sent it) to a record that is Rita's since: no link to it."""
    olive = Contact.objects.create(
        first_name="Zelda", last_name="Quixote", email="z2@ok.example", owner=other_rep
    )
    email = email_send(sender=other_rep, to=[olive], subject="Hi", html_body="<p>x</p>")
    olive.owner = ritas["contact"].owner
    olive.save(update_fields=["owner"])

    page = client_for(other_rep).get(email.get_absolute_url())

    assert page.status_code == 200
    assert olive.get_absolute_url().encode() not in page.content
    assert b"z2@ok.example" in page.content


# --- every URL that names a record -------------------------------------------------------

# URL name -> which of Rita's objects its <pk> names (and the <kind> it takes, if any).
RECORD_URLS: dict[str, tuple[str, str | None]] = {
    **{
        f"crm:{kind}_{action}": (kind, None)
        for kind in ("account", "contact", "lead", "opportunity", "task")
        for action in ("detail", "edit", "delete")
    },
    "crm:task_complete": ("task", None),
    "crm:lead_convert": ("lead", None),
    "crm:contact_email": ("contact", None),
    "crm:lead_email": ("lead", None),
    "tracking:email_detail": ("email", None),
    "tracking:relation_activity": ("relation", None),
    # A rep's private template and their scheduled email are theirs alone.
    **{
        f"crm:template_{action}": ("template", None)
        for action in ("detail", "edit", "clone", "archive", "delete")
    },
    "crm:scheduled_edit": ("scheduled", None),
    "crm:scheduled_cancel": ("scheduled", None),
    # An enrolment in a sequence is its Contact's or Lead's.
    **{
        f"automation:enrolment_{action}": ("enrolment", None)
        for action in ("detail", "stop", "pause", "resume")
    },
}
# <kind>/<pk> URLs: each is tried with every record kind.
KIND_URLS = (
    "crm:timeline",
    "crm:log_call",
    "crm:person_privacy",
    "dataprotection:forget",
    "dataprotection:export",
)
# URLs whose <pk> names something every rep shares (campaigns) or no record at all: admins'
# data requests, webhook endpoints, import jobs (each app's tests check who may open them), and
# the API (tests/api/test_record_access.py compares each role's API with its list pages).
SHARED_PREFIXES = (
    "campaigns:",
    "admin:",
    "dataprotection:request",
    "webhooks:",
    "imports:",
    "api:",
    # Sequences and triggered-email rules are shared (automation's tests check who may edit).
    "automation:sequence",
    "automation:step",
    "automation:rule",
)


def _patterns(resolver: URLResolver, namespace: str = "") -> list[tuple[str, URLPattern]]:
    found: list[tuple[str, URLPattern]] = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found += _patterns(entry, inner)
        elif entry.name:
            found.append((f"{namespace}{entry.name}", entry))
    return found


def _record_urls(ritas: dict[str, Any]) -> list[str]:
    urls = []
    for name, pattern in _patterns(get_resolver()):
        params = set(pattern.pattern.converters)
        if "pk" not in params or name.startswith(SHARED_PREFIXES):
            continue
        if name in KIND_URLS:
            urls += [
                reverse(name, kwargs={"kind": kind, "pk": ritas[kind].pk})
                for kind in ("contact", "lead", "account", "opportunity")
            ]
            continue
        assert name in RECORD_URLS, f"{name} names a record: say here which one"
        kind, _ = RECORD_URLS[name]
        urls.append(reverse(name, kwargs={"pk": ritas[kind].pk}))
    return urls


def test_every_url_that_names_a_record_refuses_another_rep(ritas, other_rep, client_for):
    client = client_for(other_rep)
    urls = _record_urls(ritas)
    assert len(urls) >= len(RECORD_URLS)
    for url in urls:
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code in REFUSED, f"{method.__name__.upper()} {url}"
            _assert_no_secret(response.content, url)
    ritas["contact"].refresh_from_db()
    assert ritas["contact"].first_name == "Zelda"


def test_no_list_search_or_report_shows_another_reps_records(ritas, other_rep, client_for):
    client = client_for(other_rep)
    pages = [reverse("home"), reverse("crm:email_list"), reverse("reports:email_log")]
    for kind in ("account", "contact", "lead", "opportunity", "task"):
        pages += [reverse(f"crm:{kind}_list"), reverse(f"crm:{kind}_list") + "?q=Quix"]
        pages.append(reverse(f"crm:{kind}_create"))  # the form's choices
    pages += [reverse("crm:my_tasks"), reverse("crm:email_list") + "?q=Quix"]
    pages += [
        reverse("crm:template_list") + "?q=Quix",
        reverse("crm:template_list") + "?show=archived",
        reverse("crm:template_create"),
        reverse("crm:scheduled_list"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code in {200, 403}, url
        _assert_no_secret(response.content, url)


def test_a_form_refuses_another_reps_record_as_a_choice(ritas, other_rep, client_for):
    response = client_for(other_rep).post(
        reverse("crm:contact_create"),
        {"first_name": "New", "last_name": "Person", "account": ritas["account"].pk},
    )

    assert response.status_code == 200
    assert "account" in response.context["form"].errors
    assert not Contact.objects.filter(first_name="New").exists()


def test_a_visible_records_related_lists_leave_out_another_reps_records(
    ritas, other_rep, make_account, make_opportunity, client_for
):
    """A manager put Rita's Zelda on Otto's account and on his opportunity's contact roles."""
    from crm.models import OpportunityContactRole

    ottos_account = make_account(name="Otto Corp", owner=other_rep)
    ottos_deal = make_opportunity(name="Otto Deal", owner=other_rep, account=ottos_account)
    zelda = ritas["contact"]
    zelda.account = ottos_account
    zelda.save(update_fields=["account"])
    OpportunityContactRole.objects.create(opportunity=ottos_deal, contact=zelda)
    ritas["opportunity"].account = ottos_account
    ritas["opportunity"].save(update_fields=["account"])
    client = client_for(other_rep)

    for url in (ottos_account.get_absolute_url(), ottos_deal.get_absolute_url()):
        response = client.get(url)
        assert response.status_code == 200
        _assert_no_secret(response.content, url)
