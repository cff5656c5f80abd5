"""The journal's invariants in the database itself, on PostgreSQL and (partly) on SQLite.

PostgreSQL:
* a DEFERRABLE INITIALLY DEFERRED constraint trigger on books_posting refuses, at commit, a
  journal entry whose postings do not sum to zero per currency or that has fewer than two; a
  second one on books_journalentry refuses an entry committed with no posting at all (the
  posting trigger never fires for it). Deferred, because the postings of one entry arrive in
  one or more statements and only the committed whole has to balance (after django-hordak's
  0002_check_leg_trigger);
* books_journalentry and books_posting are append-only: UPDATE, DELETE and TRUNCATE refused;
* a composite foreign key (account_id, currency) -> books_account (id, currency) keeps every
  posting in its account's currency, and with it an account's currency fixed once it has one.

SQLite has no deferred constraint triggers: there journal_post checks the balance in code, and
triggers here keep postings and entries append-only and postings in their account's currency.
SQLite cannot alter a column in place, so Django rebuilds a table for an AlterField and the
rebuilt table has no triggers (see ledger 0005): any later migration that rebuilds books_posting
or books_journalentry on SQLite must create these triggers again, and the SQLite smoke run
(tests/financing/books/test_append_only.py) fails if it does not.

Disabling the triggers needs the table owner or a superuser, which the tampering tests do.
"""

from django.db import migrations

# "%%" is a literal "%" (RAISE's placeholder): the schema editor hands the driver parameters.
POSTGRES_UP = [
    """CREATE FUNCTION books_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           RAISE EXCEPTION '%% is append-only: %% refused', TG_TABLE_NAME, TG_OP
               USING ERRCODE = 'insufficient_privilege';
       END;
       $$""",
    """CREATE TRIGGER books_journalentry_no_update_delete
       BEFORE UPDATE OR DELETE ON books_journalentry
       FOR EACH ROW EXECUTE FUNCTION books_refuse_change()""",
    """CREATE TRIGGER books_journalentry_no_truncate BEFORE TRUNCATE ON books_journalentry
       FOR EACH STATEMENT EXECUTE FUNCTION books_refuse_change()""",
    """CREATE TRIGGER books_posting_no_update_delete BEFORE UPDATE OR DELETE ON books_posting
       FOR EACH ROW EXECUTE FUNCTION books_refuse_change()""",
    """CREATE TRIGGER books_posting_no_truncate BEFORE TRUNCATE ON books_posting
       FOR EACH STATEMENT EXECUTE FUNCTION books_refuse_change()""",
    # One aggregate per check: the entry's postings grouped by currency give both the count and
    # the first currency that does not sum to zero. The entry's key is read only to name it.
    """CREATE FUNCTION books_entry_check(checked bigint) RETURNS void LANGUAGE plpgsql AS $$
       DECLARE
           legs bigint;
           unbalanced varchar;
           total numeric;
           entry_key varchar;
       BEGIN
           SELECT coalesce(sum(n), 0), min(currency) FILTER (WHERE sum_minor <> 0)
             INTO legs, unbalanced
             FROM (SELECT currency, count(*) AS n, sum(amount_minor) AS sum_minor
                     FROM books_posting WHERE entry_id = checked GROUP BY currency) per_currency;
           IF legs >= 2 AND unbalanced IS NULL THEN
               RETURN;
           END IF;
           SELECT key INTO entry_key FROM books_journalentry WHERE id = checked;
           IF NOT FOUND THEN
               RETURN;  -- the entry is gone with its postings; nothing left to balance
           END IF;
           IF legs < 2 THEN
               RAISE EXCEPTION 'journal entry %% has %% posting(s); at least 2 are required',
                   quote_literal(entry_key), legs
                   USING ERRCODE = 'check_violation', CONSTRAINT = 'journalentry_two_postings';
           END IF;
           SELECT sum(amount_minor) INTO total
             FROM books_posting WHERE entry_id = checked AND currency = unbalanced;
           RAISE EXCEPTION 'journal entry %% does not balance in %%: its postings sum to %%',
               quote_literal(entry_key), unbalanced, total
               USING ERRCODE = 'check_violation', CONSTRAINT = 'journalentry_balanced';
       END;
       $$""",
    """CREATE FUNCTION books_posting_check_entry() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           IF TG_OP IN ('UPDATE', 'DELETE') THEN
               PERFORM books_entry_check(OLD.entry_id);
           END IF;
           IF TG_OP IN ('INSERT', 'UPDATE') THEN
               PERFORM books_entry_check(NEW.entry_id);
           END IF;
           RETURN NULL;
       END;
       $$""",
    """CREATE CONSTRAINT TRIGGER books_posting_entry_balanced
       AFTER INSERT OR UPDATE OR DELETE ON books_posting
       DEFERRABLE INITIALLY DEFERRED
       FOR EACH ROW EXECUTE FUNCTION books_posting_check_entry()""",
    """CREATE FUNCTION books_journalentry_check_postings() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           IF NOT EXISTS (SELECT 1 FROM books_posting WHERE entry_id = NEW.id) THEN
               PERFORM books_entry_check(NEW.id);
           END IF;
           RETURN NULL;
       END;
       $$""",
    """CREATE CONSTRAINT TRIGGER books_journalentry_has_postings
       AFTER INSERT ON books_journalentry
       DEFERRABLE INITIALLY DEFERRED
       FOR EACH ROW EXECUTE FUNCTION books_journalentry_check_postings()""",
    """ALTER TABLE books_posting ADD CONSTRAINT posting_currency_of_account
       FOREIGN KEY (account_id, currency) REFERENCES books_account (id, currency)""",
]
POSTGRES_DOWN = [
    "ALTER TABLE books_posting DROP CONSTRAINT posting_currency_of_account",
    "DROP TRIGGER books_journalentry_has_postings ON books_journalentry",
    "DROP FUNCTION books_journalentry_check_postings()",
    "DROP TRIGGER books_posting_entry_balanced ON books_posting",
    "DROP FUNCTION books_posting_check_entry()",
    "DROP FUNCTION books_entry_check(bigint)",
    "DROP TRIGGER books_posting_no_truncate ON books_posting",
    "DROP TRIGGER books_posting_no_update_delete ON books_posting",
    "DROP TRIGGER books_journalentry_no_truncate ON books_journalentry",
    "DROP TRIGGER books_journalentry_no_update_delete ON books_journalentry",
    "DROP FUNCTION books_refuse_change()",
]
# SQLite has no TRUNCATE; its "DELETE FROM t" fast path is turned off by any DELETE trigger.
SQLITE_UP = [
    """CREATE TRIGGER books_journalentry_no_update BEFORE UPDATE ON books_journalentry
       BEGIN SELECT RAISE(ABORT, 'books_journalentry is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER books_journalentry_no_delete BEFORE DELETE ON books_journalentry
       BEGIN SELECT RAISE(ABORT, 'books_journalentry is append-only: DELETE refused'); END""",
    """CREATE TRIGGER books_posting_no_update BEFORE UPDATE ON books_posting
       BEGIN SELECT RAISE(ABORT, 'books_posting is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER books_posting_no_delete BEFORE DELETE ON books_posting
       BEGIN SELECT RAISE(ABORT, 'books_posting is append-only: DELETE refused'); END""",
    """CREATE TRIGGER books_posting_currency_of_account BEFORE INSERT ON books_posting
       WHEN NEW.currency IS NOT (SELECT currency FROM books_account WHERE id = NEW.account_id)
       BEGIN SELECT RAISE(ABORT, 'posting currency differs from its account''s'); END""",
]
SQLITE_DOWN = [
    "DROP TRIGGER books_posting_currency_of_account",
    "DROP TRIGGER books_posting_no_delete",
    "DROP TRIGGER books_posting_no_update",
    "DROP TRIGGER books_journalentry_no_delete",
    "DROP TRIGGER books_journalentry_no_update",
]


def _run(statements_by_vendor):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(f"No journal triggers for {schema_editor.connection.vendor}")
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("books", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_UP, "sqlite": SQLITE_UP}),
            _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}),
        )
    ]
