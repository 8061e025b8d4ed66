"""The email template library: who writes and uses which templates, merge field checks, the
preview with a record's values, clone, archive, and delete only when unused."""

import pytest
from django.urls import reverse

from crm.models import EmailMessage, EmailTemplate
from crm.sending import email_send
from crm.templates_library import TemplateInUse, template_delete, template_uses

BODY = "<p>Hello {{first_name}} at {{company}}</p>"


def _fields(**overrides):
    return (
        {"name": "Intro", "folder": "Prospecting", "subject": "Hi {{first_name}}"}
        | {"html_body": BODY}
        | overrides
    )


@pytest.fixture
def shared(manager) -> EmailTemplate:
    return EmailTemplate.objects.create(
        name="Shared intro", folder="Prospecting", subject="Hi", html_body=BODY, owner=manager
    )


def test_a_manager_writes_a_shared_template(client_for, manager) -> None:
    response = client_for(manager).post(reverse("crm:template_create"), _fields(is_private=""))

    template = EmailTemplate.objects.get()
    assert response["Location"] == template.get_absolute_url()
    assert (template.name, template.folder, template.is_private, template.owner) == (
        "Intro",
        "Prospecting",
        False,
        manager,
    )


def test_a_reps_template_is_private_whatever_they_post(client_for, rep, other_rep) -> None:
    client_for(rep).post(reverse("crm:template_create"), _fields(is_private=""))

    template = EmailTemplate.objects.get()
    assert template.is_private and template.owner == rep
    assert list(EmailTemplate.objects.usable_by(rep)) == [template]
    assert not EmailTemplate.objects.usable_by(other_rep).exists()


def test_a_rep_uses_a_shared_template_but_cannot_change_it(client_for, rep, shared) -> None:
    client = client_for(rep)

    assert client.get(shared.get_absolute_url()).status_code == 200
    assert client.get(reverse("crm:template_edit", args=[shared.pk])).status_code == 403
    response = client.post(reverse("crm:template_edit", args=[shared.pk]), _fields(name="Mine"))
    assert response.status_code == 403
    assert client.post(reverse("crm:template_archive", args=[shared.pk])).status_code == 403
    shared.refresh_from_db()
    assert shared.name == "Shared intro" and shared.is_active


def test_a_rep_edits_their_own_private_template(client_for, rep) -> None:
    own = EmailTemplate.objects.create(
        name="Mine", subject="Hi", html_body="<p>x</p>", is_private=True, owner=rep
    )

    client_for(rep).post(reverse("crm:template_edit", args=[own.pk]), _fields(name="Mine, v2"))

    own.refresh_from_db()
    assert own.name == "Mine, v2" and own.subject == "Hi {{first_name}}" and own.is_private


def test_unknown_merge_fields_are_listed_and_nothing_is_saved(client_for, manager) -> None:
    response = client_for(manager).post(
        reverse("crm:template_create"),
        _fields(subject="Hi {{nickname}}", html_body="<p>*|FNAME|* {{shoe_size}}</p>"),
    )

    error = response.context["form"].errors["html_body"][0]
    assert "Unknown merge field {{nickname}}, {{shoe_size}}" in error
    assert "*|FNAME|* (use {{first_name}})" in error
    assert not EmailTemplate.objects.exists()
    assert b"{{shoe_size}}" in response.content  # what was typed is kept


def test_names_are_unique_among_shared_and_per_owner_among_private(
    client_for, manager, rep, other_rep, shared
) -> None:
    response = client_for(manager).post(
        reverse("crm:template_create"), _fields(name="shared INTRO")
    )
    assert "already among the shared templates" in response.context["form"].errors["name"][0]

    for user in (rep, other_rep):  # each rep may keep a private one of that name
        client_for(user).post(reverse("crm:template_create"), _fields(name="Shared intro"))
    assert EmailTemplate.objects.filter(name="Shared intro", is_private=True).count() == 2
    response = client_for(rep).post(reverse("crm:template_create"), _fields(name="Shared Intro"))
    assert "already among your private templates" in response.context["form"].errors["name"][0]


def test_the_preview_fills_a_chosen_record_the_user_may_see(
    client_for, rep, other_rep, shared, make_contact, make_account
) -> None:
    ada = make_contact(first_name="Ada", account=make_account(name="Analytical"))
    hidden = make_contact(first_name="Zelda", owner=other_rep)
    client = client_for(rep)
    url = shared.get_absolute_url()

    page = client.get(url, {"person": f"contact:{ada.pk}"})
    assert page.context["preview"].subject == "Hi"
    assert "Hello Ada at Analytical" in page.context["preview"].html_body

    page = client.get(url, {"person": f"contact:{hidden.pk}"})
    assert page.context["preview"] is None
    assert b"Zelda" not in page.content


def test_a_rep_clones_a_shared_template_as_a_private_copy(client_for, rep, shared) -> None:
    client = client_for(rep)

    client.post(reverse("crm:template_clone", args=[shared.pk]))
    client.post(reverse("crm:template_clone", args=[shared.pk]))

    copies = EmailTemplate.objects.filter(owner=rep).order_by("pk")
    assert [c.name for c in copies] == ["Shared intro (copy)", "Shared intro (copy 2)"]
    assert all(c.is_private and c.html_body == BODY for c in copies)


def test_an_archived_template_is_no_longer_offered_in_the_composer(
    client_for, manager, rep, shared, make_contact
) -> None:
    client_for(manager).post(reverse("crm:template_archive", args=[shared.pk]))

    shared.refresh_from_db()
    assert not shared.is_active and shared.archived_at is not None
    page = client_for(rep).get(reverse("crm:contact_email", args=[make_contact().pk]))
    assert str(shared.pk) not in page.context["templates"]
    archived = client_for(rep).get(reverse("crm:template_list"), {"show": "archived"})
    assert list(archived.context["page"].object_list) == [shared]


def test_a_template_in_use_is_never_deleted(client_for, manager, shared, make_contact) -> None:
    email_send(sender=manager, to=[make_contact()], subject="Hi", html_body=BODY, template=shared)
    client = client_for(manager)

    confirm = client.get(reverse("crm:template_delete", args=[shared.pk]))
    assert b"cannot be deleted" in confirm.content
    response = client.post(reverse("crm:template_delete", args=[shared.pk]))

    assert response.status_code == 409
    assert EmailTemplate.objects.filter(pk=shared.pk).exists()
    assert template_uses(shared) == 1
    with pytest.raises(TemplateInUse):
        template_delete(template=shared)


def test_an_unused_template_is_deleted_after_a_confirmation(client_for, manager, shared) -> None:
    client = client_for(manager)

    confirm = client.get(reverse("crm:template_delete", args=[shared.pk]))
    assert confirm.status_code == 200 and b"Delete the template" in confirm.content
    assert EmailTemplate.objects.filter(pk=shared.pk).exists()
    response = client.post(reverse("crm:template_delete", args=[shared.pk]))

    assert response["Location"] == reverse("crm:template_list")
    assert not EmailTemplate.objects.filter(pk=shared.pk).exists()


def test_the_composer_offers_usable_templates_and_records_the_one_used(
    client_for, rep, other_rep, shared, make_contact, django_capture_on_commit_callbacks
) -> None:
    mine = EmailTemplate.objects.create(
        name="Mine", subject="S", html_body="<p>x</p>", is_private=True, owner=rep
    )
    theirs = EmailTemplate.objects.create(
        name="Theirs", subject="S", html_body="<p>x</p>", is_private=True, owner=other_rep
    )
    contact = make_contact()
    client = client_for(rep)
    url = reverse("crm:contact_email", args=[contact.pk])

    page = client.get(url)
    assert set(page.context["templates"]) == {str(shared.pk), str(mine.pk)}
    refused = client.post(
        url, {"to": contact.email, "subject": "S", "html_body": BODY, "template": theirs.pk}
    )
    assert "template" in refused.context["form"].errors
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            url, {"to": contact.email, "subject": "S", "html_body": BODY, "template": shared.pk}
        )

    assert EmailMessage.objects.get().template == shared


def test_the_library_lists_filters_searches_and_pages(
    client_for, rep, manager, django_assert_num_queries
) -> None:
    for n in range(60):
        EmailTemplate.objects.create(
            name=f"Template {n:02}",
            folder="Renewals" if n % 2 else "Prospecting",
            subject=f"Subject {n}",
            html_body="<p>x</p>",
            owner=manager,
        )
    client = client_for(rep)
    url = reverse("crm:template_list")

    client.get(url)  # warm the session and permission caches
    with django_assert_num_queries(9):  # session, user, perms, folders, count, nav, rows
        page = client.get(url, {"folder": "Renewals", "page": "2"})
    assert [t.name for t in page.context["page"].object_list] == [
        f"Template {n:02}" for n in range(51, 60, 2)
    ]
    assert page.context["folders"] == ["Prospecting", "Renewals"]
    found = client.get(url, {"q": "subject 7"}).context["page"].object_list
    assert [t.name for t in found] == ["Template 07"]
    empty = client.get(url, {"q": "nothing like it"})
    assert b"No template matches" in empty.content


def test_an_empty_library_says_how_to_start(client_for, manager) -> None:
    page = client_for(manager).get(reverse("crm:template_list"))

    assert b"No template yet" in page.content and b"Write the first one" in page.content


def test_a_rep_deletes_only_their_own_unused_private_template(client_for, rep, shared) -> None:
    own = EmailTemplate.objects.create(
        name="Mine", subject="S", html_body="<p>x</p>", is_private=True, owner=rep
    )
    client = client_for(rep)

    assert client.post(reverse("crm:template_delete", args=[shared.pk])).status_code == 403
    client.post(reverse("crm:template_delete", args=[own.pk]))

    assert list(EmailTemplate.objects.all()) == [shared]
