"""Synthetic bank statements for the matching tests: rows as r1's camt import writes them.

The camt.054 here is synthesised straight from the rows (r1's parser is tested on the shared
files); what matters to matching is the entries' fields, which are the import's contract.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import count

from financing.models import BankStatement, Payment, ReconJob, StatementEntry

_serial = count(1)


@dataclass
class Line:
    direction: str
    amount_minor: int
    value_on: date
    end_to_end_ids: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    details: list[dict[str, object]] = field(default_factory=list)
    currency: str = "EUR"


def statement(lines: list[Line], now: datetime, kind: str = "camt.054") -> ReconJob:
    """A bank-statement job with one statement of ``lines``, all booked."""
    n = next(_serial)
    job = ReconJob.objects.create(
        kind=ReconJob.Kind.BANK_STATEMENT,
        status=ReconJob.Status.DONE,
        file_name=f"synthetic-{n}.xml",
        file_sha256=hashlib.sha256(f"synthetic-{n}".encode()).hexdigest(),
        file_format=f"{kind}.001.08",
        created_at=now,
        lines_total=len(lines),
        lines_done=len(lines),
    )
    stmt = BankStatement.objects.create(
        job=job,
        kind=kind,
        message_id=f"MSG-{n}",
        statement_id=f"STMT-{n}",
        currency="EUR",
        created_at=now,
    )
    StatementEntry.objects.bulk_create(
        StatementEntry(
            statement=stmt,
            line=i,
            entry_ref=f"NTRY-{n}-{i}",
            direction=line.direction,
            amount_minor=line.amount_minor,
            currency=line.currency,
            booking_date=line.value_on,
            value_date=line.value_on,
            booked=True,
            end_to_end_ids=line.end_to_end_ids,
            references=line.references,
            details=line.details,
        )
        for i, line in enumerate(lines)
    )
    return job


def debits_of(payments: list[Payment], value_on: date) -> list[Line]:
    """One debit per payment, naming its end-to-end id: the bank executed each as sent."""
    return [
        Line(
            "debit",
            p.amount_minor,
            value_on,
            end_to_end_ids=[p.end_to_end_id],
            details=[
                {"end_to_end_id": p.end_to_end_id, "reference": "", "amount_minor": p.amount_minor}
            ],
        )
        for p in payments
    ]


def batch_debit_of(payments: list[Payment], value_on: date) -> Line:
    """One batch-booked debit for all ``payments``, each in its transaction details."""
    return Line(
        "debit",
        sum(p.amount_minor for p in payments),
        value_on,
        details=[
            {"end_to_end_id": p.end_to_end_id, "reference": "", "amount_minor": p.amount_minor}
            for p in payments
        ],
    )
