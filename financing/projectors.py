"""Financing's projector: every issued invoice becomes a receivable with its fingerprint."""

from __future__ import annotations

from datetime import date
from typing import Any

from financing.eligibility import business_debtor_key
from financing.fingerprint import invoice_fingerprint, tax_id_normalise
from financing.models import Receivable
from ledger.models import Entry
from ledger.money import parse_minor_units
from ledger.projections.registry import projection_model, row_projector
from merchants.models import Merchant

projection_model(Receivable)


@row_projector("invoice.issued")
def receivable_from_invoice(*, entry: Entry, data: dict[str, Any]) -> Receivable:
    # The supplier is the chain's merchant; an invoice naming its own supplier tax id wins,
    # because that is what another marketplace would send for the same document.
    supplier_tax_id = data.get("supplier_tax_id") or (
        Merchant.objects.values_list("tax_id", flat=True).get(pk=entry.chain_id)
    )
    debtor = data["debtor"]
    if debtor["kind"] == "marketplace":
        debtor_key = f"marketplace:{entry.source}"
    else:
        debtor_key = business_debtor_key(tax_id_normalise(debtor.get("tax_id", "")), debtor["name"])
    return Receivable(
        merchant_id=entry.chain_id,
        ref=entry.external_ref,
        source=entry.source,
        entry=entry,
        fingerprint=invoice_fingerprint(
            supplier_tax_id=supplier_tax_id,
            invoice_number=entry.external_ref,
            currency=data["currency"],
            amount_minor=parse_minor_units(data["amount"], data["currency"]),
            issue_date=date.fromisoformat(data["issue_date"]),
        ),
        debtor_key=debtor_key,
    )
