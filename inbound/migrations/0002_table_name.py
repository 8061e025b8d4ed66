# The moved table takes this app's name.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('inbound', '0001_initial'),
        ('tracking', '0004_inboundmessage_moved_to_inbound'),
    ]

    operations = [
        migrations.AlterModelTable(name='inboundmessage', table=None),
    ]
