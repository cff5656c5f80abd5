"""Financing's projector: every issued invoice becomes a receivable with its fingerprint."""

from __future__ import annotations

from datetime import date
from typing import Any

from financing.eligibility import business_debtor_key
from financing.fingerprint import invoice_fingerprint
from financing.models import Receivable
from ledger.models import Entry
from ledger.money import parse_minor_units
from ledger.projections.registry import projection_model, row_projector
from merchants.identifiers import tax_id_is_national
from merchants.models import Merchant

projection_model(Receivable)


@row_projector("invoice.issued")
def receivable_from_invoice(*, entry: Entry, data: dict[str, Any]) -> Receivable:
    supplier_tax_id, supplier_country = _supplier(entry.chain_id, data.get("supplier_tax_id"))
    debtor = data["debtor"]
    if debtor["kind"] == "marketplace":
        debtor_key = f"marketplace:{entry.source}"
    else:
        debtor_key = business_debtor_key(
            debtor.get("tax_id", ""), debtor["name"], debtor.get("country", "")
        )
    return Receivable(
        merchant_id=entry.chain_id,
        ref=entry.external_ref,
        source=entry.source,
        entry=entry,
        fingerprint=invoice_fingerprint(
            supplier_tax_id=supplier_tax_id,
            supplier_country=supplier_country,
            invoice_number=entry.external_ref,
            currency=data["currency"],
            amount_minor=parse_minor_units(data["amount"], data["currency"]),
            issue_date=date.fromisoformat(data["issue_date"]),
        ),
        debtor_key=debtor_key,
    )


def _supplier(merchant_id: int, named: str | None) -> tuple[str, str]:
    """The supplier's tax id, and the country that qualifies it if it is a bare national one.

    The supplier is the chain's merchant; an invoice naming its own supplier tax id wins,
    because that is what another marketplace would send for the same document.
    """
    if named and not tax_id_is_national(named):
        return named, ""  # qualified already: spare the append a query
    tax_id, country = Merchant.objects.values_list("tax_id", "country").get(pk=merchant_id)
    return named or tax_id, country
