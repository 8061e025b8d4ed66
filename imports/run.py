"""Running an import: plan each chunk of rows (validate, refuse forgotten people, find
duplicates in one query), then write it (bulk create, bulk update, failed rows in bulk) and
count it with one UPDATE of the job per chunk.

The preview plans the first rows the same way and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, F, Field, Model, OuterRef, Q
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.text import capfirst

from crm import jobs
from crm.models import Account, Contact, EmailSuppression, Lead
from imports.mapping import ACCOUNT_NAME, KIND_MODELS, OPT_OUT, RowCleaner
from imports.models import ImportJob, ImportRowError
from imports.reading import Row, UnreadableFile, open_rows
from privacy.forgotten import forgotten_among

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1000
PREVIEW_ROWS = 20
RUN_IMPORT = "imports.tasks.run_import"
CREATE, UPDATE, SKIP, FAIL = "create", "update", "skip", "fail"
FORGOTTEN = "This person asked to be forgotten."
CONVERTED = "This lead is converted and kept as it was; update its contact instead."
PERSON_ACCOUNT = "Account name: A person account has exactly one contact: the person it is."

Key = tuple[str, ...]


@dataclass
class RowPlan:
    """What happens to one row: create, update, skip or fail, and why."""

    number: int
    cells: list[str]
    values: dict[str, Any]
    errors: list[str]
    action: str = CREATE
    record: Any = None
    note: str = ""
    new_account: str = ""  # a Contact's account that does not exist yet, by name

    def fail(self, message: str) -> None:
        self.errors.append(message)
        self.action = FAIL


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    accounts: int = 0
    rows: int = field(default=0)


class Importer:
    """One job's rules, built once: the row cleaner, the model, the duplicate rule."""

    def __init__(self, job: ImportJob):
        self.job = job
        self.kind = job.kind
        self.model = KIND_MODELS[job.kind]
        self.cleaner = RowCleaner(job.kind, job.requested_by, job.mapping, job.header)
        self.people = job.kind in (ImportJob.Kind.CONTACT, ImportJob.Kind.LEAD)

    # Planning

    def plan(self, rows: list[Row]) -> list[RowPlan]:
        plans = []
        for number, cells in rows:
            cleaned = self.cleaner.clean(cells)
            plan = RowPlan(number, cells, cleaned.values, cleaned.errors)
            plan.action = FAIL if plan.errors else CREATE
            plans.append(plan)
        valid = [plan for plan in plans if plan.action != FAIL]
        if self.people:
            forgotten = forgotten_among(plan.values.get("email", "") for plan in valid)
            for plan in valid:
                if plan.values.get("email") in forgotten:
                    # Nothing of a forgotten person is kept, not even in the failed-rows report.
                    plan.fail(FORGOTTEN)
                    plan.cells = []
            valid = [plan for plan in valid if plan.action != FAIL]
        accounts = self._accounts(valid) if self.kind == ImportJob.Kind.CONTACT else {}
        for plan in valid:
            plan.record = self.model(owner=self.job.owner)
        self._match(valid, accounts)
        for plan in valid:
            if plan.action in (CREATE, UPDATE):
                self._fill(plan, accounts)
        if self.people:
            self._keep_privacy([plan for plan in valid if plan.action in (CREATE, UPDATE)])
        return plans

    def _accounts(self, plans: list[RowPlan]) -> dict[str, Any]:
        """The Accounts the rows name, by upper-cased name (the oldest of a name), one query."""
        names = {plan.values[ACCOUNT_NAME].upper() for plan in plans if ACCOUNT_NAME in plan.values}
        if not names:
            return {}
        found: dict[str, Any] = {}
        rows = (
            Account.objects.annotate(
                upper=Upper("name"),
                has_contacts=Exists(Contact.objects.filter(account=OuterRef("pk"))),
            )
            .filter(upper__in=names)
            .order_by("-pk")
        )
        for account in rows:
            found[account.upper] = account
        return found

    def _key(self, plan: RowPlan) -> Key | None:
        rule, values = self.job.duplicate_rule, plan.values
        if rule == ImportJob.DuplicateRule.NONE:
            return None
        if rule == ImportJob.DuplicateRule.EMAIL:
            return (values["email"].upper(),) if values.get("email") else None
        if self.kind == ImportJob.Kind.ACCOUNT:
            return (values.get("name", "").upper(),)
        other = "company" if self.kind == ImportJob.Kind.LEAD else ACCOUNT_NAME
        names = (values.get("first_name", ""), values.get("last_name", ""), values.get(other, ""))
        return tuple(name.upper() for name in names)

    def _existing(self, keys: set[Key], accounts: dict[str, Any]) -> dict[Key, Any]:
        """The records these keys name already, the oldest first, in one query."""
        if not keys:
            return {}
        rule, model = self.job.duplicate_rule, self.model
        records: Any
        if rule == ImportJob.DuplicateRule.EMAIL:
            records = model.objects.annotate(k0=Upper("email")).filter(
                k0__in=[key[0] for key in keys]
            )
        elif self.kind == ImportJob.Kind.ACCOUNT:
            records = model.objects.annotate(k0=Upper("name")).filter(
                k0__in=[key[0] for key in keys]
            )
        else:
            records = model.objects.annotate(k0=Upper("first_name"), k1=Upper("last_name"))
            records = records.filter(k1__in={key[1] for key in keys})
            if self.kind == ImportJob.Kind.LEAD:
                records = records.annotate(k2=Upper("company"))
            else:
                ids = [account.pk for account in accounts.values()]
                records = records.filter(Q(account_id__in=ids) | Q(account__isnull=True))
                records = records.annotate(k2=Upper("account__name"))
        if self.people:
            records = records.filter(forgotten_at__isnull=True)
        width = len(next(iter(keys)))
        found: dict[Key, Any] = {}
        for record in records.order_by("-pk"):
            found[tuple(getattr(record, f"k{i}") or "" for i in range(width))] = record
        return found

    def _match(self, plans: list[RowPlan], accounts: dict[str, Any]) -> None:
        by_plan = [(plan, self._key(plan)) for plan in plans]
        existing = self._existing({key for _plan, key in by_plan if key}, accounts)
        seen: dict[Key, RowPlan] = {}
        update = self.job.duplicate_action == ImportJob.DuplicateAction.UPDATE
        for plan, key in by_plan:
            if key is None:
                continue
            earlier = seen.get(key)
            if earlier is not None:
                record, what = earlier.record, f"the record of row {earlier.number}"
            elif key in existing:
                record = existing[key]
                what = f"{capfirst(self.model._meta.verbose_name)} #{record.pk}"
            else:
                seen[key] = plan
                continue
            if not update:
                plan.action, plan.note = SKIP, f"Same as {what}: skipped."
            elif isinstance(record, Lead) and record.is_converted:
                plan.fail(CONVERTED)
            else:
                plan.action, plan.note, plan.record = UPDATE, f"Updates {what}.", record
                seen.setdefault(key, plan)

    def _fill(self, plan: RowPlan, accounts: dict[str, Any]) -> None:
        record = plan.record
        values = dict(plan.values)
        if ACCOUNT_NAME in values:
            name = values.pop(ACCOUNT_NAME)
            account = accounts.get(name.upper())
            if account is None:
                plan.new_account = name
                if plan.action == CREATE:
                    plan.note = f"Creates the account “{name}”."
            elif account.is_person_account and record.account_id != account.pk:
                if account.has_contacts or getattr(account, "taken", False):
                    plan.fail(PERSON_ACCOUNT)
                    return
                account.taken = True
            if account is not None:
                record.account = account
        if "email" in values and record.pk and values["email"].lower() != record.email.lower():
            # A new address clears the old one's bounce alert, as the record's form does.
            record.email_bounced_at, record.email_bounced_reason = None, ""
        for name, value in values.items():
            if name == OPT_OUT and not value:
                continue  # an import may opt a person out, never back in
            setattr(record, name, value)

    def _keep_privacy(self, plans: list[RowPlan]) -> None:
        """A new address that another record has opted out stays opted out; a suppressed address
        keeps its bounce alert. Two or three queries per chunk."""
        emails = {plan.record.email.upper() for plan in plans if plan.record.email}
        if not emails:
            return
        opted_out: set[str] = set()
        for model in (Contact, Lead):
            opted_out |= set(
                model.objects.annotate(upper=Upper("email"))
                .filter(upper__in=emails, has_opted_out_of_email=True)
                .values_list("upper", flat=True)
            )
        suppressed = {
            row.address.upper(): row
            for row in EmailSuppression.objects.filter(address__in={e.lower() for e in emails})
        }
        for plan in plans:
            record, email = plan.record, plan.record.email.upper()
            if email in opted_out:
                record.has_opted_out_of_email = True
            if email in suppressed and record.email_bounced_at is None:
                record.email_bounced_at = suppressed[email].created_at
                record.email_bounced_reason = suppressed[email].detail or str(
                    suppressed[email].get_reason_display()
                )

    # Writing

    def write(self, plans: list[RowPlan]) -> Counts:
        counts = Counts(rows=len(plans))
        now = timezone.now()
        with transaction.atomic():
            writing = [plan for plan in plans if plan.action in (CREATE, UPDATE)]
            # Existing records only: a row may update one an earlier row of the chunk creates.
            changed = {
                plan.record.pk: plan.record
                for plan in writing
                if plan.action == UPDATE and plan.record.pk
            }
            counts.accounts = self._create_accounts(writing)
            new = [plan.record for plan in writing if plan.action == CREATE]
            self.model.objects.bulk_create(new, batch_size=CHUNK_SIZE)
            fields = {name for plan in writing for name in plan.values} - {ACCOUNT_NAME}
            if ACCOUNT_NAME in {name for plan in writing for name in plan.values}:
                fields.add("account")
            if "email" in fields:
                fields |= {"email_bounced_at", "email_bounced_reason"}
            if self.people:
                fields |= {OPT_OUT, "email_bounced_at", "email_bounced_reason"}
            for record in changed.values():
                record.updated_at = now
            if changed:
                records_update(self.model, list(changed.values()), sorted(fields | {"updated_at"}))
            ImportRowError.objects.bulk_create(
                [
                    ImportRowError(
                        job=self.job,
                        row_number=plan.number,
                        message=" ".join(plan.errors),
                        values=dict(zip(self.job.header, plan.cells, strict=False)),
                    )
                    for plan in plans
                    if plan.action == FAIL
                ]
            )
        for plan in plans:
            if plan.action == CREATE:
                counts.created += 1
            elif plan.action == UPDATE:
                counts.updated += 1
            elif plan.action == SKIP:
                counts.skipped += 1
            else:
                counts.failed += 1
        return counts

    def _create_accounts(self, plans: list[RowPlan]) -> int:
        """The accounts the contacts name that do not exist yet, each name once, owned by the
        import's owner."""
        wanted = [plan for plan in plans if plan.new_account]
        if not wanted:
            return 0
        by_name: dict[str, Account] = {}
        for plan in wanted:
            by_name.setdefault(
                plan.new_account.upper(), Account(name=plan.new_account, owner=self.job.owner)
            )
        Account.objects.bulk_create(list(by_name.values()))
        for plan in wanted:
            plan.record.account = by_name[plan.new_account.upper()]
        return len(by_name)


def records_update(model: type[Model], records: list[Any], names: list[str]) -> None:
    """Write these fields of these records with one UPDATE ... FROM (VALUES ...) per batch.

    Django's bulk_update writes a CASE with one WHEN per record for every field: building it
    cost more than the rest of an import chunk, and the database tests every WHEN per row.
    """
    fields = [f for f in map(model._meta.get_field, names) if isinstance(f, Field)]
    assert len(fields) == len(names) and model._meta.pk is not None
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    # PostgreSQL types a VALUES column from its first values, often as text: cast it back.
    # SQLite keeps any value in any column, and its CAST would turn text into numbers.
    cast = connection.vendor == "postgresql"
    sets = ", ".join(
        f"{quote(f.column)} = "
        + (f"CAST(v.c{i} AS {f.db_type(connection)})" if cast else f"v.c{i}")
        for i, f in enumerate(fields)
    )
    columns = ", ".join(["pk", *(f"c{i}" for i in range(len(fields)))])
    match = f"{table}.{pk} = " + ("CAST(v.pk AS bigint)" if cast else "v.pk")
    row = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
    batch = max(1, min(500, (connection.features.max_query_params or 10_000) // (len(fields) + 1)))
    with connection.cursor() as cursor:
        for start in range(0, len(records), batch):
            part = records[start : start + batch]
            params: list[Any] = []
            for record in part:
                params.append(record.pk)
                params.extend(
                    f.get_db_prep_save(getattr(record, f.attname), connection) for f in fields
                )
            values = ", ".join([row] * len(part))
            # Only names, casts and placeholders are interpolated.
            sql = f"WITH v({columns}) AS (VALUES {values}) UPDATE {table} SET {sets} FROM v WHERE {match}"  # noqa: S608, E501
            cursor.execute(
                sql,
                params,
            )


@contextmanager
def job_rows(job: ImportJob) -> Iterator[Iterator[Row]]:
    with open_rows(
        Path(job.file_path), format=job.format, encoding=job.encoding, delimiter=job.delimiter
    ) as (header, rows):
        if header != job.header:
            raise UnreadableFile("The file changed since it was uploaded: upload it again.")
        yield rows


def import_preview(*, job: ImportJob) -> list[RowPlan]:
    """The first rows and what the import would do with each; writes nothing."""
    with job_rows(job) as rows:
        return Importer(job).plan(list(islice(rows, PREVIEW_ROWS)))


def import_start(*, job: ImportJob) -> bool:
    """Queue a job set up by its user; False if it was already started."""
    queued = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.DRAFT).update(
        status=ImportJob.Status.QUEUED
    )
    if queued:
        jobs.enqueue(RUN_IMPORT, job.pk)
    return bool(queued)


def import_job_run(*, job_id: int) -> None:
    """Import a queued job's file, chunk by chunk; a bad row fails alone, a broken file fails the
    job with the reason in words. The uploaded file is deleted when the job ends."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return
    job = ImportJob.objects.select_related("owner", "requested_by").get(pk=job_id)
    importer = Importer(job)
    done = 0
    error = ""
    try:
        with job_rows(job) as rows:
            while chunk := list(islice(rows, CHUNK_SIZE)):
                counts = importer.write(importer.plan(chunk))
                done += len(chunk)
                _count(job, counts, progress=min(99, done * 100 // max(job.rows_estimate, done)))
    except UnreadableFile as problem:
        error = str(problem)
    except Exception:
        logger.exception("Import #%s stopped", job_id)
        error = (
            f"The import stopped unexpectedly after {done} rows (those were imported). "
            "The failure is in the server's log; try the rest of the file again."
        )
    finally:
        Path(job.file_path).unlink(missing_ok=True)
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportJob.Status.FAILED if error else ImportJob.Status.DONE,
        error=error,
        progress=100,
        file_path="",
        finished_at=timezone.now(),
    )


def _count(job: ImportJob, counts: Counts, *, progress: int) -> None:
    ImportJob.objects.filter(pk=job.pk).update(
        rows_done=F("rows_done") + counts.rows,
        created_count=F("created_count") + counts.created,
        updated_count=F("updated_count") + counts.updated,
        skipped_count=F("skipped_count") + counts.skipped,
        failed_count=F("failed_count") + counts.failed,
        accounts_created=F("accounts_created") + counts.accounts,
        progress=progress,
    )
