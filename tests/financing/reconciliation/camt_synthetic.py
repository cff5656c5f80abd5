"""A synthetic camt.054 of given payments, as the bank would notify their debits: for round
trips pain.001 → camt.054 (here, and in the matching tests)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from financing.models import Payment
from ledger.money import format_minor_units


def camt054_debits(
    payments: Sequence[Payment], *, message_id: str, booked_on: date, batch_entry: bool = False
) -> bytes:
    """One booked debit entry per payment, or (``batch_entry``) one entry for all of them with a
    TxDtls per payment; each TxDtls echoes the payment's end-to-end id."""
    currency = payments[0].currency

    def tx(p: Payment) -> str:
        amount = format_minor_units(p.amount_minor, currency)
        return (
            f"<TxDtls><Refs><EndToEndId>{p.end_to_end_id}</EndToEndId></Refs>"
            f'<Amt Ccy="{currency}">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd></TxDtls>'
        )

    def entry(ref: str, group: Sequence[Payment]) -> str:
        total = format_minor_units(sum(p.amount_minor for p in group), currency)
        return (
            f'<Ntry><NtryRef>{ref}</NtryRef><Amt Ccy="{currency}">{total}</Amt>'
            "<CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
            f"<BookgDt><Dt>{booked_on}</Dt></BookgDt><ValDt><Dt>{booked_on}</Dt></ValDt>"
            "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly>"
            "</Domn></BkTxCd>"
            f"<NtryDtls>{''.join(tx(p) for p in group)}</NtryDtls></Ntry>"
        )

    groups = [payments] if batch_entry else [[p] for p in payments]
    entries = "".join(entry(f"E{i}", g) for i, g in enumerate(groups, start=1))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">'
        f"<BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>{message_id}</MsgId>"
        f"<CreDtTm>{booked_on}T18:00:00</CreDtTm></GrpHdr>"
        f"<Ntfctn><Id>{message_id}-1</Id><CreDtTm>{booked_on}T18:00:00</CreDtTm>"
        "<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>"
        f"{entries}</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"
    ).encode()
