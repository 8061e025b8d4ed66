"""The import pages through HTTP: upload, map (remembered), preview, start, progress, the
failed-rows CSV, delete; managers and admins only."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Contact
from imports.models import ImportJob, ImportMapping

CSV = (
    "First Name,Surname,E-mail Address,Notes\n"
    "Ada,Lovelace,ada@x.org,first\n"
    "Bad,Row,not-an-address,=cmd()\n"
)


def _upload(client, content: str = CSV, kind: str = "contact", name: str = "people.csv"):
    file = SimpleUploadedFile(name, content.encode())
    return client.post(reverse("imports:new"), {"kind": kind, "file": file})


def _map_post(job: ImportJob, **choices: str) -> dict[str, str]:
    data = {
        "duplicate_rule": job.duplicate_rule,
        "duplicate_action": job.duplicate_action,
        "owner": str(job.owner_id),
    }
    for position, column in enumerate(job.header):
        data[f"column_{position}"] = choices.get(column, job.mapping.get(column, ""))
    return data


@pytest.mark.django_db
def test_a_rep_cannot_open_any_import_page(client_for, rep, manager):
    job = ImportJob.objects.create(
        kind="contact", original_name="x.csv", format="csv", owner=manager, requested_by=manager
    )
    client = client_for(rep)
    assert client.get(reverse("imports:list")).status_code == 403
    assert _upload(client).status_code == 403
    for name in ("detail", "map", "preview", "progress", "errors_csv", "delete"):
        assert client.get(reverse(f"imports:{name}", args=[job.pk])).status_code == 403, name
    assert client.post(reverse("imports:start", args=[job.pk])).status_code == 403


@pytest.mark.django_db
def test_the_list_pages_offer_import_to_managers_only(client_for, rep, manager):
    assert b"/imports/new/?kind=contact" in client_for(manager).get("/contacts/").content
    assert b"/imports/new/" not in client_for(rep).get("/contacts/").content
    assert b"/imports/new/" not in client_for(manager).get("/opportunities/").content


@pytest.mark.django_db
def test_a_manager_imports_a_file_from_upload_to_report(
    client_for, manager, django_capture_on_commit_callbacks
):
    client = client_for(manager)
    response = _upload(client)
    job = ImportJob.objects.get()
    assert response.url == reverse("imports:map", args=[job.pk])
    # The columns' names are guessed: "Surname", "E-mail Address".
    assert job.mapping == {
        "First Name": "first_name",
        "Surname": "last_name",
        "E-mail Address": "email",
    }
    page = client.get(response.url)
    assert page.status_code == 200 and b"Don&#x27;t import" in page.content

    response = client.post(reverse("imports:map", args=[job.pk]), _map_post(job))
    assert response.url == reverse("imports:preview", args=[job.pk])
    preview = client.get(response.url).content.decode()
    assert "Create" in preview and "Email: Enter a valid email address." in preview
    assert not Contact.objects.exists()  # a preview writes nothing

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("imports:start", args=[job.pk]))
    assert response.url == job.get_absolute_url()
    job.refresh_from_db()
    assert (job.status, job.created_count, job.failed_count) == ("done", 1, 1)
    detail = client.get(job.get_absolute_url()).content.decode()
    assert "Download all 1 as CSV" in detail and "<script>" not in detail
    progress = client.get(reverse("imports:progress", args=[job.pk])).json()
    assert progress["finished"] and progress["created"] == 1

    report = client.get(reverse("imports:errors_csv", args=[job.pk]))
    assert report["Content-Type"].startswith("text/csv")
    text = b"".join(report.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Row", "Why", "First Name", "Surname", "E-mail Address", "Notes"]
    # A cell a spreadsheet would run as a formula is written as text.
    assert rows[1] == [
        "3",
        "Email: Enter a valid email address.",
        "Bad",
        "Row",
        "not-an-address",
        "'=cmd()",
    ]


@pytest.mark.django_db
def test_the_last_mapping_is_remembered_for_the_next_file(client_for, manager):
    client = client_for(manager)
    _upload(client)
    job = ImportJob.objects.get()
    client.post(
        reverse("imports:map", args=[job.pk]),
        _map_post(job, **{"Notes": "title", "First Name": ""}),
    )
    assert ImportMapping.objects.get(user=manager, kind="contact").mapping["Notes"] == "title"
    _upload(client)
    again = ImportJob.objects.exclude(pk=job.pk).get()
    assert again.mapping["Notes"] == "title"
    assert again.mapping["First Name"] == ""  # "don't import" is remembered too


@pytest.mark.django_db
def test_the_mapping_asks_for_required_fields_and_one_column_per_field(client_for, manager):
    client = client_for(manager)
    _upload(client)
    job = ImportJob.objects.get()
    response = client.post(
        reverse("imports:map", args=[job.pk]),
        _map_post(job, **{"Surname": "", "Notes": "email"}),
    )
    page = response.content.decode()
    assert "Choose the column that holds the last name." in page
    assert "Email is chosen for more than one column: “E-mail Address” and “Notes”." in page
    job.refresh_from_db()
    assert job.status == "draft" and job.mapping["Surname"] == "last_name"


@pytest.mark.django_db
def test_an_unreadable_or_too_large_upload_is_refused_in_words(client_for, manager, settings):
    client = client_for(manager)
    response = _upload(client, content="", name="empty.csv")
    assert "The submitted file is empty." in response.content.decode()
    response = _upload(client, content=" \n\n", name="blank.csv")
    assert "The file is empty." in response.content.decode()
    settings.IMPORT_MAX_MB = 0
    response = _upload(client)
    assert "the limit is 0 MB" in response.content.decode()
    assert not ImportJob.objects.exists()
    assert not list(settings.IMPORT_DIR.glob("*"))  # nothing kept of a refused file


@pytest.mark.django_db
def test_a_manager_sees_only_their_imports_and_an_admin_all(client_for, manager, admin_user):
    for user in (manager, admin_user):
        _upload(client_for(user))
    mine = ImportJob.objects.get(requested_by=admin_user)
    client = client_for(manager)
    assert client.get(mine.get_absolute_url()).status_code == 404
    assert client.get(reverse("imports:list")).content.decode().count("people.csv") == 1
    admin = client_for(admin_user)
    with CaptureQueriesContext(connection) as two:
        page = admin.get(reverse("imports:list"))
    assert page.content.decode().count("people.csv") == 2
    for _ in range(3):
        _upload(client)
    with CaptureQueriesContext(connection) as five:
        page = admin.get(reverse("imports:list"))
    assert page.content.decode().count("people.csv") == 5
    assert len(five) == len(two)  # no query per row


@pytest.mark.django_db
def test_deleting_an_import_deletes_its_file_and_failed_rows(client_for, manager, settings):
    from pathlib import Path

    client = client_for(manager)
    _upload(client)
    job = ImportJob.objects.get()
    assert Path(job.file_path).exists()
    assert client.get(reverse("imports:delete", args=[job.pk])).status_code == 200
    response = client.post(reverse("imports:delete", args=[job.pk]))
    assert response.url == reverse("imports:list")
    assert not ImportJob.objects.exists() and not Path(job.file_path).exists()
