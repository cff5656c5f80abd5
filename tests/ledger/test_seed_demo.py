"""manage.py seed_demo loads a plausible, consistent history through the services, once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from ledger.models import Entry, Invoice, Order, Payout, Shipment
from ledger.money import parse_minor_units
from ledger.rebuild import projections_rebuild
from ledger.verification import ledger_verify
from merchants.models import Marketplace, MarketplaceMerchant, Membership, Merchant


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_demo_loads_a_plausible_history() -> None:
    before = timezone.now()
    output = _seed()

    assert set(Marketplace.objects.values_list("code", flat=True)) >= {"acme"}
    assert Merchant.objects.count() >= 3
    assert MarketplaceMerchant.objects.count() == Merchant.objects.count()
    assert set(Merchant.objects.values_list("kyc_status", flat=True)) == {"verified", "pending"}
    assert Order.objects.filter(status=Order.Status.PLACED).exists()
    assert Order.objects.filter(status=Order.Status.CANCELLED).exists()
    assert Invoice.objects.count() > 100
    assert Invoice.objects.filter(debtor_kind="business").exclude(debtor_tax_id="").exists()
    assert Invoice.objects.exclude(status=Invoice.Status.ISSUED).exists()  # credit notes
    assert Shipment.objects.filter(status=Shipment.Status.DELIVERED).exists()
    assert Shipment.objects.filter(status=Shipment.Status.RETURNED).exists()
    assert Payout.objects.exists()
    assert not Entry.objects.filter(occurred_at__gt=before).exists()
    assert "merchant1" in output
    assert "admin" in output


@pytest.mark.django_db
def test_seed_demo_evidence_is_consistent() -> None:
    _seed()

    orders = {(o.merchant_id, o.ref): o for o in Order.objects.all()}
    for invoice in Invoice.objects.all():
        order = orders[invoice.merchant_id, invoice.order_ref]
        assert order.status == Order.Status.PLACED
        assert invoice.amount_minor <= order.amount_minor
        assert 30 <= (invoice.due_date - invoice.issue_date).days <= 60
    invoices = {(i.merchant_id, i.ref): i for i in Invoice.objects.all()}
    for payout in Payout.objects.all():
        lines = [
            (line["invoice_ref"], parse_minor_units(line["amount"], "EUR")) for line in payout.lines
        ]
        assert payout.amount_minor == sum(amount for _, amount in lines)
        for ref, amount in lines:
            invoice = invoices[payout.merchant_id, ref]
            assert invoice.debtor_kind == "marketplace"
            assert amount == invoice.amount_minor - invoice.credited_minor
    # The projections are exactly what replaying the chains gives.
    assert projections_rebuild(dry_run=True).differences == []


@pytest.mark.django_db
def test_seed_demo_creates_logins() -> None:
    _seed()

    users = get_user_model().objects
    admin = users.get(username="admin")
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.check_password("chainfin-demo")
    for n in (1, 2, 3):
        user = users.get(username=f"merchant{n}")
        assert not user.is_staff
        assert user.check_password("chainfin-demo")
        assert Membership.objects.filter(user=user, role=Membership.Role.OWNER).count() == 1


# The demo runs on the embedded SQLite: prove the seed works there too (make test-sqlite).
@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_seed_demo_twice_writes_nothing_new_and_the_ledger_verifies() -> None:
    _seed()
    counts = (Entry.objects.count(), Merchant.objects.count(), get_user_model().objects.count())

    output = _seed()

    assert "already loaded" in output
    assert counts == (
        Entry.objects.count(),
        Merchant.objects.count(),
        get_user_model().objects.count(),
    )
    result = ledger_verify()
    assert result.intact, result.first_break
    assert result.entries == counts[0]
