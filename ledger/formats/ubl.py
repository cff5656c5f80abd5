"""UBL 2.1 / Peppol BIS Billing 3 invoices and credit notes, read into one ledger event each.

The document is untrusted bytes from a merchant's accounting system, so ``ubl_xml`` parses it
defensively first (size cap, UTF-8 only, no DTD, entity or external reference, duplicates of
unique elements refused). Then only the few elements a receivable needs are read here. Amounts
are read exactly, never rounded.

Every refusal is a ``UblRejected`` with a ``code`` and a readable path into the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ledger.event_fields import FORBIDDEN_CHARS
from ledger.events import event_parse
from ledger.exceptions import EventInvalid
from ledger.formats.ubl_parties import party_ids, party_names, tax_id, third_party_payee
from ledger.formats.ubl_xml import (
    Node,
    Text,
    UblRejected,
    clean,
    local_name,
    shown,
    tag_name,
    xml_parse,
)
from ledger.money import CURRENCY_EXPONENTS, format_minor_units

MAX_BYTES = 1_048_576
REASON_MAX_LENGTH = 500  # the event schema's limit for a reason

_ROOTS = {
    "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice": "Invoice",
    "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote": "CreditNote",
}

# xs:decimal: optional sign, digits with an optional point; no exponent, no spaces inside.
_UBL_DECIMAL = re.compile(r"(?P<sign>[+-]?)(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*))?")
_UBL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UBL_TIME = re.compile(
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.[0-9]{1,9})?"
    r"(?P<offset>Z|(?P<sign>[+-])(?P<off_hour>[0-9]{2}):(?P<off_minute>[0-9]{2}))?"
)
# Peppol's placeholder for "there is no buyer order" (rule PEPPOL-EN16931-R003 and friends).
_NO_ORDER = "NA"


@dataclass(frozen=True, slots=True)
class UblDocument:
    """One parsed document: the raw event to append and who claims to have issued it."""

    event: dict[str, Any]
    supplier_ids: frozenset[str]
    document: str  # "Invoice" or "CreditNote"


def ubl_parse(
    document: bytes, *, max_bytes: int = MAX_BYTES, order_ref: str | None = None
) -> UblDocument:
    """Read one UBL Invoice or CreditNote into an ``invoice.issued`` or ``invoice.credited`` event.

    The event has passed ``ledger.events.event_parse``; appending it is the caller's business,
    as is checking ``supplier_ids`` against the merchant sending it. An invoice names its order
    by its buyer order reference (BT-13), else by the one order its lines reference, else by
    ``order_ref`` given with the upload; one naming none is recorded without an order (not
    fundable until an ``invoice.linked`` names it). One payable to a third party is recorded
    with its ``payee``.

    :raises UblRejected: the bytes are not safe, well-formed UTF-8 XML, not a UBL invoice or
        credit note, or say something Chainfin cannot record as evidence (see ``code``), or
        name an order other than ``order_ref``.
    """
    if not isinstance(document, bytes):
        raise TypeError(f"ubl_parse takes bytes, not {type(document).__name__}.")
    root = xml_parse(document, max_bytes=max_bytes)
    kind = _ROOTS.get(root.tag)
    if kind is None:
        raise UblRejected(
            "ubl_unsupported_document",
            "Expected a UBL 2.1 Invoice or CreditNote (urn:oasis:names:specification:ubl:schema"
            f":xsd:Invoice-2 or CreditNote-2); got {shown(tag_name(root.tag))}.",
            "/" + shown(local_name(root.tag)),
        )
    doc = Node(root, "/" + kind)
    supplier = doc.find("cac:AccountingSupplierParty/cac:Party")
    supplier_ids = party_ids(supplier) if supplier is not None else frozenset()
    if supplier is None:
        raise _missing(doc, "cac:AccountingSupplierParty/cac:Party", "the supplier (seller)")
    head = _head(doc)
    if kind == "CreditNote":
        if head.minor < 0:
            raise UblRejected(
                "ubl_negative_credit_note",
                "A credit note's PayableAmount must be positive; a negative credit note would"
                " increase the invoice, which Chainfin only accepts as a new invoice.",
                head.pointers["/data/amount"],
            )
        event = _credited(doc, head, missing_code="ubl_missing_billing_reference")
    elif head.minor < 0:
        event = _credited(doc, head, missing_code="ubl_negative_invoice_without_reference")
    else:
        event = _issued(doc, head, supplier, supplier_ids, order_ref)
    _event_check(event, head.pointers, doc.path)
    return UblDocument(event=event, supplier_ids=supplier_ids, document=kind)


# --- the document's head: ref, dates, amount --------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Head:
    ref: str
    occurred_at: str
    issue_date: str
    currency: str
    minor: int  # PayableAmount in minor units, signed
    pointers: dict[str, str]  # event JSON pointer -> where in the document it came from


def _head(doc: Node) -> _Head:
    pointers: dict[str, str] = {"/data": doc.path, "/type": doc.path}
    ref = _required(doc, "cbc:ID", "the document number")
    pointers["/ref"] = ref.pointer
    issued = _required(doc, "cbc:IssueDate", "the issue date")
    issue_date = _date(issued)
    pointers["/data/issue_date"] = pointers["/occurred_at"] = issued.pointer
    issue_time = doc.text("cbc:IssueTime")
    if issue_time is not None:
        pointers["/occurred_at"] = issue_time.pointer
    occurred_at = _timestamp(issue_date, issue_time)

    currency = _required(doc, "cbc:DocumentCurrencyCode", "the document currency")
    pointers["/data/currency"] = currency.pointer
    if currency.value not in CURRENCY_EXPONENTS:
        raise UblRejected(
            "ubl_currency_unsupported",
            f"{shown(currency.value)} is not an ISO 4217 currency Chainfin can hold.",
            currency.pointer,
        )
    payable = doc.find("cac:LegalMonetaryTotal/cbc:PayableAmount")
    if payable is None or not (payable.element.text or "").strip():
        raise _missing(doc, "cac:LegalMonetaryTotal/cbc:PayableAmount", "the amount due")
    pointers["/data/amount"] = payable.path
    amount_currency = (payable.element.get("currencyID") or "").strip()
    if amount_currency != currency.value:
        raise UblRejected(
            "ubl_currency_mismatch",
            f"PayableAmount is in {shown(amount_currency) or 'no stated currency'} but the"
            f" document currency is {currency.value}; Chainfin records the amount due in the"
            " document currency only.",
            payable.path,
        )
    minor = _minor_units(Text((payable.element.text or "").strip(), payable.path), currency.value)
    return _Head(ref.value, occurred_at, issue_date.isoformat(), currency.value, minor, pointers)


def _required(doc: Node, path: str, what: str) -> Text:
    text = doc.text(path)
    if text is None:
        raise _missing(doc, path, what)
    return text


def _missing(doc: Node, path: str, what: str) -> UblRejected:
    return UblRejected(
        "ubl_missing_element", f"The document has no {path} ({what}).", f"{doc.path}/{path}"
    )


def _minor_units(amount: Text, currency: str) -> int:
    """Read an xs:decimal exactly into signed minor units; never round."""
    match = _UBL_DECIMAL.fullmatch(amount.value) if len(amount.value) <= 40 else None
    if match is None or not (match["whole"] or match["fraction"]):
        raise UblRejected(
            "ubl_amount_invalid",
            f"{shown(amount.value, 40)!r} is not a decimal amount such as 1234.50.",
            amount.pointer,
        )
    exponent = CURRENCY_EXPONENTS[currency]
    # Trailing zeros change nothing ("100.00" JPY is 100 yen); any other extra digit would have
    # to be rounded away, and money is not rounded silently.
    fraction = (match["fraction"] or "").rstrip("0")
    if len(fraction) > exponent:
        raise UblRejected(
            "ubl_amount_precision",
            f"{currency} has {exponent} decimal place(s); {amount.value!r} has more, and"
            " Chainfin does not round amounts.",
            amount.pointer,
        )
    scale: int = 10**exponent
    minor = int(match["whole"] or "0") * scale + int(fraction.ljust(exponent, "0") or "0")
    return -minor if match["sign"] == "-" else minor


def _date(text: Text) -> date:
    try:
        if not _UBL_DATE.fullmatch(text.value):
            raise ValueError
        return date.fromisoformat(text.value)
    except ValueError:
        raise UblRejected(
            "ubl_date_invalid",
            f"{shown(text.value, 40)!r} is not a date written YYYY-MM-DD.",
            text.pointer,
        ) from None


def _timestamp(day: date, issue_time: Text | None) -> str:
    """IssueDate plus IssueTime (midnight if absent; UTC if it states no offset), in UTC."""
    if issue_time is None:
        return f"{day.isoformat()}T00:00:00Z"
    match = _UBL_TIME.fullmatch(issue_time.value)
    try:
        if match is None:
            raise ValueError
        moment = datetime.combine(
            day, time(int(match["hour"]), int(match["minute"]), int(match["second"])), UTC
        )
        if match["sign"]:
            if int(match["off_hour"]) > 14 or int(match["off_minute"]) > 59:
                raise ValueError
            offset = timedelta(hours=int(match["off_hour"]), minutes=int(match["off_minute"]))
            moment -= offset if match["sign"] == "+" else -offset
    except (ValueError, OverflowError):
        raise UblRejected(
            "ubl_date_invalid",
            f"{shown(issue_time.value, 40)!r} is not a time written hh:mm:ss.",
            issue_time.pointer,
        ) from None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the two events ---------------------------------------------------------------------------


def _issued(
    doc: Node, head: _Head, supplier: Node, supplier_ids: frozenset[str], given: str | None
) -> dict[str, Any]:
    if head.minor == 0:
        raise UblRejected(
            "ubl_nothing_payable",
            "PayableAmount is zero: the invoice asks for nothing, so there is no receivable.",
            head.pointers["/data/amount"],
        )
    pointers = head.pointers
    order_ref = _order_ref(doc, given)
    if order_ref is not None:
        pointers["/data/order_ref"] = order_ref.pointer
    due = _due_date(doc)
    pointers["/data/due_date"] = due.pointer

    customer = doc.find("cac:AccountingCustomerParty/cac:Party")
    if customer is None:
        raise _missing(doc, "cac:AccountingCustomerParty/cac:Party", "the buyer")
    pointers["/data/debtor"] = customer.path
    names = party_names(customer)
    if not names:
        raise _missing(
            customer,
            "cac:PartyLegalEntity/cbc:RegistrationName",
            "the buyer's name, or cac:PartyName/cbc:Name",
        )
    debtor: dict[str, Any] = {"kind": "business", "name": names[0].value}
    pointers["/data/debtor/name"] = names[0].pointer
    debtor_tax_id = tax_id(customer)
    if debtor_tax_id is not None:
        debtor["tax_id"] = debtor_tax_id.value
        pointers["/data/debtor/tax_id"] = debtor_tax_id.pointer
    country = customer.text("cac:PostalAddress/cac:Country/cbc:IdentificationCode")
    if country is not None:
        debtor["country"] = country.value
        pointers["/data/debtor/country"] = country.pointer

    data: dict[str, Any] = {
        "currency": head.currency,
        "amount": format_minor_units(head.minor, head.currency),
        **({"order_ref": order_ref.value} if order_ref is not None else {}),
        "issue_date": head.issue_date,
        "due_date": due.value,
        "debtor": debtor,
    }
    supplier_tax_id = tax_id(supplier)
    if supplier_tax_id is not None:
        data["supplier_tax_id"] = supplier_tax_id.value
        pointers["/data/supplier_tax_id"] = supplier_tax_id.pointer
    payee = third_party_payee(doc, supplier, supplier_ids, pointers)
    if payee is not None:
        data["payee"] = payee
    return _event("invoice.issued", head, data)


def _order_ref(doc: Node, given: str | None) -> Text | None:
    """The order the invoice bills: BT-13, else the one order its lines name, else ``given``.

    Lines naming several orders link the invoice to none of them: one invoice, one order.

    :raises UblRejected: the document names an order other than ``given``.
    """
    stated = doc.text("cac:OrderReference/cbc:ID")
    if stated is None or stated.value.upper() == _NO_ORDER:
        on_lines = [
            text
            for line in doc.children("cac:InvoiceLine")
            for reference in line.children("cac:OrderLineReference")
            if (text := reference.text("cac:OrderReference/cbc:ID")) is not None
            and text.value.upper() != _NO_ORDER
        ]
        distinct = {text.value for text in on_lines}
        stated = on_lines[0] if len(distinct) == 1 else None
    if stated is None:
        return Text(given, "?order_ref") if given is not None else None
    if given is not None and given != stated.value:
        raise UblRejected(
            "ubl_order_reference_conflict",
            f"The invoice bills order {shown(stated.value)}, not {shown(given)} as the upload"
            " says; Chainfin records the order the document names, so the two must agree.",
            stated.pointer,
        )
    return stated


def _due_date(doc: Node) -> Text:
    due = doc.text("cbc:DueDate")
    if due is None:
        found = [
            text
            for means in doc.children("cac:PaymentMeans")
            if (text := means.text("cbc:PaymentDueDate")) is not None
        ]
        if len({text.value for text in found}) > 1:
            raise UblRejected(
                "ubl_duplicate_element",
                "The payment means state different due dates and there is no cbc:DueDate;"
                " the date the receivable falls due must be unambiguous.",
                found[1].pointer,
            )
        due = found[0] if found else None
    if due is None:
        raise UblRejected(
            "ubl_missing_due_date",
            "The invoice states no due date (cbc:DueDate or cac:PaymentMeans/cbc:PaymentDueDate);"
            " Chainfin needs the date the receivable falls due.",
            f"{doc.path}/cbc:DueDate",
        )
    return Text(_date(due).isoformat(), due.pointer)


def _credited(doc: Node, head: _Head, *, missing_code: str) -> dict[str, Any]:
    """A credit note, or a negative invoice, that reduces one earlier invoice."""
    what = "credit note" if doc.path == "/CreditNote" else "negative invoice"
    if head.minor == 0:
        raise UblRejected(
            "ubl_nothing_payable",
            f"PayableAmount is zero: the {what} credits nothing.",
            head.pointers["/data/amount"],
        )
    pointers = head.pointers
    references = [
        text
        for billing in doc.children("cac:BillingReference")
        if (text := billing.text("cac:InvoiceDocumentReference/cbc:ID")) is not None
    ]
    distinct = list(dict.fromkeys(text.value for text in references))
    if not distinct:
        raise UblRejected(
            missing_code,
            f"The {what} does not say which invoice it credits"
            " (cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID); Chainfin records every"
            " credit against the invoice it reduces.",
            f"{doc.path}/cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID",
        )
    if len(distinct) > 1:
        listed = ", ".join(shown(value, 40) for value in distinct[:5])
        raise UblRejected(
            "ubl_ambiguous_billing_reference",
            f"The {what} references {len(distinct)} invoices ({listed}); Chainfin records each"
            " credit against exactly one invoice, so send one credit note per invoice.",
            references[1].pointer,
        )
    pointers["/data/invoice_ref"] = references[0].pointer
    data: dict[str, Any] = {
        "currency": head.currency,
        "amount": format_minor_units(abs(head.minor), head.currency),
        "invoice_ref": references[0].value,
        "issue_date": head.issue_date,
    }
    notes = doc.children("cbc:Note")
    joined = " ".join(n.element.text or "" for n in notes)
    # Line breaks and tabs become spaces first; only then are the other controls dropped.
    reason = clean(FORBIDDEN_CHARS.sub("", clean(joined)))
    if reason:
        data["reason"] = reason[:REASON_MAX_LENGTH].rstrip()
        pointers["/data/reason"] = notes[0].path
    return _event("invoice.credited", head, data)


def _event(type_: str, head: _Head, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, "ref": head.ref, "occurred_at": head.occurred_at, "data": data}


def _event_check(event: dict[str, Any], pointers: dict[str, str], fallback: str) -> None:
    """Run the ledger's own validation, so callers see one exception type for every refusal."""
    try:
        event_parse(event)
    except EventInvalid as exc:
        first = exc.errors[0]
        # The deepest event field we know the document origin of: /data/debtor/name before
        # /data/debtor before /data.
        pointer, known = first.pointer, fallback
        while pointer:
            if pointer in pointers:
                known = pointers[pointer]
                break
            pointer = pointer.rpartition("/")[0]
        field = first.pointer.removeprefix("/data/").removeprefix("/")
        raise UblRejected("ubl_invalid_content", f"{field}: {first.message}", known) from None
