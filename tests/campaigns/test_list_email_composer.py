"""The list email composer: the single composer's editor, a preview filled with a chosen
member's values, "send me a test", and foreign merge syntax refused before anything is sent;
the list email page's heading reads as a member's subject."""

from django.core import mail

from campaigns.members import members_add
from campaigns.models import ListEmail
from crm.models import EmailMessage

BODY = '<p>Hi {{first_name}},</p><p>See <a href="https://example.com/?who={{email}}">this</a>.</p>'


def _compose(client, campaign, **data):
    return client.post(
        f"/campaigns/{campaign.pk}/email/", {"subject": "News for {{first_name}}", **data}
    )


def _people(campaign, make_contact):
    ada = make_contact(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    bob = make_contact(first_name="Bob", last_name="Babbage", email="bob@example.com")
    members_add(campaign=campaign, contact_ids=[ada.pk, bob.pk])
    return ada, bob


def test_the_composer_has_the_editor_and_a_member_to_preview_as(
    client_for, rep, campaign, make_contact
) -> None:
    _people(campaign, make_contact)

    page = client_for(rep).get(f"/campaigns/{campaign.pk}/email/").content.decode()

    assert 'id="composer"' in page and "data-editor" in page and "js/composer.js" in page
    assert "Ada Lovelace &lt;ada@example.com&gt;" in page
    assert 'value="preview"' in page and 'value="test"' in page


def test_the_preview_shows_the_email_as_the_chosen_member_reads_it_and_sends_nothing(
    client_for, rep, campaign, make_contact
) -> None:
    _, bob = _people(campaign, make_contact)
    member = campaign.members.get(contact=bob)

    response = _compose(
        client_for(rep), campaign, html_body=BODY, action="preview", preview_member=member.pk
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "as Bob Babbage will read it" in page
    assert ">News for Bob<" in page
    assert "Hi Bob," in page and "who=bob@example.com" in page  # in the frame's srcdoc
    assert not ListEmail.objects.exists() and not EmailMessage.objects.exists()
    assert "News for {{first_name}}" in page  # the subject field keeps what was written


def test_send_me_a_test_goes_to_the_sender_filled_as_the_member(
    client_for, rep, campaign, make_contact, django_capture_on_commit_callbacks
) -> None:
    ada, _ = _people(campaign, make_contact)
    member = campaign.members.get(contact=ada)

    with django_capture_on_commit_callbacks(execute=True):
        response = _compose(
            client_for(rep), campaign, html_body=BODY, action="test", preview_member=member.pk
        )

    assert response.status_code == 200
    (sent,) = mail.outbox
    assert sent.to == [rep.email] and sent.subject == "[Test] News for Ada"
    assert "Hi Ada," in sent.alternatives[0][0]
    assert not ListEmail.objects.exists()  # the members got nothing
    assert f"A test went to {rep.email}" in response.content.decode()


def test_foreign_merge_syntax_is_refused_before_sending(
    client_for, rep, campaign, make_contact
) -> None:
    _people(campaign, make_contact)

    response = _compose(client_for(rep), campaign, html_body="<p>Hi *|FNAME|*</p>", action="send")

    assert response.status_code == 200
    assert "*|FNAME|*" in response.content.decode()
    assert not ListEmail.objects.exists()


def test_the_list_email_page_heading_reads_as_a_members_subject(
    client_for, rep, campaign, make_contact, django_capture_on_commit_callbacks
) -> None:
    _people(campaign, make_contact)
    with django_capture_on_commit_callbacks(execute=True):
        _compose(client_for(rep), campaign, html_body=BODY, action="send")
    list_email = ListEmail.objects.get()

    page = client_for(rep).get(list_email.get_absolute_url()).content.decode()

    heading = page[page.index("<h1") : page.index("</h1>")]
    assert heading.endswith(">News for Ada") or heading.endswith(">News for Bob")
    assert "written as “News for {{first_name}}”" in page
