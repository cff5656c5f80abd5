"""Restore the SQLite append-only triggers that 0004 dropped.

SQLite cannot alter a column in place, so Django rebuilds ``ledger_entry`` for 0004's AlterField
and the rebuilt table has no triggers. PostgreSQL alters in place and keeps them. Any later
migration that rebuilds ``ledger_entry`` on SQLite must end the same way; the SQLite smoke run
(tests/ledger/test_append_only.py) fails if it does not.
"""

from django.db import migrations

SQLITE_TRIGGERS = [
    """CREATE TRIGGER IF NOT EXISTS ledger_entry_no_update BEFORE UPDATE ON ledger_entry
       BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS ledger_entry_no_delete BEFORE DELETE ON ledger_entry
       BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only: DELETE refused'); END""",
]


def restore_sqlite_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_TRIGGERS:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0004_fewer_write_indexes")]

    operations = [migrations.RunPython(restore_sqlite_triggers, migrations.RunPython.noop)]
