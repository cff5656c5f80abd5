"""Writing ISO 20022 pain.001 credit-transfer files (.001.03 and .001.09), each validated
against the official XSD vendored in ``xsd/`` before anyone may send it.

Pure: payments and their opened account numbers in, XML bytes out. The numbers exist in the
clear only in memory here and in the file handed to the bank (stored sealed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from xml.etree.ElementTree import Element, SubElement, tostring

import xmlschema

from ledger.money import format_minor_units

XSD_DIR = Path(__file__).resolve().parent / "xsd"
SCHEMES = ("pain.001.001.03", "pain.001.001.09")


class Pain001Invalid(ValueError):
    """A generated file the official XSD refuses: a bug, never sent."""


@dataclass(frozen=True)
class Transfer:
    """One credit transfer: a payment and where it goes, the number opened."""

    end_to_end_id: str
    amount_minor: int
    creditor_name: str
    account_kind: str  # "iban" or "local"
    account_number: str
    bic: str
    remittance: str

    def __repr__(self) -> str:  # never the number, even in a traceback
        return f"Transfer(end_to_end_id={self.end_to_end_id!r})"


@dataclass(frozen=True)
class Debtor:
    """The bank's own paying account."""

    name: str
    iban: str
    bic: str


def pain001_render(
    *,
    scheme: str,
    msg_id: str,
    currency: str,
    execution_on: date,
    debtor: Debtor,
    transfers: Sequence[Transfer],
    now: datetime,
) -> bytes:
    """The pain.001 file of ``transfers`` in ``currency``, validated against the XSD.

    :raises Pain001Invalid: the XSD refuses the file (with its first error).
    """
    v9 = scheme == "pain.001.001.09"
    bic_tag = "BICFI" if v9 else "BIC"
    total = sum(t.amount_minor for t in transfers)
    document = Element("Document", xmlns=f"urn:iso:std:iso:20022:tech:xsd:{scheme}")
    initiation = SubElement(document, "CstmrCdtTrfInitn")
    header = SubElement(initiation, "GrpHdr")
    _text(header, "MsgId", msg_id)
    _text(header, "CreDtTm", now.replace(microsecond=0).isoformat())
    _text(header, "NbOfTxs", str(len(transfers)))
    _text(header, "CtrlSum", format_minor_units(total, currency))
    _text(SubElement(header, "InitgPty"), "Nm", debtor.name[:70])
    info = SubElement(initiation, "PmtInf")
    _text(info, "PmtInfId", msg_id)
    _text(info, "PmtMtd", "TRF")
    _text(info, "NbOfTxs", str(len(transfers)))
    _text(info, "CtrlSum", format_minor_units(total, currency))
    if currency == "EUR":  # SEPA is for euros only
        _text(SubElement(SubElement(info, "PmtTpInf"), "SvcLvl"), "Cd", "SEPA")
    if v9:
        _text(SubElement(info, "ReqdExctnDt"), "Dt", execution_on.isoformat())
    else:
        _text(info, "ReqdExctnDt", execution_on.isoformat())
    _text(SubElement(info, "Dbtr"), "Nm", debtor.name[:70])
    _text(SubElement(SubElement(info, "DbtrAcct"), "Id"), "IBAN", debtor.iban)
    _text(SubElement(SubElement(info, "DbtrAgt"), "FinInstnId"), bic_tag, debtor.bic)
    _text(info, "ChrgBr", "SLEV")
    for transfer in transfers:
        _transfer(SubElement(info, "CdtTrfTxInf"), transfer, currency, bic_tag)
    body: bytes = tostring(document, encoding="utf-8", xml_declaration=False)
    xml = b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
    pain001_validate(xml, scheme=scheme)
    return xml


def _transfer(tx: Element, transfer: Transfer, currency: str, bic_tag: str) -> None:
    _text(SubElement(tx, "PmtId"), "EndToEndId", transfer.end_to_end_id)
    amount = SubElement(tx, "Amt")
    _text(amount, "InstdAmt", format_minor_units(transfer.amount_minor, currency)).set(
        "Ccy", currency
    )
    if transfer.bic:
        _text(SubElement(SubElement(tx, "CdtrAgt"), "FinInstnId"), bic_tag, transfer.bic)
    _text(SubElement(tx, "Cdtr"), "Nm", transfer.creditor_name[:70])
    account = SubElement(SubElement(tx, "CdtrAcct"), "Id")
    if transfer.account_kind == "iban":
        _text(account, "IBAN", transfer.account_number)
    else:
        _text(SubElement(account, "Othr"), "Id", transfer.account_number)
    _text(SubElement(tx, "RmtInf"), "Ustrd", transfer.remittance[:140])


def _text(parent: Element, tag: str, value: str) -> Element:
    element = SubElement(parent, tag)
    element.text = value
    return element


@cache
def _schema(scheme: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD_DIR / f"{scheme}.xsd"))


def pain001_validate(xml: bytes, *, scheme: str) -> None:
    """Validate ``xml`` against the official XSD of ``scheme``.

    :raises Pain001Invalid: the first error the XSD finds, or an unknown scheme.
    """
    if scheme not in SCHEMES:
        raise Pain001Invalid(f"{scheme!r} is not one of {', '.join(SCHEMES)}.")
    error = next(_schema(scheme).iter_errors(xml.decode("utf-8-sig")), None)
    if error is not None:
        # The reason and where; never the element's text, which may hold an account number.
        raise Pain001Invalid(f"{scheme}: {error.reason} at {error.path}")
