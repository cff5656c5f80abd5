"""The log's queue (ledger_logpending) carries each entry's chain, that is its merchant's id, so
every row an append writes is the merchant's (config/distribution.py).

The queueing trigger of 0009 copies the chain too, from the same inserted rows; entries
already queued get theirs from ledger_entry. On SQLite the old trigger goes first: the table
is rebuilt to add a NOT NULL column, and SQLite will not rename a table into place while a
trigger names it.
"""

from django.db import migrations, models

POSTGRES_UP = [
    """CREATE OR REPLACE FUNCTION ledger_entry_queue_for_log() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
           INSERT INTO ledger_logpending (entry_id, chain_id) SELECT id, chain_id FROM new_entries;
           RETURN NULL;
       END;
       $$""",
]
POSTGRES_DOWN = [
    """CREATE OR REPLACE FUNCTION ledger_entry_queue_for_log() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
           INSERT INTO ledger_logpending (entry_id) SELECT id FROM new_entries;
           RETURN NULL;
       END;
       $$""",
]
SQLITE_UP = [
    """CREATE TRIGGER ledger_entry_queue_for_log AFTER INSERT ON ledger_entry
       BEGIN INSERT INTO ledger_logpending (entry_id, chain_id) VALUES (NEW.id, NEW.chain_id); END""",
]
SQLITE_DOWN = [
    """CREATE TRIGGER ledger_entry_queue_for_log AFTER INSERT ON ledger_entry
       BEGIN INSERT INTO ledger_logpending (entry_id) VALUES (NEW.id); END""",
]
SQLITE_DROP = ["DROP TRIGGER ledger_entry_queue_for_log"]
BACKFILL = [
    """UPDATE ledger_logpending SET chain_id = (
           SELECT e.chain_id FROM ledger_entry e WHERE e.id = ledger_logpending.entry_id)
       WHERE EXISTS (SELECT 1 FROM ledger_entry e WHERE e.id = ledger_logpending.entry_id)""",
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
    dependencies = [("ledger", "0009_global_log_triggers")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": [], "sqlite": SQLITE_DROP}),
            _run({"postgresql": [], "sqlite": SQLITE_DOWN}),
        ),
        migrations.AddField(
            model_name="logpending",
            name="chain",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                default=0,
                on_delete=models.deletion.DO_NOTHING,
                related_name="+",
                to="ledger.chain",
            ),
            preserve_default=False,
        ),
        migrations.RunPython(
            _run({"postgresql": [*BACKFILL, *POSTGRES_UP], "sqlite": [*BACKFILL, *SQLITE_UP]}),
            _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DROP}),
        ),
    ]
