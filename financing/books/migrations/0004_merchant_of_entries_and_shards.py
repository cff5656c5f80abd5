"""Every journal entry and posting names its merchant; the bank's accounts keep a shard of their
balance per merchant (financing/books/models.py says why).

* Entries get the merchant of their legs' merchant accounts (none: bank-level). An existing
  entry on two merchants' accounts stops the migration: it has no one merchant to be given.
  Entries that moved only the bank's accounts stay bank-level, whoever caused them.
* Postings get their entry's merchant.
* Each merchant's postings to a bank's account become that merchant's shard, and the account's
  own balance gives up what its shards now hold, so that ``verify_books`` proves every part:
  a balance that was wrong before stays wrong by as much, and is still found.
* A trigger ties every new posting's merchant to its entry's, and a merchant's account to that
  merchant's postings (a statement-level trigger on PostgreSQL: one check per journal_post).

The backfill updates rows of the append-only tables, so it switches their guards off around it
(PostgreSQL: ALTER TABLE ... DISABLE TRIGGER, in the migration's transaction; SQLite: drops the
triggers of 0002 and creates them again).
"""


import django.db.models.deletion
from django.db import migrations, models



_MIXED = """
SELECT e."key" FROM books_journalentry e
JOIN books_posting p ON p.entry_id = e.id
JOIN books_account a ON a.id = p.account_id
WHERE a.merchant_id IS NOT NULL
GROUP BY e.id, e."key"
HAVING count(DISTINCT a.merchant_id) > 1
ORDER BY e.id
LIMIT 1
"""
BACKFILL = [
    """UPDATE books_journalentry SET merchant_id = (
           SELECT max(a.merchant_id) FROM books_posting p JOIN books_account a ON a.id = p.account_id
           WHERE p.entry_id = books_journalentry.id)
       WHERE id IN (SELECT p.entry_id FROM books_posting p JOIN books_account a ON a.id = p.account_id
                    WHERE a.merchant_id IS NOT NULL)""",
    """UPDATE books_posting SET merchant_id = (
           SELECT e.merchant_id FROM books_journalentry e WHERE e.id = books_posting.entry_id)
       WHERE entry_id IN (SELECT id FROM books_journalentry WHERE merchant_id IS NOT NULL)""",
    """INSERT INTO books_accountshard (account_id, merchant_id, balance_minor)
       SELECT p.account_id, p.merchant_id, sum(p.amount_minor)
       FROM books_posting p JOIN books_account a ON a.id = p.account_id
       WHERE a.merchant_id IS NULL AND p.merchant_id IS NOT NULL
       GROUP BY p.account_id, p.merchant_id""",
    """UPDATE books_account SET balance_minor = balance_minor - (
           SELECT sum(s.balance_minor) FROM books_accountshard s
           WHERE s.account_id = books_account.id)
       WHERE id IN (SELECT account_id FROM books_accountshard)""",
]
UNSHARD = [
    """UPDATE books_account SET balance_minor = balance_minor + (
           SELECT sum(s.balance_minor) FROM books_accountshard s
           WHERE s.account_id = books_account.id)
       WHERE id IN (SELECT account_id FROM books_accountshard)""",
    "DELETE FROM books_accountshard",
]
_POSTGRES_GUARDS = [
    ("books_journalentry", "books_journalentry_no_update_delete"),
    ("books_posting", "books_posting_no_update_delete"),
    ("books_posting", "books_posting_entry_balanced"),
]
# "%%" is a literal "%" (RAISE's placeholder): the schema editor hands the driver parameters.
POSTGRES_TRIGGER_UP = [
    """CREATE FUNCTION books_posting_check_merchant() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE
           wrong record;
       BEGIN
           SELECT e."key", a.code, p.merchant_id AS posted, e.merchant_id AS entry_merchant,
                  a.merchant_id AS owner
             INTO wrong
             FROM new_postings p
             JOIN books_journalentry e ON e.id = p.entry_id
             JOIN books_account a ON a.id = p.account_id
            WHERE p.merchant_id IS DISTINCT FROM e.merchant_id
               OR (a.merchant_id IS NOT NULL AND a.merchant_id IS DISTINCT FROM p.merchant_id)
            LIMIT 1;
           IF NOT FOUND THEN
               RETURN NULL;
           END IF;
           IF wrong.posted IS DISTINCT FROM wrong.entry_merchant THEN
               RAISE EXCEPTION 'a posting to %% is of merchant %%, its journal entry %% of %%',
                   quote_literal(wrong.code), coalesce(wrong.posted::text, 'none'),
                   quote_literal(wrong."key"), coalesce(wrong.entry_merchant::text, 'none')
                   USING ERRCODE = 'check_violation', CONSTRAINT = 'posting_merchant_of_entry';
           END IF;
           RAISE EXCEPTION 'a posting to %%, an account of merchant %%, is of merchant %%',
               quote_literal(wrong.code), wrong.owner, coalesce(wrong.posted::text, 'none')
               USING ERRCODE = 'check_violation', CONSTRAINT = 'posting_merchant_of_account';
       END;
       $$""",
    # One check per statement, however many postings it inserts (journal_post inserts all of an
    # entry's in one).
    """CREATE TRIGGER books_posting_merchant AFTER INSERT ON books_posting
       REFERENCING NEW TABLE AS new_postings
       FOR EACH STATEMENT EXECUTE FUNCTION books_posting_check_merchant()""",
]
POSTGRES_TRIGGER_DOWN = [
    "DROP TRIGGER books_posting_merchant ON books_posting",
    "DROP FUNCTION books_posting_check_merchant()",
]
# The append-only guards of 0002 that the backfill must pass, as 0002 created them.
_SQLITE_GUARDS = {
    "books_journalentry_no_update": """CREATE TRIGGER books_journalentry_no_update
       BEFORE UPDATE ON books_journalentry
       BEGIN SELECT RAISE(ABORT, 'books_journalentry is append-only: UPDATE refused'); END""",
    "books_posting_no_update": """CREATE TRIGGER books_posting_no_update
       BEFORE UPDATE ON books_posting
       BEGIN SELECT RAISE(ABORT, 'books_posting is append-only: UPDATE refused'); END""",
}
SQLITE_TRIGGER_UP = [
    """CREATE TRIGGER books_posting_merchant BEFORE INSERT ON books_posting
       WHEN NEW.merchant_id IS NOT (SELECT merchant_id FROM books_journalentry
                                    WHERE id = NEW.entry_id)
         OR coalesce((SELECT merchant_id FROM books_account WHERE id = NEW.account_id),
                     NEW.merchant_id) IS NOT NEW.merchant_id
       BEGIN SELECT RAISE(ABORT, 'a posting is of its entry''s merchant, and of its account''s');
       END""",
]
SQLITE_TRIGGER_DOWN = ["DROP TRIGGER books_posting_merchant"]


def _guarded(statements):  # type: ignore[no-untyped-def]
    """Run ``statements`` with the append-only guards off, then the new trigger on."""

    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            for table, trigger in _POSTGRES_GUARDS:
                schema_editor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        elif vendor == "sqlite":
            for trigger in _SQLITE_GUARDS:
                schema_editor.execute(f"DROP TRIGGER {trigger}")
        else:
            raise RuntimeError(f"No journal triggers for {vendor}")
        for statement in statements:
            schema_editor.execute(statement)
        if vendor == "postgresql":
            for table, trigger in _POSTGRES_GUARDS:
                schema_editor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
        else:
            for create in _SQLITE_GUARDS.values():
                schema_editor.execute(create)

    return run


def backfill(apps, schema_editor):  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(_MIXED)
        mixed = cursor.fetchone()
    if mixed is not None:
        raise RuntimeError(
            f"Journal entry {mixed[0]!r} posts to two merchants' accounts: an entry is one"
            " merchant's now. Split it into one entry per merchant through the bank's accounts"
            " before migrating."
        )
    _guarded(BACKFILL)(apps, schema_editor)


def _trigger(statements_by_vendor):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(f"No journal triggers for {schema_editor.connection.vendor}")
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ('books', '0003_booksverification'),
        ('merchants', '0010_membership_keeps_an_owner'),
    ]

    operations = [
        migrations.AddField(
            model_name='journalentry',
            name='merchant',
            field=models.ForeignKey(blank=True, db_index=False, help_text='The merchant whose business this entry records; empty for bank-level entries.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='merchants.merchant'),
        ),
        migrations.AddField(
            model_name='posting',
            name='merchant',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='merchants.merchant'),
        ),
        migrations.CreateModel(
            name='AccountShard',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('balance_minor', models.BigIntegerField(default=0)),
                ('account', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='shards', to='books.account')),
                ('merchant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='merchants.merchant')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('account', 'merchant'), name='accountshard_unique')],
            },
        ),
        migrations.RunPython(backfill, _guarded(UNSHARD)),
        migrations.RunPython(
            _trigger({"postgresql": POSTGRES_TRIGGER_UP, "sqlite": SQLITE_TRIGGER_UP}),
            _trigger({"postgresql": POSTGRES_TRIGGER_DOWN, "sqlite": SQLITE_TRIGGER_DOWN}),
        ),
    ]
