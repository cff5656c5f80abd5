"""The parties' invariants hold in the database, not only in forms."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from ledger.selectors import merchant_ids_by_seller_id, merchants_by_seller_id
from merchants.models import Debtor, MarketplaceMerchant, Membership, Merchant
from merchants.services import marketplace_create, merchant_onboard


def _refused(create) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


@pytest.mark.django_db
def test_marketplace_comes_with_its_debtor(marketplace) -> None:
    debtor = Debtor.objects.get(marketplace=marketplace)
    assert debtor.kind == Debtor.Kind.MARKETPLACE


@pytest.mark.django_db
def test_seller_id_is_unique_per_marketplace(marketplace, merchant, make_merchant) -> None:
    seller_id = merchant.links.get().seller_id
    _refused(lambda: make_merchant(seller_id=seller_id))
    other = marketplace_create(code="other", name="Other")
    twin = make_merchant(marketplace=other, seller_id=seller_id)  # another marketplace: fine
    assert merchants_by_seller_id(marketplace=other, seller_ids=[seller_id]) == {seller_id: twin}
    assert merchants_by_seller_id(marketplace=marketplace, seller_ids=[seller_id]) == {
        seller_id: merchant
    }
    assert merchants_by_seller_id(marketplace=marketplace, seller_ids=["nobody"]) == {}
    # The ingest's look-up of ids alone answers the same, whatever else is asked for with it.
    asked = [seller_id, "nobody", "nul\x00", "\ud800"]
    assert merchant_ids_by_seller_id(marketplace=other, seller_ids=asked) == {seller_id: twin.pk}
    assert merchant_ids_by_seller_id(marketplace=marketplace, seller_ids=asked) == {
        seller_id: merchant.pk
    }
    assert merchant_ids_by_seller_id(marketplace=marketplace, seller_ids=["nul\x00"]) == {}


@pytest.mark.django_db
def test_a_merchant_is_linked_once_per_marketplace(marketplace, merchant) -> None:
    _refused(
        lambda: MarketplaceMerchant.objects.create(
            marketplace=marketplace, merchant=merchant, seller_id="second-id"
        )
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [{"status": "deleted"}, {"kyc_status": "maybe"}, {"country": "D1"}, {"country": "de"}],
)
def test_merchant_columns_are_checked(fields) -> None:
    base = {"legal_name": "X GmbH", "country": "DE", "tax_id": "DE1"}
    _refused(lambda: Merchant.objects.create(**(base | fields)))


@pytest.mark.django_db
def test_debtor_kind_matches_marketplace_link(marketplace) -> None:
    _refused(lambda: Debtor.objects.create(kind="business", name="B", marketplace=marketplace))
    _refused(lambda: Debtor.objects.create(kind="marketplace", name="M"))
    Debtor.objects.create(kind="business", name="Buyer", tax_id="FR123", country="FR")
    _refused(
        lambda: Debtor.objects.create(kind="business", name="Dup", tax_id="FR123", country="FR")
    )


@pytest.mark.django_db
def test_membership_is_unique_and_role_checked(django_user_model, merchant) -> None:
    user = django_user_model.objects.create_user("alice", password="x")
    Membership.objects.create(user=user, merchant=merchant, role="owner")
    _refused(lambda: Membership.objects.create(user=user, merchant=merchant, role="viewer"))
    other = merchant_onboard(
        legal_name="Y",
        country="NL",
        tax_id="NL1",
        marketplace=merchant.links.get().marketplace,
        seller_id="y",
    )
    _refused(lambda: Membership.objects.create(user=user, merchant=other, role="god"))
