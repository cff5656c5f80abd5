"""Recomputed the fingerprints whose supplier tax id was a bare national number.

Superseded by 0004_invoice_identity, which recomputes every fingerprint under the invoice
identity of issue 8 (its formula no longer takes the parts this one passed), so this step is a
no-op now: a database still before it gets every fingerprint right from 0003.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("financing", "0001_financing"),
        ("merchants", "0004_merchant_tax_id_normalised"),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop, elidable=True),
    ]
