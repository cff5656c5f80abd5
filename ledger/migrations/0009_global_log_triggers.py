"""The global log's guards in the database, on PostgreSQL and on SQLite.

* Every entry inserted is queued for the sequencer (ledger_logpending) by a trigger, in the
  append's own transaction: the queue row becomes visible exactly when the entry does, so an
  entry that commits late (with a lower id than entries already sequenced) is still found,
  and the append path itself needs no change. Entries already stored are queued here.
* Leaves, tree nodes, checkpoints and cosignatures are append-only, like entries.
* The sequencer's singleton row exists from the start.
"""

from django.db import migrations

_APPEND_ONLY = ["ledger_logleaf", "ledger_lognode", "ledger_logcheckpoint", "ledger_cosignature"]

POSTGRES_UP = [
    """CREATE FUNCTION ledger_entry_queue_for_log() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           INSERT INTO ledger_logpending (entry_id) SELECT id FROM new_entries;
           RETURN NULL;
       END;
       $$""",
    # One statement per append statement, however many entries it inserts (batch appends).
    """CREATE TRIGGER ledger_entry_queue_for_log AFTER INSERT ON ledger_entry
       REFERENCING NEW TABLE AS new_entries
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_entry_queue_for_log()""",
    """CREATE FUNCTION ledger_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           RAISE EXCEPTION '%% is append-only: %% refused', TG_TABLE_NAME, TG_OP
               USING ERRCODE = 'insufficient_privilege';
       END;
       $$""",
    *(
        statement
        for table in _APPEND_ONLY
        for statement in (
            f"""CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION ledger_log_refuse_change()""",
            f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION ledger_log_refuse_change()""",
        )
    ),
]
POSTGRES_DOWN = [
    *(
        statement
        for table in _APPEND_ONLY
        for statement in (
            f"DROP TRIGGER {table}_no_update_delete ON {table}",
            f"DROP TRIGGER {table}_no_truncate ON {table}",
        )
    ),
    "DROP FUNCTION ledger_log_refuse_change()",
    "DROP TRIGGER ledger_entry_queue_for_log ON ledger_entry",
    "DROP FUNCTION ledger_entry_queue_for_log()",
]
SQLITE_UP = [
    """CREATE TRIGGER IF NOT EXISTS ledger_entry_queue_for_log AFTER INSERT ON ledger_entry
       BEGIN INSERT INTO ledger_logpending (entry_id) VALUES (NEW.id); END""",
    *(
        statement
        for table in _APPEND_ONLY
        for statement in (
            f"""CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
                BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END""",
            f"""CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
                BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END""",
        )
    ),
]
SQLITE_DOWN = [
    "DROP TRIGGER ledger_entry_queue_for_log",
    *(
        statement
        for table in _APPEND_ONLY
        for statement in (f"DROP TRIGGER {table}_no_update", f"DROP TRIGGER {table}_no_delete")
    ),
]
SEED = [
    "INSERT INTO ledger_logstate (id, tree_size) VALUES (1, 0)",
    "INSERT INTO ledger_logpending (entry_id) SELECT id FROM ledger_entry",
]


def _run(statements_by_vendor):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(f"No log triggers for {schema_editor.connection.vendor}")
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("ledger", "0008_global_log")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": [*POSTGRES_UP, *SEED], "sqlite": [*SQLITE_UP, *SEED]}),
            _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}),
        )
    ]
