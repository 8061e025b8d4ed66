# InboundMessage now belongs to the inbound app (inbound/0001 takes over its state; the table
# is left in place and renamed there).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('inbound', '0001_initial'),
        ('tracking', '0003_event_indexes'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='InboundMessage')],
            database_operations=[],
        ),
    ]
