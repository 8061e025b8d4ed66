"""Apps above crm that keep a person in free text (a webhook's payload, an import's failed row)
are scrubbed too, their JSON kept valid."""

from dataprotection.forget import person_forget
from dataprotection.people import person_from
from imports.models import ImportJob, ImportRowError
from webhooks.models import Delivery, Endpoint


def test_webhook_payloads_and_import_errors_lose_the_person(rep, make_contact) -> None:
    ada = make_contact()
    endpoint = Endpoint.objects.create(name="CRM sync", url="https://hooks.example.net/in")
    delivery = Delivery.objects.create(
        endpoint=endpoint,
        event_key="email_event:1",
        event_type="email.opened",
        payload={"to": "ada@example.com", "name": "Ada Lovelace", "opens": 2},
        address="ada@example.com",
    )
    job = ImportJob.objects.create(
        kind="contact", original_name="people.csv", format="csv", owner=rep, requested_by=rep
    )
    error = ImportRowError.objects.create(
        job=job,
        row_number=3,
        message="Row 3: ada@example.com is already a contact",
        values={"Email": "ada@example.com", "Last name": "Lovelace"},
    )

    person_forget(person=person_from("contact", ada.pk))

    # A delivery naming them is deleted, so a pending one never goes out.
    assert not Delivery.objects.filter(pk=delivery.pk).exists()
    error.refresh_from_db()
    assert error.message == "Row 3: [forgotten] is already a contact"
    assert error.values == {"Email": "[forgotten]", "Last name": "[forgotten]"}
