"""Tokens by purpose: copies already sent keep their one token for everything (False); copies
sent from now on get a token per purpose (True), and so do copies not sent yet (pending or
deferred: they will be rendered by the new code). Adding the column with a constant default is
instant on PostgreSQL; the second step only changes the default Django writes for new rows."""

from django.db import migrations, models


def unsent_copies_get_purposes(apps, schema_editor):
    relations = apps.get_model("crm", "EmailMessageRelation")
    relations.objects.filter(sent_at__isnull=True).update(tokens_by_purpose=True)


class Migration(migrations.Migration):
    dependencies = [("crm", "0011_counter_tables_fillfactor")]

    operations = [
        migrations.AddField(
            model_name="emailmessagerelation",
            name="tokens_by_purpose",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.AlterField(
            model_name="emailmessagerelation",
            name="tokens_by_purpose",
            field=models.BooleanField(default=True, editable=False),
        ),
        migrations.RunPython(unsent_copies_get_purposes, migrations.RunPython.noop),
    ]
