"""``unsaved`` builds what ``Model(**values)`` builds, without walking the fields' descriptors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.db import models
from django.db.models.signals import post_init

from financing.models import Receivable
from ledger.models import Chain, Entry, Invoice, Order, Payout
from ledger.unsaved import unsaved

WHEN = datetime(2026, 10, 1, 10, 0, tzinfo=UTC)
ENTRY = Entry(id=7, chain_id=3, seq=2, source="acme", external_ref="INV-1")


def _fields(row: models.Model) -> dict[str, Any]:
    return {f.attname: getattr(row, f.attname) for f in type(row)._meta.concrete_fields}


@pytest.mark.parametrize(
    ("model", "values"),
    [
        (Order, {"merchant_id": 3, "ref": "O-1", "source": "acme", "entry": ENTRY,
                 "currency": "EUR", "amount_minor": 100, "placed_at": WHEN}),
        (Invoice, {"merchant_id": 3, "ref": "INV-1", "source": "acme", "entry": ENTRY,
                   "currency": "EUR", "amount_minor": 100, "issue_date": date(2026, 10, 1),
                   "due_date": date(2026, 11, 30), "debtor_kind": "business",
                   "debtor_name": "Buyer"}),
        (Receivable, {"merchant_id": 3, "ref": "INV-1", "source": "acme", "entry": ENTRY,
                      "fingerprint": "f" * 64, "debtor_key": "tax:DE1"}),
        (Entry, {"chain_id": 3, "seq": 1, "type": "order.placed", "source": "acme",
                 "external_ref": "O-1", "idempotency_key": "k", "request_hash": "0" * 64,
                 "occurred_at": WHEN, "recorded_at": WHEN, "prev_hash": "0" * 64,
                 "hash": "1" * 64, "body": b"{}"}),
    ],
)  # fmt: skip
def test_the_row_is_the_one_the_constructor_builds(model, values) -> None:
    fast, slow = unsaved(model, **values), model(**values)

    assert _fields(fast) == _fields(slow)  # given values, defaults, and the relation's id
    assert fast._state.adding and fast._state.db is None and fast.pk is None
    if "entry" in values:
        assert fast.entry is ENTRY  # cached: reading it costs no query
        assert fast.entry_id == ENTRY.pk


def test_a_default_computed_per_row_is_computed_per_row() -> None:
    first, second = unsaved(Payout, ref="P-1"), unsaved(Payout, ref="P-2")  # lines: list
    assert first.lines == [] and second.lines == []
    assert first.lines is not second.lines  # one row's lines never become another's


def test_a_name_that_is_not_a_field_is_refused() -> None:
    with pytest.raises(TypeError, match="'amount'"):
        unsaved(Order, ref="O-1", amount=100)


def test_a_model_with_init_receivers_takes_its_constructor() -> None:
    seen: list[models.Model] = []

    def receiver(sender: Any, instance: models.Model, **kwargs: Any) -> None:
        seen.append(instance)

    post_init.connect(receiver, sender=Order)
    try:
        row = unsaved(Order, ref="O-1")
    finally:
        post_init.disconnect(receiver, sender=Order)
    assert seen == [row]


def test_a_relation_stores_the_key_it_points_to() -> None:
    chain = Chain(merchant_id=42)  # a chain's key is its merchant's id, not an "id" column
    fast, slow = unsaved(Entry, chain=chain, seq=1), Entry(chain=chain, seq=1)
    assert fast.chain_id == slow.chain_id == 42
    assert fast.chain is chain
