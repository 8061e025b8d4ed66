"""A forgotten address is not written to again, and an import or capture can tell it."""

from crm.models import EmailMessageRelation
from crm.sending import email_send
from dataprotection.forget import person_forget
from dataprotection.people import person_from
from privacy.forgotten import forgotten_among


def test_sending_to_a_forgotten_address_is_refused_in_words(
    rep, make_contact, django_capture_on_commit_callbacks
) -> None:
    ada = make_contact(email="Ada@Example.com")
    person_forget(person=person_from("contact", ada.pk))

    with django_capture_on_commit_callbacks(execute=True):
        email_send(sender=rep, to=["ada@example.com"], subject="Hello", html_body="<p>Hi</p>")

    copy = EmailMessageRelation.objects.get(relation_type="to")
    assert (copy.delivery_status, copy.refusal_reason) == ("refused", "Forgotten person")


def test_re_adding_a_forgotten_address_is_flagged(make_contact) -> None:
    ada = make_contact()
    person_forget(person=person_from("contact", ada.pk))

    again = make_contact(email="ADA@example.com")

    assert forgotten_among([again.email, "bob@example.org"]) == {"ADA@example.com"}
