"""A merchant that has an owner keeps one: the database refuses to demote or remove the last.

PostgreSQL: a deferred constraint trigger, so a transaction may promote one owner and demote
another in either order. It locks the merchant row before counting: two owners demoting each
other in two transactions would otherwise each still see the other as owner and both commit.
The lock is FOR NO KEY UPDATE, which does not block rows that merely reference the merchant.
A membership deleted with its merchant passes (the merchant row is gone by then).

SQLite (the demo) guards demotion only: its test flush empties tables with row-by-row DELETEs,
which a delete trigger would stop; removal is guarded by ``merchants.team`` under SQLite's
serialised writes.
"""

from django.db import migrations

POSTGRES_UP = [
    """CREATE FUNCTION merchants_membership_keep_an_owner() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
           IF OLD.role <> 'owner' THEN
               RETURN NULL;
           END IF;
           IF TG_OP = 'UPDATE' AND NEW.role = 'owner' AND NEW.merchant_id = OLD.merchant_id THEN
               RETURN NULL;
           END IF;
           PERFORM 1 FROM merchants_merchant WHERE id = OLD.merchant_id FOR NO KEY UPDATE;
           IF NOT FOUND THEN
               RETURN NULL;
           END IF;
           IF NOT EXISTS (
               SELECT 1 FROM merchants_membership
               WHERE merchant_id = OLD.merchant_id AND role = 'owner'
           ) THEN
               RAISE EXCEPTION 'merchant %% would be left without an owner', OLD.merchant_id
                   USING ERRCODE = 'check_violation',
                         CONSTRAINT = 'membership_keeps_an_owner';
           END IF;
           RETURN NULL;
       END;
       $$""",
    """CREATE CONSTRAINT TRIGGER membership_keeps_an_owner
       AFTER UPDATE OR DELETE ON merchants_membership
       DEFERRABLE INITIALLY DEFERRED
       FOR EACH ROW EXECUTE FUNCTION merchants_membership_keep_an_owner()""",
]
POSTGRES_DOWN = [
    "DROP TRIGGER membership_keeps_an_owner ON merchants_membership",
    "DROP FUNCTION merchants_membership_keep_an_owner()",
]
SQLITE_UP = [
    """CREATE TRIGGER membership_keeps_an_owner BEFORE UPDATE OF role ON merchants_membership
       WHEN OLD.role = 'owner' AND NEW.role <> 'owner' AND NOT EXISTS (
           SELECT 1 FROM merchants_membership
           WHERE merchant_id = OLD.merchant_id AND role = 'owner' AND id <> OLD.id
       )
       BEGIN SELECT RAISE(ABORT, 'membership_keeps_an_owner: the last owner stays owner'); END""",
]
SQLITE_DOWN = ["DROP TRIGGER membership_keeps_an_owner"]


def _run(statements_by_vendor):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(f"No owner trigger for {schema_editor.connection.vendor}")
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("merchants", "0009_bankaccount_rejected")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_UP, "sqlite": SQLITE_UP}),
            _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}),
        )
    ]
