"""Create and edit forms: saving, owners, and clear validation messages that lose nothing."""

from datetime import date

from django.urls import reverse

from crm.models import Account, Contact, Opportunity, Task


def test_a_rep_creates_a_contact_they_own(client_for, rep, make_account) -> None:
    account = make_account()

    response = client_for(rep).post(
        reverse("crm:contact_create"),
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "account": account.pk,
        },
    )

    contact = Contact.objects.get()
    assert response.status_code == 302
    assert response["Location"] == contact.get_absolute_url()
    assert (contact.owner, contact.account, contact.email) == (rep, account, "ada@example.com")


def test_a_missing_name_and_a_bad_email_are_explained_and_nothing_is_saved(client_for, rep) -> None:
    response = client_for(rep).post(
        reverse("crm:contact_create"), {"first_name": "Ada", "email": "not-an-email"}
    )

    assert response.status_code == 200
    assert Contact.objects.count() == 0
    assert response.context["form"].errors == {
        "last_name": ["This field is required."],
        "email": ["Enter a valid email address."],
    }
    assert b"Please correct the errors below; nothing was saved." in response.content
    assert b'value="Ada"' in response.content  # what the user typed is kept


def test_a_rep_cannot_attach_a_record_to_an_account_they_cannot_see(
    client_for, rep, other_rep, make_account
) -> None:
    foreign = make_account(owner=other_rep)

    response = client_for(rep).post(
        reverse("crm:contact_create"), {"last_name": "Lovelace", "account": foreign.pk}
    )

    assert "account" in response.context["form"].errors
    assert Contact.objects.count() == 0


def test_a_manager_assigns_an_owner_and_a_rep_cannot(client_for, rep, manager, other_rep) -> None:
    client_for(manager).post(
        reverse("crm:account_create"), {"name": "Managed", "owner": other_rep.pk}
    )
    client_for(rep).post(reverse("crm:account_create"), {"name": "Mine", "owner": other_rep.pk})

    assert Account.objects.get(name="Managed").owner == other_rep
    assert Account.objects.get(name="Mine").owner == rep


def test_editing_keeps_the_owner_and_changes_the_fields(client_for, rep, make_account) -> None:
    account = make_account(name="Old")

    client_for(rep).post(reverse("crm:account_edit", args=[account.pk]), {"name": "New"})

    account.refresh_from_db()
    assert (account.name, account.owner) == ("New", rep)


def test_a_person_account_has_only_one_contact(client_for, rep, make_account, make_contact) -> None:
    person = make_account(name="Ada Lovelace", is_person_account=True)
    make_contact(account=person)

    response = client_for(rep).post(
        reverse("crm:contact_create"), {"last_name": "Second", "account": person.pk}
    )

    assert response.context["form"].errors["account"] == [
        "A person account has exactly one contact: the person it is."
    ]


def test_a_task_cannot_be_about_a_contact_and_a_lead(
    client_for, rep, make_contact, make_lead
) -> None:
    response = client_for(rep).post(
        reverse("crm:task_create"),
        {
            "subject": "Call",
            "status": "not_started",
            "priority": "normal",
            "subtype": "call",
            "who_contact": make_contact().pk,
            "who_lead": make_lead().pk,
        },
    )

    assert response.context["form"].errors["who_lead"] == [
        "A task is about a contact or a lead, not both."
    ]
    assert Task.objects.count() == 0


def test_completing_a_task_through_the_form_stamps_the_time(client_for, rep, make_task) -> None:
    task = make_task()

    client_for(rep).post(
        reverse("crm:task_edit", args=[task.pk]),
        {"subject": "Call", "status": "completed", "priority": "normal", "subtype": "call"},
    )

    task.refresh_from_db()
    assert task.is_completed
    assert task.completed_at is not None


def test_an_opportunity_takes_its_stages_probability_unless_one_is_typed(client_for, rep) -> None:
    client = client_for(rep)
    fields = {"name": "Deal", "close_date": "2026-12-31", "amount": "1000"}

    client.post(reverse("crm:opportunity_create"), {**fields, "stage": "proposal"})
    client.post(
        reverse("crm:opportunity_create"),
        {**fields, "name": "Typed", "stage": "proposal", "probability": "35"},
    )

    assert Opportunity.objects.get(name="Deal").probability == 60
    assert Opportunity.objects.get(name="Typed").probability == 35


def test_an_opportunity_rejects_a_negative_amount_and_a_bad_date(client_for, rep) -> None:
    response = client_for(rep).post(
        reverse("crm:opportunity_create"),
        {"name": "Deal", "stage": "prospecting", "close_date": "31/31/2026", "amount": "-5"},
    )

    errors = response.context["form"].errors
    assert errors["amount"] == ["Ensure this value is greater than or equal to 0."]
    assert errors["close_date"] == ["Enter a valid date."]
    assert Opportunity.objects.count() == 0


def test_converting_a_lead_makes_an_account_a_contact_and_an_opportunity(
    client_for, rep, make_lead
) -> None:
    lead = make_lead(company="Navy Labs")

    response = client_for(rep).post(
        reverse("crm:lead_convert", args=[lead.pk]), {"opportunity_name": "Navy Labs - Pilot"}
    )

    lead.refresh_from_db()
    contact = lead.converted_contact
    assert lead.is_converted
    assert response["Location"] == contact.get_absolute_url()
    assert contact.account.name == "Navy Labs"
    assert lead.converted_opportunity.roles.get().contact == contact
    assert lead.converted_opportunity.close_date > date.today()


def test_a_converted_lead_is_not_converted_twice(client_for, rep, make_lead) -> None:
    lead = make_lead()
    lead.convert()

    client_for(rep).post(reverse("crm:lead_convert", args=[lead.pk]), {"opportunity_name": ""})

    assert Contact.objects.count() == 1


def test_deleting_asks_first_and_deletes_on_post(client_for, manager, make_account) -> None:
    account = make_account()
    client = client_for(manager)

    confirm = client.get(reverse("crm:account_delete", args=[account.pk]))
    assert b"cannot be undone" in confirm.content
    assert Account.objects.filter(pk=account.pk).exists()

    response = client.post(reverse("crm:account_delete", args=[account.pk]))

    assert response["Location"] == reverse("crm:account_list")
    assert not Account.objects.filter(pk=account.pk).exists()


def test_reopening_a_follow_up_is_refused_when_another_is_open(
    client_for, rep, make_contact, make_task
) -> None:
    contact = make_contact()
    done = make_task(
        subject="Old follow-up", who_contact=contact, kind=Task.Kind.FOLLOW_UP, status="completed"
    )
    make_task(subject="Current follow-up", who_contact=contact, kind=Task.Kind.FOLLOW_UP)

    response = client_for(rep).post(
        reverse("crm:task_edit", args=[done.pk]),
        {
            "subject": "Old follow-up",
            "status": "not_started",
            "priority": "normal",
            "subtype": "task",
            "who_contact": contact.pk,
        },
    )

    assert response.context["form"].errors["status"] == [
        "This record already has an open follow-up; use that one."
    ]
    done.refresh_from_db()
    assert done.is_completed
