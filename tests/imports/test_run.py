"""An import job: rows checked by the record forms' rules, duplicates skipped or updated, the
privacy of people kept, bad rows reported without stopping the job, broken files failing it."""

from pathlib import Path

import pytest
from django.utils import timezone

from crm.models import Account, Contact, EmailSuppression, Lead
from imports.models import ImportJob
from privacy.forgotten import forgotten_remember

HEADER = "First Name,Last Name,E-mail,Account,Email Opt Out\n"


@pytest.mark.django_db
def test_it_creates_contacts_owned_by_the_chosen_owner_with_their_accounts(run_import, rep):
    make = Account.objects.create(name="Acme", owner=rep)
    job = run_import(
        HEADER + "Ada,Lovelace,ada@x.org,ACME,\nGrace,Hopper,grace@x.org,Navy,yes\n", owner=rep
    )
    assert (job.status, job.created_count, job.failed_count, job.progress) == ("done", 2, 0, 100)
    ada = Contact.objects.get(email="ada@x.org")
    grace = Contact.objects.get(email="grace@x.org")
    assert ada.account == make  # an existing account, found by its name whatever the case
    assert grace.account is not None and grace.account.owner == rep  # a missing one is created
    assert (ada.owner, grace.owner) == (rep, rep)
    assert (ada.has_opted_out_of_email, grace.has_opted_out_of_email) == (False, True)
    assert job.accounts_created == 1
    assert not Path(job.file_path or "x").exists() and job.file_path == ""


@pytest.mark.django_db
def test_a_bad_row_fails_alone_with_the_forms_words(run_import):
    long_name = "L" * 81
    job = run_import(
        HEADER
        + "Ada,Lovelace,not-an-address,,\n"
        + f"Bob,{long_name},bob@x.org,,\n"
        + ",,,,maybe\n"
        + "Cy,Ok,cy@x.org,,\n"
    )
    assert (job.created_count, job.failed_count, job.status) == (1, 3, "done")
    errors = {e.row_number: e for e in job.errors.all()}
    assert errors[2].message == "Email: Enter a valid email address."
    assert errors[2].values["E-mail"] == "not-an-address"
    assert (
        "Last name: Ensure this value has at most 80 characters (it has 81)." in errors[3].message
    )
    assert "Last name: This field is required." in errors[4].message
    assert "Email Opt Out: “maybe” is not yes or no." in errors[4].message


@pytest.mark.django_db
def test_duplicates_by_email_are_skipped(run_import, make_contact):
    existing = make_contact(email="Ada@X.org", title="Countess")
    job = run_import(
        HEADER + "Ada,Byron,ada@x.org,,\nNew,Person,new@x.org,,\nAgain,Dup,new@x.org,,\n"
    )
    assert (job.created_count, job.skipped_count, job.updated_count) == (1, 2, 0)
    existing.refresh_from_db()
    assert existing.last_name == "Lovelace"
    assert Contact.objects.filter(email="new@x.org").count() == 1


@pytest.mark.django_db
def test_duplicates_by_email_are_updated_and_empty_cells_keep_values(run_import, make_contact):
    existing = make_contact(email="ada@x.org", title="Countess", phone="123")
    job = run_import(
        "Last Name,Email,Phone,Title\nByron,ADA@x.org,,Analyst\n",
        duplicate_action=ImportJob.DuplicateAction.UPDATE,
    )
    assert (job.created_count, job.updated_count) == (0, 1)
    existing.refresh_from_db()
    assert (existing.last_name, existing.title, existing.phone) == ("Byron", "Analyst", "123")


@pytest.mark.django_db
def test_duplicates_by_name_and_account(run_import, make_contact, make_account):
    acme = make_account(name="Acme")
    in_acme = make_contact(first_name="Ada", last_name="Lovelace", account=acme, email="")
    job = run_import(
        HEADER
        + "ada,LOVELACE,ada@acme.org,acme,\n"  # same person, same account: updated
        + "Ada,Lovelace,ada@other.org,Other,\n",  # same name, another account: new
        duplicate_rule=ImportJob.DuplicateRule.NAME_ACCOUNT,
        duplicate_action=ImportJob.DuplicateAction.UPDATE,
    )
    assert (job.created_count, job.updated_count) == (1, 1)
    in_acme.refresh_from_db()
    assert in_acme.email == "ada@acme.org"
    assert Contact.objects.filter(last_name__iexact="lovelace").count() == 2


@pytest.mark.django_db
def test_accounts_are_matched_by_name_and_leads_by_name_and_company(run_import, rep):
    Account.objects.create(name="Acme", owner=rep, website="https://old.example")
    job = run_import(
        "Account Name,Website,Industry\nacme,acme.example,technology\nGlobex,,Banking\n",
        kind="account",
        duplicate_action=ImportJob.DuplicateAction.UPDATE,
    )
    assert (job.created_count, job.updated_count, job.failed_count) == (1, 1, 0)
    acme = Account.objects.get(name__iexact="acme")
    assert (acme.website, acme.industry) == ("https://acme.example", "Technology")
    Lead.objects.create(last_name="Doe", company="Acme", owner=rep)
    leads = run_import(
        "Last Name,Company,Lead Status\nDoe,acme,Working - Contacted\nDoe,Globex,open\n",
        kind="lead",
        duplicate_rule=ImportJob.DuplicateRule.NAME_ACCOUNT,
    )
    assert (leads.created_count, leads.skipped_count) == (1, 1)
    assert Lead.objects.get(company="Globex").status == Lead.Status.OPEN


@pytest.mark.django_db
def test_a_forgotten_address_is_not_imported_and_not_kept_in_the_report(run_import):
    forgotten_remember(["gone@x.org"])
    job = run_import(HEADER + "Gone,Person,GONE@x.org,,\n")
    assert (job.created_count, job.failed_count) == (0, 1)
    error = job.errors.get()
    assert error.message == "This person asked to be forgotten."
    assert error.values == {}
    assert not Contact.objects.filter(last_name="Person").exists()


@pytest.mark.django_db
def test_an_import_never_opts_a_person_back_in(run_import, make_contact):
    opted = make_contact(email="ada@x.org", has_opted_out_of_email=True)
    job = run_import(
        HEADER + "Ada,Lovelace,ada@x.org,,no\n",
        duplicate_action=ImportJob.DuplicateAction.UPDATE,
    )
    assert job.updated_count == 1
    opted.refresh_from_db()
    assert opted.has_opted_out_of_email is True


@pytest.mark.django_db
def test_a_new_record_of_an_opted_out_or_suppressed_address_stays_so(run_import, make_contact):
    make_contact(email="ada@x.org", has_opted_out_of_email=True)
    EmailSuppression.objects.create(
        address="bounced@x.org", reason=EmailSuppression.Reason.HARD_BOUNCE, detail="550 no user"
    )
    run_import(
        "Last Name,Email\nTwin,ada@x.org\nBounce,Bounced@x.org\n",
        kind="lead",
        duplicate_rule=ImportJob.DuplicateRule.NONE,
    )
    twin, bounce = Lead.objects.get(last_name="Twin"), Lead.objects.get(last_name="Bounce")
    assert twin.has_opted_out_of_email is True
    assert bounce.email_bounced_at is not None and bounce.email_bounced_reason == "550 no user"
    assert EmailSuppression.objects.filter(address="bounced@x.org").exists()


@pytest.mark.django_db
def test_a_person_account_takes_one_contact_only(run_import, make_account):
    make_account(name="Solo", is_person_account=True)
    job = run_import(HEADER + "A,One,a@x.org,Solo,\nB,Two,b@x.org,Solo,\n")
    assert (job.created_count, job.failed_count) == (1, 1)
    assert job.errors.get().message == (
        "Account name: A person account has exactly one contact: the person it is."
    )


@pytest.mark.django_db
def test_a_job_on_a_broken_file_fails_with_the_reason_and_deletes_it(
    upload, django_capture_on_commit_callbacks
):
    from imports.run import import_start

    job = upload(HEADER + "Ada,Lovelace,ada@x.org,,\n")
    Path(job.file_path).write_bytes(b"Other,Columns\n1,2\n")
    with django_capture_on_commit_callbacks(execute=True):
        import_start(job=job)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == "The file changed since it was uploaded: upload it again."
    assert job.finished_at is not None and job.file_path == ""
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_a_job_runs_once_however_often_it_is_queued(upload):
    from imports.run import import_job_run

    job = upload(HEADER + "Ada,Lovelace,ada@x.org,,\n", status=ImportJob.Status.QUEUED)
    import_job_run(job_id=job.pk)
    import_job_run(job_id=job.pk)
    assert Contact.objects.count() == 1


@pytest.mark.django_db
def test_rows_across_chunks_are_counted_and_deduplicated(run_import, monkeypatch):
    monkeypatch.setattr("imports.run.CHUNK_SIZE", 2)
    rows = "".join(f"P,{n},p{n % 3}@x.org,,\n" for n in range(7))
    job = run_import(HEADER + rows)
    assert (job.rows_done, job.created_count, job.skipped_count) == (7, 3, 4)
    assert job.finished_at is not None and job.finished_at <= timezone.now()
