"""The email log partitioned by month on PostgreSQL (crm.partitions); SQLite stays plain.

Not atomic: on a database with rows, the indexes the partitioned table matches are built
CONCURRENTLY first. The rows stay where they are (the default partition) until
`manage.py partition_events` moves them month by month (README, "Running at scale").
"""

from django.db import migrations, models

from crm.migration_operations import PartitionByMonth, UnlessPartitioned
from crm.partitions import Spec

OPERATIONS = [
    migrations.RemoveIndex(model_name="emailevent", name="email_event_occurred_at"),
    migrations.AddIndex(
        model_name="emailevent",
        index=models.Index(fields=["occurred_at", "id"], name="email_event_time_id"),
    ),
]

SPEC = Spec(
    table="crm_emailevent",
    indexes={
        "email_event_time_id": ("occurred_at", "id"),
        "email_event_relation": ("relation_id", "occurred_at"),
    },
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("crm", "0021_daily_send_count"),
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
