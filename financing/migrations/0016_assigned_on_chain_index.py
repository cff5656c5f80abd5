"""An index of the chains' receivable.assigned entries by the invoice they name.

Eligibility asks, for every quote, request and approval, whether a merchant's chain gave one
of the invoices to the bank (financing.assigned_on_chain). Without this index PostgreSQL read
the merchant's whole chain to answer: 50 ms for a merchant with 100,000 entries, three times
what the rest of a disbursement costs, and growing with every event the marketplace sends.

The index holds only receivable.assigned entries, keyed by what their ref says before its last
'@' ("<invoice ref>@<advance ref>", or "sha256-<hex>@<advance ref>"), so other appends never
touch it. Built CONCURRENTLY, outside a transaction: appends go on while a large ledger_entry
is indexed. PostgreSQL only: the SQLite demo reads its short chains whole.
"""

from django.db import migrations

# The expression is the one financing.assigned_on_chain asks by, character for character:
# PostgreSQL uses an expression index only for the same expression (a test holds them so).
INDEX_CREATE = """
    CREATE INDEX CONCURRENTLY entry_assigned_invoice_idx ON ledger_entry
        (chain_id, left(external_ref, length(external_ref) - strpos(reverse(external_ref), '@')))
    WHERE type = 'receivable.assigned'
"""
INDEX_DROP = "DROP INDEX CONCURRENTLY IF EXISTS entry_assigned_invoice_idx"


def _on_postgresql(*statements):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [
        ("financing", "0015_bank_statement_jobs_and_breaks_closed_by_matches"),
        ("ledger", "0011_idempotentrequest_lz4"),
    ]

    operations = [
        # An interrupted build leaves an invalid index behind, which the planner never uses and
        # the migration, not recorded as applied, meets again: drop it, then build.
        migrations.RunPython(
            _on_postgresql(INDEX_DROP, INDEX_CREATE), _on_postgresql(INDEX_DROP)
        ),
    ]
