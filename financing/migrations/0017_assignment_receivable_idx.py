"""A receivable's assignments by merchant and invoice ref, whatever their status, so the portal's
list finds each invoice's latest one with a probe (portal.receivables.selectors).

Built CONCURRENTLY on PostgreSQL (ledger.concurrent_index): decisions go on while a large
financing_assignment is indexed.
"""

from django.db import migrations, models

from ledger.concurrent_index import AddIndexConcurrentlyOnPostgreSQL

INDEX = models.Index(fields=["merchant", "invoice_ref"], name="assignment_receivable_idx")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [("financing", "0016_assigned_on_chain_index")]

    operations = [AddIndexConcurrentlyOnPostgreSQL(model_name="assignment", index=INDEX)]
