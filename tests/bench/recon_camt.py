"""The bank statement half of ``recon_bench``: a camt.053 of N booked debits, matched.

Per repetition (untimed first): N pending payments of the bench's merchant are written in bulk,
each with the end-to-end id its cause gives it (``end_to_end_id_for``), and a camt.053.001.02
statement of N booked debit entries naming them, one each, is generated in memory. Then:

1. baseline, timed: ``camt_parse`` of the file alone (reading, no database);
2. timed: the import job as the worker runs it, in this process: ``bank_statement_upload``
   (envelope check, the file kept) and ``bank_statement_import_run`` (parse, write the
   statement and its entries in one transaction, match every entry under the seeded rules:
   one match, its clearing journal entry and its payment booked per entry, recorded
   ``RECON_MATCH_BATCH`` matches to a transaction, with progress once per batch).

Both are entries per second; the run fails unless every entry was matched and no break found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from time import perf_counter
from typing import Any

CAMT053 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


@dataclass(frozen=True)
class CamtRun:
    entries: int
    parse_seconds: float
    import_seconds: float
    job: Any


def payments_create(merchant_id: int, count: int, *, tag: str) -> list[tuple[str, int]]:
    """``count`` pending disbursements, written in bulk; their (end-to-end id, amount)."""
    from django.utils import timezone

    from financing.models import Payment
    from financing.reconciliation.payments import end_to_end_id_for

    now = timezone.now()
    rows = []
    for n in range(count):
        key = f"disburse:adv_bench{tag}{n:07d}"
        rows.append(
            Payment(
                merchant_id=merchant_id,
                kind=Payment.Kind.DISBURSEMENT,
                currency="EUR",
                amount_minor=1_000 + (n * 7919) % 900_000,
                end_to_end_id=end_to_end_id_for(key),
                source_key=key,
                created_at=now,
            )
        )
    Payment.objects.bulk_create(rows, batch_size=5_000)
    return [(p.end_to_end_id, p.amount_minor) for p in rows]


def camt053(payments: list[tuple[str, int]], *, message_id: str, booked_on: date) -> bytes:
    """A camt.053.001.02 statement: one booked debit per payment, naming its end-to-end id."""
    entries = "".join(
        f'<Ntry><NtryRef>E{n}</NtryRef><Amt Ccy="EUR">{amount // 100}.{amount % 100:02d}</Amt>'
        "<CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>"
        f"<BookgDt><Dt>{booked_on}</Dt></BookgDt><ValDt><Dt>{booked_on}</Dt></ValDt>"
        f"<NtryDtls><TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs></TxDtls></NtryDtls>"
        "</Ntry>"
        for n, (e2e, amount) in enumerate(payments)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{CAMT053}"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>{message_id}</MsgId><CreDtTm>{booked_on}T18:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>{message_id}-1</Id><Acct><Id><IBAN>DE02120300000000202051</IBAN></Id>"
        f"<Ccy>EUR</Ccy></Acct>{entries}</Stmt></BkToCstmrStmt></Document>"
    ).encode()


def camt_run(merchant_id: int, count: int, *, tag: str) -> CamtRun:
    """Build one statement of ``count`` entries and time its parse alone, then its import."""
    from django.conf import settings
    from django.utils import timezone

    import financing.tasks
    from financing.reconciliation.camt import camt_parse
    from financing.services.bank_statements import bank_statement_import_run, bank_statement_upload

    class _Held:  # the bench runs the job itself, in this process, on the clock
        def delay(self, job_id: int) -> None:
            pass

    financing.tasks.bank_statement_import = _Held()  # type: ignore[assignment]
    settings.RECON_XML_MAX_BYTES = 1 << 31  # ~600 bytes an entry: 100,000 are above 20 MiB
    payments = payments_create(merchant_id, count, tag=tag)
    data = camt053(payments, message_id=f"BENCH-{tag}", booked_on=timezone.now().date())

    started = perf_counter()
    parsed = camt_parse(data, max_bytes=len(data))
    parse_seconds = perf_counter() - started
    assert parsed.entries_total == count

    started = perf_counter()
    upload = bank_statement_upload(
        file_name=f"bench-{tag}.xml", data=data, uploaded_by=None, now=timezone.now()
    )
    job = bank_statement_import_run(job_id=upload.job.pk, now=timezone.now())
    return CamtRun(count, parse_seconds, perf_counter() - started, job)
