"""A merchant's invoices by due date, so the portal finds those still to fall due without
reading its paid history (financing.eligibility.open_verdicts).

On PostgreSQL the index is built CONCURRENTLY, outside a transaction: appends go on while a
large ledger_invoice is indexed. An interrupted build leaves an invalid index, which the
migration, not recorded as applied, drops before building again.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.migrations.operations import AddIndex

INDEX = models.Index(fields=["merchant", "due_date"], name="invoice_due_idx")


class AddIndexConcurrentlyOnPostgreSQL(AddIndexConcurrently):
    """``AddIndexConcurrently`` on PostgreSQL, a plain ``AddIndex`` elsewhere (the demo)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)
            return
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {self.index.name}")
        super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
            return
        super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [
        ("ledger", "0011_idempotentrequest_lz4"),
        ("merchants", "0011_apikey_last_used_at"),
    ]

    operations = [AddIndexConcurrentlyOnPostgreSQL(model_name="invoice", index=INDEX)]
