"""Don't Track turned on after a send: the person's timeline and the email page say what became
of the later opens and clicks."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import formats, timezone

from crm.models import EmailMessage, EmailMessageRelation, OrgSettings, PrivacyChange
from crm.privacy_changes import privacy_update
from crm.timeline import timeline
from tests.tracking.conftest import setup_change

TURNED_ON = timezone.now().replace(microsecond=0) - timedelta(minutes=30)


@pytest.fixture
def dont_track(sent_email) -> str:
    """Ada turns Don't Track on half an hour after her copy went out; the date it shows."""
    privacy_update(
        person=sent_email.relation.contact,
        by=None,
        source="the record page",
        flags={"has_opted_out_tracking": True},
    )
    PrivacyChange.objects.update(changed_at=TURNED_ON)
    return formats.date_format(timezone.localtime(TURNED_ON), "DATE_FORMAT")


def _notes(contact) -> list[str]:
    return [entry.note for entry in timeline(contact).entries if entry.kind == "email"]


def test_the_timeline_says_later_opens_are_not_recorded(sent_email, dont_track) -> None:
    assert _notes(sent_email.relation.contact) == [
        f"Don't Track since {dont_track}: later opens and clicks are not recorded"
    ]


def test_counted_anonymously_it_says_they_count_only_in_totals(sent_email, dont_track) -> None:
    setup_change(events_after_dont_track=OrgSettings.AfterDontTrack.ANONYMOUS)

    assert _notes(sent_email.relation.contact) == [
        f"Don't Track since {dont_track}: later opens and clicks are counted only in totals"
    ]


def test_an_email_sent_after_the_flag_carries_no_note(sent_email, dont_track) -> None:
    contact = sent_email.relation.contact
    later = EmailMessage.objects.create(
        subject="Later", from_address="rita@openrate.example", message_date=timezone.now()
    )
    EmailMessageRelation.objects.create(
        email=later,
        relation_type="to",
        address=contact.email,
        contact=contact,
        delivery_status="sent",
        sent_at=timezone.now(),
        is_tracked=False,
        untracked_reason="Don't Track",
    )

    assert _notes(contact) == [
        "",
        f"Don't Track since {dont_track}: later opens and clicks are not recorded",
    ]


def test_with_privacy_settings_not_enforced_nothing_is_said(sent_email, dont_track) -> None:
    setup_change(enforce_email_privacy=False)

    assert _notes(sent_email.relation.contact) == [""]


def test_the_record_page_and_the_email_page_show_it(
    client_for, rep, sent_email, dont_track
) -> None:
    client = client_for(rep)
    text = f"Don&#x27;t Track since {dont_track}: later opens and clicks are not recorded"

    record = client.get(reverse("crm:contact_detail", args=[sent_email.relation.contact.pk]))
    page = client.get(reverse("tracking:email_detail", args=[sent_email.email.pk]))

    assert text in record.content.decode()
    assert page.context["rows"][0]["dont_track"] == text.replace("&#x27;", "'")
    assert text in page.content.decode()


def test_the_email_page_does_not_name_the_flag_of_a_record_the_user_may_not_see(
    client_for, rep, other_rep, sent_email, dont_track
) -> None:
    """The sender sees their email, but not a recipient's record another rep owns."""
    contact = sent_email.relation.contact
    contact.owner = other_rep
    contact.save(update_fields=["owner"])

    page = client_for(rep).get(reverse("tracking:email_detail", args=[sent_email.email.pk]))

    assert page.status_code == 200
    assert page.context["rows"][0]["dont_track"] == ""
    assert "Don&#x27;t Track since" not in page.content.decode()
