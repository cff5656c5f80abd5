"""Recompute the fingerprints whose supplier tax id is a bare national number.

Such a tax id is now qualified with the supplier's country ("300000001" of a German merchant is
"DE300000001"), so its invoices get the fingerprint the same invoice gets under the qualified
spelling. Every other fingerprint is unchanged. Should two live assignments now share a
fingerprint, one invoice is financed twice already: the unique constraint refuses the migration
so that an officer looks.
"""

from django.db import migrations

from financing.fingerprint import invoice_fingerprint
from merchants.identifiers import tax_id_is_national


def recompute_fingerprints(apps, schema_editor):
    Invoice = apps.get_model("ledger", "Invoice")
    Merchant = apps.get_model("merchants", "Merchant")
    Receivable = apps.get_model("financing", "Receivable")
    Assignment = apps.get_model("financing", "Assignment")
    merchants = {
        pk: (tax_id, country)
        for pk, tax_id, country in Merchant.objects.values_list("pk", "tax_id", "country")
    }
    invoices = Invoice.objects.values_list(
        "merchant_id", "ref", "supplier_tax_id", "currency", "amount_minor", "issue_date"
    )
    for merchant_id, ref, named, currency, amount_minor, issue_date in invoices.iterator():
        tax_id, country = merchants[merchant_id]
        supplier = named or tax_id  # as the projector chooses
        if not tax_id_is_national(supplier):
            continue
        fingerprint = invoice_fingerprint(
            supplier_tax_id=supplier,
            supplier_country=country,
            invoice_number=ref,
            currency=currency,
            amount_minor=amount_minor,
            issue_date=issue_date,
        )
        Receivable.objects.filter(merchant_id=merchant_id, ref=ref).update(fingerprint=fingerprint)
        Assignment.objects.filter(merchant_id=merchant_id, invoice_ref=ref).update(
            fingerprint=fingerprint
        )


class Migration(migrations.Migration):
    dependencies = [
        ("financing", "0001_financing"),
        ("merchants", "0004_merchant_tax_id_normalised"),
    ]

    operations = [
        migrations.RunPython(recompute_fingerprints, migrations.RunPython.noop, elidable=True),
    ]
