# InboundMessage moves from tracking to this app: its table stays as it is here (state only),
# the admin's content type and permissions move with it, and 0002 renames the table.

import django.db.models.deletion
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="tracking", model="inboundmessage").update(
        app_label="inbound"
    )


def move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="inbound", model="inboundmessage").update(
        app_label="tracking"
    )


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('crm', '0011_counter_tables_fillfactor'),
        ('tracking', '0003_event_indexes'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='InboundMessage',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('fingerprint', models.CharField(help_text='SHA-256 of the message.', max_length=64, unique=True)),
                        ('source', models.CharField(choices=[('imap', 'IMAP mailbox'), ('pipe', 'MTA pipe'), ('webhook', 'ESP webhook')], max_length=10)),
                        ('kind', models.CharField(max_length=12)),
                        ('status', models.CharField(choices=[('processed', 'Processed'), ('unmatched', 'Unmatched')], max_length=10)),
                        ('note', models.CharField(blank=True, max_length=255)),
                        ('message_id', models.CharField(blank=True, max_length=255)),
                        ('from_address', models.CharField(blank=True, max_length=255)),
                        ('subject', models.CharField(blank=True, max_length=998)),
                        ('raw', models.BinaryField(help_text='The message as received (cut at 2 MB).')),
                        ('received_at', models.DateTimeField(auto_now_add=True)),
                        ('created_email', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='crm.emailmessage')),
                        ('relation', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='inbound_messages', to='crm.emailmessagerelation')),
                    ],
                    options={
                        'ordering': ['-received_at', '-pk'],
                        'indexes': [models.Index(fields=['status', '-received_at'], name='inbound_status_received')],
                        'db_table': 'tracking_inboundmessage',
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
