"""Financing's projector: every issued invoice becomes a receivable with its fingerprint."""

from __future__ import annotations

from typing import Any

from financing.eligibility import business_debtor_key
from financing.fingerprint import invoice_fingerprint, supplier_identity
from financing.models import Receivable
from ledger.models import Entry
from ledger.projections.registry import projection_model, row_projector
from ledger.unsaved import unsaved
from merchants.identifiers import tax_id_is_national, tax_id_normalise
from merchants.models import Merchant

projection_model(Receivable)


@row_projector("invoice.issued")
def receivable_from_invoice(*, entry: Entry, data: dict[str, Any]) -> Receivable:
    debtor = data["debtor"]
    if debtor["kind"] == "marketplace":
        debtor_key = f"marketplace:{entry.source}"
    else:
        debtor_key = business_debtor_key(
            debtor.get("tax_id", ""), debtor["name"], debtor.get("country", "")
        )
    return unsaved(
        Receivable,
        merchant_id=entry.chain_id,
        ref=entry.external_ref,
        source=entry.source,
        entry=entry,
        fingerprint=invoice_fingerprint(
            supplier=_supplier(entry, data.get("supplier_tax_id")),
            invoice_number=entry.external_ref,
        ),
        debtor_key=debtor_key,
    )


def _supplier(entry: Entry, named: str | None) -> str:
    """The identity of the invoice's supplier: the chain's merchant, however the sender spells it.

    An invoice naming a qualified supplier tax id was accepted only if that is the merchant's
    own (ledger.services refuses any other), so its normal form is the merchant's. Otherwise the
    merchant says who it is: an append hands each entry the merchant its chain lock read, so
    that costs no query; a rebuild reads it.
    """
    if named and not tax_id_is_national(named):
        return tax_id_normalise(named)
    if Entry.chain.is_cached(entry):
        merchant = entry.chain.merchant
        tax_id_normalised, public_id = merchant.tax_id_normalised, merchant.public_id
    else:
        tax_id_normalised, public_id = Merchant.objects.values_list(
            "tax_id_normalised", "public_id"
        ).get(pk=entry.chain_id)
    return supplier_identity(tax_id_normalised=tax_id_normalised, public_id=public_id)
