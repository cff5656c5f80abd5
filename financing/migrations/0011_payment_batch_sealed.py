# The payment file names every creditor's account: stored sealed, never as text.
# No batch was written before this migration (the table is new in 0010), so nothing to carry.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("financing", "0010_payments_statements"),
    ]

    operations = [
        migrations.RemoveField(model_name="paymentbatch", name="xml"),
        migrations.AddField(
            model_name="paymentbatch",
            name="xml_sealed",
            field=models.BinaryField(default=b"", editable=False),
            preserve_default=False,
        ),
    ]
