"""The round trip: payments out in a pain.001 file, the bank's camt.054 of the same payments
uploaded and imported through the real import job, whose matching books every one."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.etree.ElementTree import fromstring

import pytest
from django.contrib.auth.models import User

from financing import tasks
from financing.models import Facility, Match, Payment, ReconJob, StatementEntry
from financing.services.bank_statements import bank_statement_upload
from financing.services.payment_files import payment_batch_create, payment_batch_xml
from tests.financing.conftest import Trade
from tests.financing.reconciliation.helpers import account_active
from tests.financing.settlement_helpers import balance, books_and_chain_sound, disbursed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

PAIN = "{urn:iso:std:iso:20022:tech:xsd:pain.001.001.09}"


def transfers_of(pain001: bytes) -> list[tuple[str, str]]:
    """(end-to-end id, amount) of every credit transfer in a pain.001.001.09 file."""
    root = fromstring(pain001)
    return [
        (
            tx.findtext(f"{PAIN}PmtId/{PAIN}EndToEndId", ""),
            tx.findtext(f"{PAIN}Amt/{PAIN}InstdAmt", ""),
        )
        for tx in root.iter(f"{PAIN}CdtTrfTxInf")
    ]


def camt054_of(transfers: list[tuple[str, str]], batch_booked: int = 0) -> bytes:
    """A camt.054.001.08 debit notification of ``transfers`` as the bank books them: one entry
    each, except the last ``batch_booked`` in one batch-booked entry with their details."""
    singles = transfers[: len(transfers) - batch_booked]
    batch = transfers[len(transfers) - batch_booked :]

    def tx(e2e: str, amount: str) -> str:
        return (
            f"<TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs>"
            f'<Amt Ccy="EUR">{amount}</Amt></TxDtls>'
        )

    def entry(n: int, amount: str, details: str) -> str:
        return (
            f'<Ntry><NtryRef>N{n}</NtryRef><Amt Ccy="EUR">{amount}</Amt>'
            "<CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
            "<BookgDt><Dt>2026-11-02</Dt></BookgDt><ValDt><Dt>2026-11-02</Dt></ValDt>"
            f"<AcctSvcrRef>BANK-{n}</AcctSvcrRef><NtryDtls>{details}</NtryDtls></Ntry>"
        )

    entries = [entry(n, amount, tx(e2e, amount)) for n, (e2e, amount) in enumerate(singles)]
    if batch:
        cents = sum(int(a.replace(".", "")) for _, a in batch)
        total = f"{cents // 100}.{cents % 100:02d}"
        entries.append(entry(len(singles), total, "".join(tx(e, a) for e, a in batch)))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">'
        "<BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>RT-1</MsgId>"
        "<CreDtTm>2026-11-02T18:00:00</CreDtTm></GrpHdr>"
        "<Ntfctn><Id>RT-1-1</Id><Acct><Id><IBAN>DE02120300000000202051</IBAN></Id>"
        f"<Ccy>EUR</Ccy></Acct>{''.join(entries)}</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"
    ).encode()


def test_pain001_out_camt054_back_all_matched_and_cleared(
    trade: Trade,
    facility: Facility,
    officer: User,
    senior: User,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    refs = trade.fundable(4)
    for ref in refs:
        disbursed(trade, [ref], officer, now)
    account_active(trade.merchant, officer, senior, now)
    batch = payment_batch_create(currency="EUR", scheme="pain.001.001.09", officer=officer, now=now)
    transfers = transfers_of(payment_batch_xml(batch=batch))
    assert len(transfers) == 4
    sent = -balance("disbursement_clearing")
    # The worker, run in-line: what the upload enqueues on commit is the import of its job.
    ran: list[str] = []
    monkeypatch.setattr(
        tasks.bank_statement_import,
        "delay",
        lambda **kw: ran.append(tasks.bank_statement_import(**kw)),
    )

    with django_capture_on_commit_callbacks(execute=True):
        upload = bank_statement_upload(
            file_name="camt054-rt.xml",
            data=camt054_of(transfers, batch_booked=2),
            uploaded_by=None,
            now=now,
        )

    job = ReconJob.objects.get(pk=upload.job.pk)
    assert ran == ["done"] and job.status == "done", job.refusal
    assert job.summary["matching"] == {
        "confirmed": 3,
        "suggested": 0,
        "ambiguous": 0,
        "unmatched": 0,
        "not_on_statement": 0,
    }
    assert (job.lines_done, job.lines_total, job.matched, job.breaks_found) == (3, 3, 3, 0)
    assert set(Payment.objects.values_list("status", flat=True)) == {"booked"}
    assert not StatementEntry.objects.exclude(match_status="matched").exists()
    assert Match.objects.filter(rule__kind="one_to_many").count() == 1
    assert balance("disbursement_clearing") == 0 and balance("bank_cash") == -sent
    books_and_chain_sound()
