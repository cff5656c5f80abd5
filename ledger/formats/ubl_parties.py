"""The parties of a UBL invoice: who issued it, who owes it and who is to be paid.

Identifiers are compared through the one tax-id normaliser (merchants.identifiers): supplier
matching compares them with merchants' tax ids, and a payee with the supplier's own ids.
"""

from __future__ import annotations

import re

from ledger.formats.ubl_xml import Node, Text, clean
from merchants.identifiers import tax_id_normalise

_DIGIT = re.compile(r"[0-9]")


def _normalised_id(value: str) -> str | None:
    # The tax-id normaliser for every identifier: supplier matching compares them with
    # merchants' tax ids, and a payee with the supplier's own ids. A bare national number stays
    # bare here; matching qualifies it with each candidate merchant's country.
    normalised = tax_id_normalise(value)
    # Free text in an identifier slot (Sweden's "Godkänd för F-skatt" in a PartyTaxScheme) has
    # no digit; letting it through would make every Swedish supplier share an "identifier".
    return normalised if _DIGIT.search(normalised) else None


def party_ids(party: Node) -> frozenset[str]:
    """Every identifier of the party (endpoint, identification, tax and company ids), normalised."""
    values = [
        *party.children("cbc:EndpointID"),
        *(id_ for p in party.children("cac:PartyIdentification") for id_ in p.children("cbc:ID")),
        *(c for s in party.children("cac:PartyTaxScheme") for c in s.children("cbc:CompanyID")),
        *(c for e in party.children("cac:PartyLegalEntity") for c in e.children("cbc:CompanyID")),
    ]
    found = (_normalised_id(node.element.text or "") for node in values)
    return frozenset(value for value in found if value)


def party_names(party: Node) -> list[Text]:
    """The party's registration name, then its trading name, where stated."""
    names = [
        party.text("cac:PartyLegalEntity/cbc:RegistrationName", unique=False),
        party.text("cac:PartyName/cbc:Name", unique=False),
    ]
    return [Text(clean(n.value), n.pointer) for n in names if n is not None]


def third_party_payee(
    doc: Node, supplier: Node, supplier_ids: frozenset[str], pointers: dict[str, str]
) -> dict[str, str] | None:
    """The payee, when it is not the supplier: the receivable was sold or assigned (factoring).

    EN 16931 fills the Payee (BG-10) only when someone other than the seller is to be paid, but
    some systems repeat the seller there; those are recognised by a shared identifier, or by
    name when the payee carries no identifier at all. The invoice is still evidence; it is
    recorded with its payee and eligibility never finances it.
    """
    payee = doc.find("cac:PayeeParty")
    if payee is None:
        return None
    payee_ids = party_ids(payee)
    if payee_ids & supplier_ids:
        return None
    payee_names = party_names(payee)
    if not payee_ids:
        supplier_names = {n.value.casefold() for n in party_names(supplier)}
        if any(n.value.casefold() in supplier_names for n in payee_names):
            return None
    pointers["/data/payee"] = payee.path
    found: dict[str, str] = {}
    if payee_names:
        found["name"] = payee_names[0].value
        pointers["/data/payee/name"] = payee_names[0].pointer
    identifier = _first_identifier(payee)
    if identifier is not None:
        found["id"] = identifier.value
        pointers["/data/payee/id"] = identifier.pointer
    return found


def _first_identifier(party: Node) -> Text | None:
    """The party's tax id, else its first identifier or company id that has a digit."""
    found = tax_id(party)
    if found is not None:
        return found
    for path in ("cac:PartyIdentification/cbc:ID", "cac:PartyLegalEntity/cbc:CompanyID"):
        text = party.text(path, unique=False)
        if text is not None and _DIGIT.search(text.value):
            return text
    return None


def tax_id(party: Node) -> Text | None:
    """The party's VAT identifier, else another tax registration number, else None."""
    vat: list[Text] = []
    other: list[Text] = []
    for scheme in party.children("cac:PartyTaxScheme"):
        company_id = scheme.text("cbc:CompanyID")
        if company_id is None or not _DIGIT.search(company_id.value):
            continue
        tax_scheme = scheme.text("cac:TaxScheme/cbc:ID")
        is_vat = tax_scheme is not None and tax_scheme.value.upper() == "VAT"
        (vat if is_vat else other).append(company_id)
    first = vat or other
    return first[0] if first else None
