"""Tracking events partitioned by month on PostgreSQL (crm.partitions); SQLite stays plain.

An event is unique on (event_id, occurred_at): a partitioned table's unique constraints hold its
partition key. Not atomic: on a database with rows, the indexes the partitioned table matches
are built CONCURRENTLY first; the rows stay in the default partition until
`manage.py partition_events` moves them month by month (README, "Running at scale").
"""

from django.db import migrations, models

from crm.migration_operations import PartitionByMonth, UnlessPartitioned
from crm.partitions import Spec

OPERATIONS = [
    migrations.RemoveIndex(model_name="trackingevent", name="event_occurred_at"),
    migrations.AlterField(model_name="trackingevent", name="event_id", field=models.UUIDField()),
    migrations.AddIndex(
        model_name="trackingevent",
        index=models.Index(fields=["occurred_at", "id"], name="event_time_id"),
    ),
    migrations.AddConstraint(
        model_name="trackingevent",
        constraint=models.UniqueConstraint(
            fields=("event_id", "occurred_at"), name="event_id_time"
        ),
    ),
]

SPEC = Spec(
    table="tracking_trackingevent",
    unique={"event_id_time": ("event_id", "occurred_at")},
    indexes={
        "event_relation_kind_label": ("relation_id", "kind", "label"),
        "event_link_label": ("link_id", "label"),
        "event_time_id": ("occurred_at", "id"),
    },
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("crm", "0022_email_log_partitioned"),
        ("tracking", "0005_internal_engagement"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=OPERATIONS,
            database_operations=[
                *(UnlessPartitioned(operation) for operation in OPERATIONS),
                PartitionByMonth(SPEC),
            ],
        ),
    ]
