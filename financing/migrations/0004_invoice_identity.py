"""Recompute every invoice fingerprint as the invoice's identity: supplier and normalised number.

Issue 8: invoice numbers are unique per supplier, so amount, currency and issue date left the
fingerprint (financing.fingerprint, scheme v2), and the supplier is the merchant's identity,
not the sender's spelling. The receivables and the assignments get the new fingerprints, by the
projector's own rule, so ``rebuild_projections`` finds nothing to change afterwards.

Should two live assignments now share a fingerprint, one invoice is financed twice already
(under two amounts or dates): the migration stops and names them, so that an officer looks,
instead of letting the unique index fail on whichever row it meets first.
"""

from collections import defaultdict

from django.db import migrations

from financing.fingerprint import invoice_fingerprint, supplier_identity
from merchants.identifiers import tax_id_is_national, tax_id_normalise

LIVE = ("held", "assigned")


def recompute_fingerprints(apps, schema_editor):
    Invoice = apps.get_model("ledger", "Invoice")
    Merchant = apps.get_model("merchants", "Merchant")
    Receivable = apps.get_model("financing", "Receivable")
    Assignment = apps.get_model("financing", "Assignment")
    suppliers = {
        pk: supplier_identity(tax_id_normalised=normalised, public_id=public_id)
        for pk, normalised, public_id in Merchant.objects.values_list(
            "pk", "tax_id_normalised", "public_id"
        )
    }
    fingerprints = {}
    for merchant_id, ref, named in Invoice.objects.values_list(
        "merchant_id", "ref", "supplier_tax_id"
    ).iterator():
        # As financing.projectors._supplier: a qualified supplier tax id named in the invoice,
        # else the merchant's identity.
        supplier = (
            tax_id_normalise(named)
            if named and not tax_id_is_national(named)
            else suppliers[merchant_id]
        )
        fingerprints[merchant_id, ref] = invoice_fingerprint(supplier=supplier, invoice_number=ref)
    live = defaultdict(list)
    for advance_ref, merchant_id, ref in Assignment.objects.filter(status__in=LIVE).values_list(
        "advance__ref", "merchant_id", "invoice_ref"
    ):
        live[fingerprints[merchant_id, ref]].append(f"{ref} in {advance_ref}")
    twice = [held for held in live.values() if len(held) > 1]
    if twice:
        raise RuntimeError(
            "Invoices financed twice under the new invoice identity; an officer must resolve"
            " them before this migration runs: " + "; ".join(" and ".join(h) for h in twice)
        )
    for (merchant_id, ref), fingerprint in fingerprints.items():
        Receivable.objects.filter(merchant_id=merchant_id, ref=ref).update(fingerprint=fingerprint)
        Assignment.objects.filter(merchant_id=merchant_id, invoice_ref=ref).update(
            fingerprint=fingerprint
        )


class Migration(migrations.Migration):
    dependencies = [
        ("financing", "0003_four_eyes_debtor_limits"),
        ("ledger", "0005_sqlite_append_only_again"),
        ("merchants", "0004_merchant_tax_id_normalised"),
    ]

    operations = [
        migrations.RunPython(recompute_fingerprints, migrations.RunPython.noop, elidable=True),
    ]
