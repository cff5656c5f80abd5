"""Business buyers without a tax id are identified by their folded name and country.

Fills ``Debtor.name_key`` and merges the rows one buyer got under spellings of its name
("ACME GmbH", "Acme G.m.b.H."): assignments move to the oldest row, the others go. Then one
row per (folded name, country) is a database rule.
"""

from django.db import migrations, models

from merchants.identifiers import party_name_normalise


def name_keys_fill(apps, schema_editor):
    Debtor = apps.get_model("merchants", "Debtor")
    Assignment = apps.get_model("financing", "Assignment")
    kept: dict[tuple[str, str], int] = {}
    for debtor in Debtor.objects.filter(kind="business").order_by("pk"):
        debtor.name_key = party_name_normalise(debtor.name)
        debtor.save(update_fields=["name_key"])
        if debtor.tax_id:
            continue
        identity = (debtor.name_key, debtor.country)
        if identity not in kept:
            kept[identity] = debtor.pk
            continue
        Assignment.objects.filter(debtor_id=debtor.pk).update(debtor_id=kept[identity])
        debtor.delete()


class Migration(migrations.Migration):

    dependencies = [
        ('merchants', '0004_merchant_tax_id_normalised'),
        # Assignments point at debtors: merged rows take theirs along.
        ('financing', '0002_fingerprint_national_tax_ids'),
    ]

    operations = [
        migrations.AddField(
            model_name='debtor',
            name='name_key',
            field=models.CharField(blank=True, help_text='The name folded (merchants.identifiers.party_name_normalise): with the country, what identifies a business buyer without a tax id.', max_length=200),
        ),
        migrations.RunPython(name_keys_fill, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='debtor',
            constraint=models.UniqueConstraint(condition=models.Q(('kind', 'business'), ('tax_id', '')), fields=('name_key', 'country'), name='debtor_business_name_unique'),
        ),
    ]
