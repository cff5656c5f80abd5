"""Reading ISO 20022 bank statements (camt.053) and debit/credit notifications (camt.054),
versions .001.02, .001.04 and .001.08, into plain values; nothing here touches the database.

A file is read whole or refused whole, with a reason an officer can act on: too large, not
UTF-8, not well-formed (truncated), a DTD (XXE, billion laughs: ``defusedxml`` refuses any),
another message or version, or an entry we cannot read. The importer
(``financing.services.bank_statements``) writes nothing for a refused file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from io import BytesIO
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring, iterparse

from ledger.money import MoneyError, currency_exponent, parse_minor_units
from merchants.bank_details import account_mask

NAMESPACE_RE = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:(camt\.05[34])\.001\.(0[248])$")
ROOTS = {"camt.053": ("BkToCstmrStmt", "Stmt"), "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}
_DECLARED_ENCODING_RE = re.compile(rb"""^<\?xml[^>]*encoding=["']([A-Za-z0-9._-]+)["']""")
NOT_PROVIDED = "NOTPROVIDED"


class FileRefused(ValueError):
    """The file is not a camt message we read; ``reason`` says precisely why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ParsedEntry:
    line: int
    entry_ref: str
    direction: str
    amount_minor: int
    currency: str
    booking_date: date | None
    value_date: date | None
    booked: bool
    end_to_end_ids: list[str]
    references: list[str]
    counterparty_name: str
    details: list[dict[str, Any]]


@dataclass(frozen=True)
class ParsedStatement:
    statement_id: str
    account_iban_masked: str
    currency: str
    entries: list[ParsedEntry] = field(default_factory=list)


@dataclass(frozen=True)
class ParsedMessage:
    kind: str  # "camt.053" or "camt.054"
    file_format: str  # "camt.053.001.02", …
    message_id: str
    statements: list[ParsedStatement]

    @property
    def entries_total(self) -> int:
        return sum(len(s.entries) for s in self.statements)


def camt_parse(data: bytes, *, max_bytes: int) -> ParsedMessage:
    """Read a camt.053 or camt.054 message.

    :raises FileRefused: the file is not one we read, with the reason.
    """
    root = _document(data, max_bytes=max_bytes)
    kind, version = _message_of(root.tag)
    for element in root.iter():  # one namespace for the whole document: drop it
        element.tag = element.tag.rsplit("}", 1)[-1]
    message_name, block_name = ROOTS[kind]
    message = root.find(message_name)
    if message is None:
        raise FileRefused(f"A {kind} Document must contain {message_name}.")
    message_id = _text(message, "GrpHdr/MsgId")
    if not message_id:
        raise FileRefused("GrpHdr/MsgId is missing: the message cannot be identified.")
    blocks = message.findall(block_name)
    if not blocks:
        raise FileRefused(f"The message has no {block_name}: nothing to import.")
    statements = [_statement(block, block_name, position) for position, block in enumerate(blocks)]
    return ParsedMessage(
        kind=kind,
        file_format=f"{kind}.001.{version}",
        message_id=message_id[:35],
        statements=statements,
    )


def camt_envelope_check(data: bytes, *, max_bytes: int) -> str:
    """Check what needs no reading of the entries: size, encoding, no DTD or entity, and the
    root element's namespace; return the file's format ("camt.053.001.02").

    Cheap enough for an upload to answer at once: the bytes are decoded once and the XML is
    read only up to its root element. Well-formedness of the rest, and the entries, are
    ``camt_parse``'s.

    :raises FileRefused: the file is not one we read, with the reason.
    """
    _bytes_check(data, max_bytes=max_bytes)
    try:
        for _event, root in iterparse(
            BytesIO(data),
            events=("start",),
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        ):
            kind, version = _message_of(root.tag)
            return f"{kind}.001.{version}"
    except DefusedXmlException as error:
        raise _dtd_refused(error) from None
    except ParseError as error:
        raise FileRefused(f"The file is not well-formed XML: {error}.") from None
    raise FileRefused("The file has no root element.")


def _message_of(tag: str) -> tuple[str, str]:
    """The message kind and version a root element's tag names, or a refusal."""
    match = NAMESPACE_RE.match(tag[1:].split("}", 1)[0]) if tag.startswith("{") else None
    if match is None or tag.rsplit("}", 1)[-1] != "Document":
        raise FileRefused(
            f"The root element is {tag!r}: expected a Document in the namespace of "
            "camt.053 or camt.054, version .001.02, .001.04 or .001.08."
        )
    return match[1], match[2]


def _dtd_refused(error: DefusedXmlException) -> FileRefused:
    return FileRefused(
        f"The file carries a DTD or entity declaration ({type(error).__name__}); bank "
        "messages have none, and they can read local files or expand without bound."
    )


def _bytes_check(data: bytes, *, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise FileRefused(f"The file has {len(data):,} bytes; the limit is {max_bytes:,} bytes.")
    if not data.strip():
        raise FileRefused("The file is empty.")
    declared = _DECLARED_ENCODING_RE.match(data.lstrip(b"\xef\xbb\xbf"))
    if declared and declared[1].decode().lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise FileRefused(
            f"The file declares encoding {declared[1].decode()!r}; ISO 20022 messages are UTF-8."
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FileRefused(
            f"The file is not UTF-8: byte 0x{data[error.start]:02x} at offset {error.start}."
        ) from None


def _document(data: bytes, *, max_bytes: int) -> Element:
    _bytes_check(data, max_bytes=max_bytes)
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise _dtd_refused(error) from None
    except ParseError as error:
        raise FileRefused(f"The file is not well-formed XML (truncated?): {error}.") from None


def _statement(block: Element, block_name: str, position: int) -> ParsedStatement:
    statement_id = _text(block, "Id")
    if not statement_id:
        raise FileRefused(f"{block_name} {position + 1} has no Id.")
    account = block.find("Acct")
    iban = _text(account, "Id/IBAN") if account is not None else ""
    other = _text(account, "Id/Othr/Id") if account is not None else ""
    entries = [
        _entry(ntry, line, f"{block_name} {statement_id}")
        for line, ntry in enumerate(block.findall("Ntry"))
    ]
    currency = _text(account, "Ccy") if account is not None else ""
    if not currency and entries:
        currency = entries[0].currency
    return ParsedStatement(
        statement_id=statement_id[:35],
        account_iban_masked=account_mask(iban or other) if (iban or other) else "",
        currency=currency,
        entries=entries,
    )


def _entry(ntry: Element, line: int, where: str) -> ParsedEntry:
    position = f"{where}, entry {line + 1}"
    amount_minor, currency = _amount(ntry.find("Amt"), position)
    indicator = _text(ntry, "CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise FileRefused(f"{position}: CdtDbtInd is {indicator!r}, not CRDT or DBIT.")
    # .02/.04 carry the status as text, .08 as a code inside it.
    status = _text(ntry, "Sts/Cd") or _text(ntry, "Sts")
    transactions = ntry.findall("NtryDtls/TxDtls")
    details = [
        _detail(tx, position, len(transactions) == 1, amount_minor, currency) for tx in transactions
    ]
    references = [
        *(r for tx in transactions for r in _remittance(tx)),
        *(
            [_text(ntry, "AddtlNtryInf")]
            if not transactions and _text(ntry, "AddtlNtryInf")
            else []
        ),
    ]
    return ParsedEntry(
        line=line,
        entry_ref=(_text(ntry, "AcctSvcrRef") or _text(ntry, "NtryRef"))[:35],
        direction="credit" if indicator == "CRDT" else "debit",
        amount_minor=amount_minor,
        currency=currency,
        booking_date=_date(ntry.find("BookgDt"), position),
        value_date=_date(ntry.find("ValDt"), position),
        booked=status == "BOOK",
        end_to_end_ids=list(
            dict.fromkeys(d["end_to_end_id"] for d in details if d["end_to_end_id"])
        ),
        references=list(dict.fromkeys(r for r in references if r)),
        counterparty_name=_counterparty(transactions, indicator)[:140],
        details=details,
    )


def _detail(
    tx: Element, position: str, only: bool, entry_minor: int, entry_currency: str
) -> dict[str, Any]:
    end_to_end_id = _text(tx, "Refs/EndToEndId")
    amount = tx.find("Amt")
    if amount is None:
        amount = tx.find("AmtDtls/TxAmt/Amt")
    amount_minor: int | None = None
    if amount is not None:
        minor, currency = _amount(amount, position, allow_zero=True)
        # A detail in another currency (an FX leg) says nothing about this entry's amount.
        amount_minor = minor if currency == entry_currency else None
    if amount is None and only:
        amount_minor = entry_minor  # one transaction: the entry's amount is its amount
    remittance = _remittance(tx)
    return {
        "end_to_end_id": "" if end_to_end_id == NOT_PROVIDED else end_to_end_id,
        "reference": remittance[0] if remittance else "",
        "amount_minor": amount_minor,
    }


def _remittance(tx: Element) -> list[str]:
    structured = [
        (ref.text or "").strip() for ref in tx.findall("RmtInf/Strd/CdtrRefInf/Ref") if ref.text
    ]
    unstructured = [(u.text or "").strip() for u in tx.findall("RmtInf/Ustrd") if u.text]
    return [r for r in (*structured, *unstructured) if r]


def _counterparty(transactions: list[Element], indicator: str) -> str:
    # Money in comes from the debtor, money out goes to the creditor; .08 nests the name in Pty.
    party = "Dbtr" if indicator == "CRDT" else "Cdtr"
    for tx in transactions:
        name = _text(tx, f"RltdPties/{party}/Nm") or _text(tx, f"RltdPties/{party}/Pty/Nm")
        if name:
            return name
    return ""


def _amount(element: Element | None, position: str, *, allow_zero: bool = False) -> tuple[int, str]:
    if element is None:
        raise FileRefused(f"{position}: Amt is missing.")
    currency = element.get("Ccy", "")
    text = (element.text or "").strip()
    try:
        exponent = currency_exponent(currency)
        whole, _, fraction = text.partition(".")
        # Banks pad amounts in currencies without decimals ("2700.00" JPY): zeros are harmless.
        if len(fraction) > exponent and not fraction[exponent:].strip("0"):
            text = whole + ("." + fraction[:exponent] if exponent else "")
        return parse_minor_units(text, currency, allow_zero=allow_zero), currency
    except MoneyError as error:
        raise FileRefused(f"{position}: amount {text[:40]!r} {currency}: {error}") from None


def _date(element: Element | None, position: str) -> date | None:
    if element is None:
        return None
    text = _text(element, "Dt") or _text(element, "DtTm")[:10]
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise FileRefused(f"{position}: {text[:40]!r} is not a date.") from None


def _text(element: Element | None, path: str) -> str:
    if element is None:
        return ""
    found = element.find(path)
    return (found.text or "").strip() if found is not None else ""
