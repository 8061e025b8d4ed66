"""POST /api/v1/leads/{id}/convert/: the Convert page's workflow (crm.conversion)."""

from crm.models import Contact, Lead, Task


def test_converting_a_lead_makes_its_records_and_moves_its_tasks(rep, make_lead, api_for):
    lead = make_lead()
    task = Task.objects.create(subject="Call", who_lead=lead, owner=rep)
    response = api_for(rep).post(
        f"/api/v1/leads/{lead.pk}/convert/",
        {"opportunity_name": "  Navy - Pilot "},
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    lead.refresh_from_db()
    assert lead.is_converted
    assert body["contact"] == lead.converted_contact_id
    assert body["account"] == lead.converted_account_id
    assert body["opportunity"] == lead.converted_opportunity_id
    assert lead.converted_opportunity.name == "Navy - Pilot"
    assert body["tasks_moved"] == 1
    task.refresh_from_db()
    assert task.who_contact_id == body["contact"]


def test_converting_into_an_existing_account_without_an_opportunity(
    rep, make_lead, make_account, api_for
):
    lead, account = make_lead(), make_account()
    response = api_for(rep).post(
        f"/api/v1/leads/{lead.pk}/convert/",
        {"account": account.pk},
        content_type="application/json",
    )
    assert response.status_code == 201
    assert response.json()["opportunity"] is None
    assert Contact.objects.get(pk=response.json()["contact"]).account == account


def test_a_converted_lead_is_not_converted_or_edited_again(rep, make_lead, api_for):
    lead = make_lead()
    client = api_for(rep)
    assert client.post(f"/api/v1/leads/{lead.pk}/convert/").status_code == 201
    again = client.post(f"/api/v1/leads/{lead.pk}/convert/")
    assert again.status_code == 409
    assert "already converted" in again.json()["detail"]
    edit = client.patch(
        f"/api/v1/leads/{lead.pk}/", {"title": "CEO"}, content_type="application/json"
    )
    assert edit.status_code == 409
    assert Contact.objects.count() == 1


def test_converting_another_reps_lead_or_into_their_account_is_refused(
    rep, other_rep, make_lead, make_account, api_for
):
    theirs = make_lead(owner=other_rep)
    assert api_for(rep).post(f"/api/v1/leads/{theirs.pk}/convert/").status_code == 404
    mine, their_account = make_lead(), make_account(owner=other_rep)
    response = api_for(rep).post(
        f"/api/v1/leads/{mine.pk}/convert/",
        {"account": their_account.pk},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "account" in response.json()["errors"]
    assert not Lead.objects.get(pk=mine.pk).is_converted


def test_converting_needs_the_convert_pages_permissions(outsider, make_lead, api_for):
    lead = make_lead()
    assert api_for(outsider).post(f"/api/v1/leads/{lead.pk}/convert/").status_code == 403
