"""A merchant's invoices by due date, so the portal finds those still to fall due without
reading its paid history (financing.eligibility.open_verdicts).

Built CONCURRENTLY on PostgreSQL (ledger.concurrent_index): appends go on while a large
ledger_invoice is indexed.
"""

from django.db import migrations, models

from ledger.concurrent_index import AddIndexConcurrentlyOnPostgreSQL

INDEX = models.Index(fields=["merchant", "due_date"], name="invoice_due_idx")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [
        ("ledger", "0011_idempotentrequest_lz4"),
        ("merchants", "0011_apikey_last_used_at"),
    ]

    operations = [AddIndexConcurrentlyOnPostgreSQL(model_name="invoice", index=INDEX)]
