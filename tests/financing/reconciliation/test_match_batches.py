"""Statement matching records its matches in batches: one transaction, and a fixed number of
round trips, per batch; one clearing journal entry per match all the same; a batch that meets a
conflict is recorded again match by match, so only the conflicting match is lost."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, connections, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from financing.books.models import JournalEntry
from financing.books.verification import books_verify
from financing.models import Match, MatchItem, MatchRule, Payment, StatementEntry
from financing.reconciliation import clearing, engine
from financing.reconciliation.engine import MatchRun, statement_match
from financing.reconciliation.matching import Outcome
from financing.reconciliation.payments import end_to_end_id_for
from merchants.models import Merchant
from tests.financing.reconciliation.statements import Line, debits_of, statement
from tests.financing.settlement_helpers import balance

VALUE_ON = date(2026, 11, 2)
_causes = iter(range(1, 1_000_000))


def payments_pending(merchant: Merchant, count: int, now: datetime) -> list[Payment]:
    """``count`` pending disbursements of different amounts, written at once."""
    rows = []
    for _ in range(count):
        key = f"disburse:adv_batch{next(_causes):07d}"
        rows.append(
            Payment(
                merchant=merchant,
                kind=Payment.Kind.DISBURSEMENT,
                currency="EUR",
                amount_minor=1_000 + len(rows) * 7,
                end_to_end_id=end_to_end_id_for(key),
                source_key=key,
                created_at=now,
            )
        )
    return Payment.objects.bulk_create(rows)


def statement_of(payments: list[Payment], now: datetime) -> dict[int, int]:
    """A statement of one debit per payment, naming it; each payment's entry, by payment id."""
    job = statement(debits_of(payments, VALUE_ON), now)
    lines = StatementEntry.objects.filter(statement__job=job).order_by("line")
    return {p.pk: e.pk for p, e in zip(payments, lines, strict=True)}


class Heard:
    """A progress that records what it is told, as the import job's does."""

    every = 1_000

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []

    def __call__(self, entry_ids: Sequence[int], *, matched: bool) -> None:
        self.calls.append((len(entry_ids), matched))


def all_matched_once(entry_of: dict[int, int]) -> None:
    """Each payment booked by its own entry, in one confirmed match with one clearing entry."""
    booked = dict(Payment.objects.filter(pk__in=entry_of).values_list("pk", "statement_entry"))
    assert booked == entry_of
    assert not Payment.objects.filter(pk__in=entry_of).exclude(status="booked").exists()
    live = MatchItem.objects.filter(live=True, statement_entry__in=entry_of.values())
    assert sorted(live.values_list("statement_entry", flat=True)) == sorted(entry_of.values())
    matches = Match.objects.filter(items__statement_entry__in=entry_of.values())
    assert matches.count() == len(entry_of) == matches.filter(status="confirmed").count()
    keys = {f"match:{pk}" for pk in matches.values_list("pk", flat=True)}
    assert set(JournalEntry.objects.filter(key__in=keys).values_list("key", flat=True)) == keys
    statuses = StatementEntry.objects.filter(pk__in=entry_of.values()).values_list(
        "match_status", flat=True
    )
    assert set(statuses) == {"matched"}


def books_sound() -> None:
    report = books_verify()
    assert report.intact, report.first_problem


@pytest.mark.sqlite_smoke  # the ORM path and the UPDATE … FROM of the embedded SQLite demo
@pytest.mark.django_db
def test_a_run_larger_than_a_batch_matches_all_with_one_clearing_entry_per_match(
    merchant: Merchant, now: datetime, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.RECON_MATCH_BATCH = 7
    payments = payments_pending(merchant, 20, now)
    entry_of = statement_of(payments, now)
    sizes: list[int] = []
    real = engine.matches_record

    def counted(batch: Sequence[Any], **kwargs: Any) -> list[Match | None]:
        sizes.append(len(batch))
        return real(batch, **kwargs)

    monkeypatch.setattr(engine, "matches_record", counted)
    heard = Heard()

    run = statement_match(now=now, progress=heard)

    assert run == MatchRun(confirmed=20, suggested=0, ambiguous=0, unmatched=0, not_on_statement=0)
    assert sizes == [7, 7, 6]
    assert heard.calls == [(7, True), (7, True), (6, True)]  # progress once per batch
    all_matched_once(entry_of)
    assert JournalEntry.objects.count() == 20
    total = sum(p.amount_minor for p in payments)
    assert (balance("disbursement_clearing"), balance("bank_cash")) == (total, -total)
    books_sound()
    assert statement_match(now=now).confirmed == 0  # again: nothing is open any more
    assert JournalEntry.objects.count() == 20


def rival_takes(payment: Payment, now: datetime) -> None:
    """Another run's live match holds ``payment`` (as if it committed first)."""
    rule = MatchRule.objects.get(order=10)
    rival = Match.objects.create(
        rule=rule,
        source=rule.source,
        status="suggested",
        currency="EUR",
        amount_minor=payment.amount_minor,
        expected_minor=payment.amount_minor,
        found_at=now,
    )
    MatchItem.objects.create(match=rival, payment=payment, amount_minor=payment.amount_minor)


def booked_since(payment: Payment, now: datetime) -> None:
    """The payment was booked (or rejected) since matching read it as open."""
    Payment.objects.filter(pk=payment.pk).update(status="booked", booked_at=now)


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("conflict", [rival_takes, booked_since], ids=["live_item", "not_open"])
def test_a_batch_with_one_conflict_still_records_every_other_match(
    merchant: Merchant,
    now: datetime,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    conflict: Callable[[Payment, datetime], None],
) -> None:
    settings.RECON_MATCH_BATCH = 500
    payments = payments_pending(merchant, 10, now)
    entry_of = statement_of(payments, now)
    lost = payments[3]
    real = engine.match_entries

    def then_conflict(**kwargs: Any) -> Outcome:
        outcome = real(**kwargs)
        conflict(lost, now)  # after matching read it, before the batch is recorded
        return outcome

    monkeypatch.setattr(engine, "match_entries", then_conflict)
    heard = Heard()

    run = statement_match(now=now, progress=heard)

    assert run.confirmed == 9
    assert heard.calls == [(9, True), (1, False)]
    all_matched_once({pk: e for pk, e in entry_of.items() if pk != lost.pk})
    assert JournalEntry.objects.count() == 9
    entry = StatementEntry.objects.get(pk=entry_of[lost.pk])
    assert entry.match_status == "unmatched"
    assert not MatchItem.objects.filter(statement_entry=entry).exists()
    books_sound()


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_queries_of_a_batch_do_not_grow_with_its_size(
    merchant: Merchant, now: datetime, settings: Any
) -> None:
    settings.RECON_MATCH_BATCH = 500
    statement_of(payments_pending(merchant, 1, now), now)
    statement_match(now=now)  # opens the clearing accounts, once for all time

    counted = []
    for size in (5, 60):
        entry_of = statement_of(payments_pending(merchant, size, now), now)
        with CaptureQueriesContext(connection) as queries:
            assert statement_match(now=now).confirmed == size
        all_matched_once(entry_of)
        counted.append(len(queries))

    # Read rules, entries, payments, payouts; per batch: candidates, the matches, their items,
    # the accounts, the journal entries, payments booked, entries marked, breaks looked for
    # (and the batch's savepoint); then payments missing from statements.
    assert counted[0] == counted[1] <= 16, counted
    books_sound()


@pytest.fixture
def match_rules() -> None:
    """The seeded rules: an earlier transactional test's flush may have emptied the table."""
    if not MatchRule.objects.exists():
        importlib.import_module("financing.migrations.0012_matching").rules_seed(apps, None)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_match_each_entry_once(
    merchant: Merchant,
    now: datetime,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    match_rules: None,
) -> None:
    settings.RECON_MATCH_BATCH = 6
    payments = payments_pending(merchant, 30, now)
    entry_of = statement_of(payments, now)
    # Both runs read the same open entries and propose the same matches before either records.
    together = threading.Barrier(2)
    real = engine.match_entries

    def in_step(**kwargs: Any) -> Outcome:
        outcome = real(**kwargs)
        together.wait(timeout=60)
        return outcome

    monkeypatch.setattr(engine, "match_entries", in_step)
    runs: list[Any] = [None, None]

    def run(i: int) -> None:
        try:
            runs[i] = statement_match(now=now)
        except BaseException as exc:
            runs[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a run still runs: a deadlock?"

    assert all(isinstance(r, MatchRun) for r in runs), runs
    assert sum(r.confirmed for r in runs) == 30, runs
    all_matched_once(entry_of)
    assert JournalEntry.objects.count() == 30
    books_sound()


class NotPostgres:
    """The default connection, saying it is not PostgreSQL: recording takes the ORM's way."""

    vendor = "orm"

    def __getattr__(self, name: str) -> Any:
        return getattr(connection, name)


def recorded_rows() -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    """The matches (but their ids) and their items (the match by its place), for comparing."""
    matches = list(Match.objects.order_by("pk"))
    place = {m.pk: n for n, m in enumerate(matches)}
    items = MatchItem.objects.values_list(
        "match", "statement_entry", "payment", "payout", "amount_minor", "live"
    )
    return (
        [model_to_dict(m, exclude=["id"]) for m in matches],
        sorted(((place[match], *rest) for match, *rest in items), key=repr),
    )


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_postgresql_inserts_write_what_the_orm_writes(
    merchant: Merchant, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    payments = payments_pending(merchant, 6, now)
    lines = debits_of(payments[:5], VALUE_ON)
    lines.append(
        Line("debit", payments[5].amount_minor + 30, VALUE_ON, [payments[5].end_to_end_id])
    )
    job = statement(lines, now)  # five exact, one 0.30 off: suggested

    with transaction.atomic():
        statement_match(now=now, job_id=job.pk)
        by_statements = recorded_rows()
        transaction.set_rollback(True)
    monkeypatch.setattr(clearing, "connection", NotPostgres())
    statement_match(now=now, job_id=job.pk)

    assert recorded_rows() == by_statements
    statuses = [m["status"] for m in by_statements[0]]
    assert sorted(statuses) == ["confirmed"] * 5 + ["suggested"]
    assert {m["job"] for m in by_statements[0]} == {job.pk}
