"""Make ledger entries append-only in the database itself, on PostgreSQL and on SQLite.

The application role needs only INSERT and SELECT on ledger_entry; these triggers also stop a
role that has more (or code that forgets) from rewriting history. Disabling them needs the
table owner or a superuser, which is what the tampering tests do on purpose.
"""

from django.db import migrations

POSTGRES_UP = [
    """CREATE FUNCTION ledger_entry_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           RAISE EXCEPTION 'ledger_entry is append-only: %% refused', TG_OP
               USING ERRCODE = 'insufficient_privilege';
       END;
       $$""",
    """CREATE TRIGGER ledger_entry_no_update_delete BEFORE UPDATE OR DELETE ON ledger_entry
       FOR EACH ROW EXECUTE FUNCTION ledger_entry_refuse_change()""",
    """CREATE TRIGGER ledger_entry_no_truncate BEFORE TRUNCATE ON ledger_entry
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_entry_refuse_change()""",
]
POSTGRES_DOWN = [
    "DROP TRIGGER ledger_entry_no_truncate ON ledger_entry",
    "DROP TRIGGER ledger_entry_no_update_delete ON ledger_entry",
    "DROP FUNCTION ledger_entry_refuse_change()",
]
# SQLite has no TRUNCATE; its "DELETE FROM t" fast path is turned off by any DELETE trigger.
SQLITE_UP = [
    """CREATE TRIGGER ledger_entry_no_update BEFORE UPDATE ON ledger_entry
       BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER ledger_entry_no_delete BEFORE DELETE ON ledger_entry
       BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only: DELETE refused'); END""",
]
SQLITE_DOWN = [
    "DROP TRIGGER ledger_entry_no_update",
    "DROP TRIGGER ledger_entry_no_delete",
]


def _run(statements_by_vendor):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(f"No append-only trigger for {schema_editor.connection.vendor}")
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_UP, "sqlite": SQLITE_UP}),
            _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}),
        )
    ]
