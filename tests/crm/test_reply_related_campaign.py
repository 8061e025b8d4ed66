"""The composer's "Related to" (the recipient's account or opportunities the user may see) and
"Campaign" (offered by campaigns through crm.hooks, as crm does not import campaigns)."""

from django.urls import reverse

from campaigns.models import Campaign
from crm import hooks
from crm.models import EmailMessage, OpportunityContactRole

BODY = "<p>Hello</p>"


def _url(contact):
    return reverse("crm:contact_email", args=[contact.pk])


def _post(client, contact, django_capture_on_commit_callbacks, **fields):
    data = {"to": contact.email, "subject": "Hi", "html_body": BODY} | fields
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(_url(contact), data)


def test_related_to_offers_the_persons_account_and_opportunities_the_user_may_see(
    client_for, rep, other_rep, make_account, make_contact, make_opportunity
) -> None:
    acme = make_account(name="Acme")
    ada = make_contact(account=acme)
    pilot = make_opportunity(name="Acme - Pilot", account=acme)
    hidden = make_opportunity(name="Acme - Hidden", account=acme, owner=other_rep)
    elsewhere = make_opportunity(name="Globex - Renewal")
    OpportunityContactRole.objects.create(opportunity=elsewhere, contact=ada)
    make_opportunity(name="Unrelated")

    form = client_for(rep).get(_url(ada)).context["form"]

    choices = dict(form.fields["related_to"].choices)
    assert choices == {
        "": "Nothing",
        f"account:{acme.pk}": "Account: Acme",
        f"opportunity:{pilot.pk}": "Opportunity: Acme - Pilot",
        f"opportunity:{elsewhere.pk}": "Opportunity: Globex - Renewal",
    }
    assert f"opportunity:{hidden.pk}" not in choices
    assert form["related_to"].value() == f"account:{acme.pk}"


def test_the_email_is_filed_under_the_chosen_opportunity(
    client_for,
    rep,
    make_account,
    make_contact,
    make_opportunity,
    django_capture_on_commit_callbacks,
) -> None:
    acme = make_account()
    ada = make_contact(account=acme)
    pilot = make_opportunity(account=acme)

    _post(
        client_for(rep),
        ada,
        django_capture_on_commit_callbacks,
        related_to=f"opportunity:{pilot.pk}",
    )

    email = EmailMessage.objects.get()
    assert (email.related_opportunity, email.related_account) == (pilot, None)


def test_a_record_the_user_may_not_see_is_refused_and_nothing_is_sent(
    client_for, rep, other_rep, make_account, make_contact, make_opportunity
) -> None:
    ada = make_contact(account=make_account())
    theirs = make_opportunity(owner=other_rep)

    response = client_for(rep).post(
        _url(ada),
        {
            "to": ada.email,
            "subject": "Hi",
            "html_body": BODY,
            "related_to": f"opportunity:{theirs.pk}",
        },
    )

    assert "Select a valid choice" in response.context["form"].errors["related_to"][0]
    assert b"Hello" in response.content  # the draft is kept
    assert not EmailMessage.objects.exists()


def test_a_reply_starts_filed_where_the_original_was(
    client_for,
    rep,
    make_account,
    make_contact,
    make_opportunity,
    django_capture_on_commit_callbacks,
) -> None:
    acme = make_account()
    ada = make_contact(account=acme)
    pilot = make_opportunity(account=acme)
    client = client_for(rep)
    _post(client, ada, django_capture_on_commit_callbacks, related_to=f"opportunity:{pilot.pk}")
    original = EmailMessage.objects.get()

    form = client.get(f"{original.get_absolute_url()}?compose=reply").context["form"]

    assert form["related_to"].value() == f"opportunity:{pilot.pk}"


def test_campaign_offers_active_campaigns_and_files_the_email_under_one(
    client_for, rep, make_contact, django_capture_on_commit_callbacks
) -> None:
    spring = Campaign.objects.create(name="Spring launch", owner=rep)
    Campaign.objects.create(name="Old", owner=rep, is_active=False)
    ada = make_contact()
    client = client_for(rep)

    form = client.get(_url(ada)).context["form"]
    assert [str(c) for c in form.fields["campaign"].queryset] == ["Spring launch"]

    _post(client, ada, django_capture_on_commit_callbacks, campaign=str(spring.pk))
    assert EmailMessage.objects.get().campaign_id == spring.pk


def test_without_a_campaigns_provider_the_composer_offers_no_campaign(
    client_for, rep, make_contact, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    monkeypatch.setattr(hooks, "_campaigns_provider", [])
    ada = make_contact()
    client = client_for(rep)

    page = client.get(_url(ada))
    assert "campaign" not in page.context["form"].fields
    assert b"No campaign" not in page.content

    _post(client, ada, django_capture_on_commit_callbacks)
    assert EmailMessage.objects.get().campaign_id is None
