"""Migration 0003: every stored fingerprint becomes the invoice's identity, as the projector's."""

from __future__ import annotations

import importlib
from datetime import datetime

import pytest
from django.apps import apps
from django.contrib.auth.models import User

from financing.models import Assignment, Facility, Receivable
from financing.services.requests import advance_request
from tests.financing.conftest import Trade

pytestmark = pytest.mark.django_db

migration = importlib.import_module("financing.migrations.0004_invoice_identity")


def test_old_fingerprints_are_recomputed_as_the_projector_computes_them(
    trade: Trade, facility: Facility, now: datetime
) -> None:
    refs = trade.fundable(2)
    advance_request(merchant=trade.merchant, refs=refs[:1], request_key="k", now=now)
    expected = dict(Receivable.objects.values_list("ref", "fingerprint"))
    Receivable.objects.update(fingerprint="0" * 64)  # as a v1 fingerprint would stand
    Assignment.objects.update(fingerprint="0" * 64)

    migration.recompute_fingerprints(apps, None)

    assert dict(Receivable.objects.values_list("ref", "fingerprint")) == expected
    assert Assignment.objects.get().fingerprint == expected[refs[0]]


def test_an_invoice_financed_twice_under_the_new_identity_stops_the_migration(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    """Two spellings financed apart under v1 (say, different amounts): an officer must look."""
    trade.order("ORD-A")
    trade.invoice("INV-9", "ORD-A")
    trade.delivered("ORD-A")
    trade.order("ORD-B", "999.00")
    trade.invoice("inv 9", "ORD-B", "999.00")
    trade.delivered("ORD-B")
    Receivable.objects.filter(ref="inv 9").update(fingerprint="f" * 64)  # v1 kept them apart
    advance_request(merchant=trade.merchant, refs=["INV-9"], request_key="a", now=now)
    advance_request(merchant=trade.merchant, refs=["inv 9"], request_key="b", now=now)

    with pytest.raises(RuntimeError, match=r"financed twice.*INV-9 in adv_.* and inv 9 in adv_"):
        migration.recompute_fingerprints(apps, None)
