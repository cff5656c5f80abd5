"""Payment files: pending payments batched into a pain.001 file for the bank, and the bank's
pain.002 status report marking them accepted or rejected.

A batch takes the pending payments of one currency whose merchant has an active bank account,
pays each to that account, and stores the file sealed; a payment whose merchant has none waits.
A rejected payment becomes a ``payment_rejected`` break for an officer: the money did not leave,
and what happens to it is a decision, not a rule.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef

from financing.exceptions import WrongState
from financing.models import Break, Payment, PaymentBatch, ReconJob
from financing.reconciliation.camt import FileRefused
from financing.reconciliation.pain001 import SCHEMES, Debtor, Transfer, pain001_render
from financing.services._shared import officer_require
from merchants import credentials
from merchants.bank_details import bank_number_open
from merchants.models import BankAccount

BATCH_PERMISSION = "financing.add_paymentbatch"
PAIN002_NAMESPACES = (
    "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03",
    "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10",
    "http://www.six-interbank-clearing.com/de/pain.002.001.03.ch.02.xsd",
)
ACCEPTED = {"ACCP", "ACSC", "ACSP", "ACTC", "ACWC", "ACCC"}


def payment_batch_create(
    *,
    currency: str,
    scheme: str,
    officer: User,
    now: datetime,
    payment_ids: Collection[int] | None = None,
) -> PaymentBatch:
    """Batch every pending ``currency`` payment (of ``payment_ids``, when given) whose merchant
    has an active bank account into one pain.001 file, validated against the official XSD, in
    one transaction.

    :raises NotPermitted: the officer may not create payment files.
    :raises WrongState: an unknown scheme, or no payment is ready.
    :raises Pain001Invalid: the XSD refuses the file (a bug; nothing is written).
    """
    officer_require(officer, BATCH_PERMISSION)
    if scheme not in SCHEMES:
        raise WrongState(f"{scheme!r} is not one of {', '.join(SCHEMES)}.")
    with transaction.atomic():
        active = BankAccount.objects.filter(
            merchant=OuterRef("merchant"), status=BankAccount.Status.ACTIVE
        )
        payments = list(
            Payment.objects.select_for_update(of=("self",))
            .filter(status=Payment.Status.PENDING, currency=currency)
            .filter(Exists(active))
            .filter(**({} if payment_ids is None else {"pk__in": list(payment_ids)}))
            .select_related("merchant")
            .order_by("pk")
        )
        if not payments:
            raise WrongState(f"No pending {currency} payment to a merchant with a bank account.")
        accounts = {
            a.merchant_id: a
            for a in BankAccount.objects.filter(
                merchant_id__in={p.merchant_id for p in payments},
                status=BankAccount.Status.ACTIVE,
            )
        }
        msg_id = f"CF{now:%Y%m%d%H%M%S}{secrets.token_hex(6).upper()}"
        xml = pain001_render(
            scheme=scheme,
            msg_id=msg_id,
            currency=currency,
            execution_on=now.date(),
            debtor=Debtor(
                name=settings.CHAINFIN_PAYING_NAME,
                iban=settings.CHAINFIN_PAYING_IBAN,
                bic=settings.CHAINFIN_PAYING_BIC,
            ),
            transfers=[_transfer(p, accounts[p.merchant_id]) for p in payments],
            now=now,
        )
        batch = PaymentBatch.objects.create(
            msg_id=msg_id,
            created_at=now,
            scheme=scheme,
            currency=currency,
            file_sha256=hashlib.sha256(xml).hexdigest(),
            xml_sealed=credentials.secret_seal(xml.decode("utf-8")),
            payments_count=len(payments),
            control_sum_minor=sum(p.amount_minor for p in payments),
        )
        for payment in payments:
            updated = Payment.objects.filter(pk=payment.pk, status=Payment.Status.PENDING).update(
                status=Payment.Status.BATCHED,
                batch=batch,
                bank_account=accounts[payment.merchant_id],
            )
            if updated != 1:  # locked above; kept as the compare-and-set of last resort
                raise WrongState(f"Payment {payment.end_to_end_id} left pending meanwhile.")
    return batch


def _transfer(payment: Payment, account: BankAccount) -> Transfer:
    cause = payment.source_key.partition(":")[2]
    return Transfer(
        end_to_end_id=payment.end_to_end_id,
        amount_minor=payment.amount_minor,
        creditor_name=account.holder_name,
        account_kind=account.kind,
        account_number=bank_number_open(bytes(account.iban_sealed)),
        bic=account.bic,
        remittance=f"Chainfin {payment.get_kind_display().lower()} {cause}",
    )


def payment_batch_xml(*, batch: PaymentBatch) -> bytes:
    """The file of ``batch`` as it was generated, opened for download."""
    return credentials.secret_open(bytes(batch.xml_sealed)).encode("utf-8")


@dataclass(frozen=True)
class _Status:
    end_to_end_id: str
    code: str
    reason: str


def payment_status_import(
    *, file_name: str, data: bytes, uploaded_by: User | None, now: datetime
) -> ReconJob:
    """Read a pain.002 status report: accepted payments become ``accepted``, rejected ones
    ``rejected`` with the bank's reason and a ``payment_rejected`` break, in one transaction.

    The same file twice returns the first job and changes nothing. Statuses naming no payment of
    ours are counted in the summary as unknown.
    """
    sha256 = hashlib.sha256(data).hexdigest()
    kind = ReconJob.Kind.PAYMENT_STATUS
    existing = ReconJob.objects.filter(kind=kind, file_sha256=sha256).first()
    if existing is not None:
        return existing
    job = ReconJob(
        kind=kind,
        file_name=file_name[:255],
        file_sha256=sha256,
        uploaded_by=uploaded_by,
        created_at=now,
        started_at=now,
        finished_at=now,
    )
    try:
        file_format, statuses = _pain002_parse(data)
    except FileRefused as refused:
        job.status, job.refusal = ReconJob.Status.REFUSED, refused.reason
        return _saved(job, [], now)
    job.status, job.file_format = ReconJob.Status.DONE, file_format
    job.lines_total = job.lines_done = len(statuses)
    return _saved(job, statuses, now)


def _saved(job: ReconJob, statuses: list[_Status], now: datetime) -> ReconJob:
    try:
        with transaction.atomic():
            job.save()
            counts = _statuses_apply(job, statuses, now)
            if statuses:
                job.summary, job.breaks_found = counts, counts["rejected"]
                job.matched = counts["accepted"] + counts["rejected"]
                job.save(update_fields=["summary", "breaks_found", "matched"])
    except IntegrityError:
        winner = ReconJob.objects.filter(kind=job.kind, file_sha256=job.file_sha256).first()
        if winner is None:
            raise
        return winner
    return job


def _statuses_apply(job: ReconJob, statuses: list[_Status], now: datetime) -> dict[str, int]:
    counts = {"accepted": 0, "rejected": 0, "unknown": 0, "unchanged": 0}
    by_id = {
        p.end_to_end_id: p
        for p in Payment.objects.select_for_update()
        .filter(end_to_end_id__in=[s.end_to_end_id for s in statuses])
        .order_by("pk")
    }
    for status in statuses:
        payment = by_id.get(status.end_to_end_id)
        if payment is None:
            counts["unknown"] += 1
            continue
        if status.code == "RJCT":
            _reject(job, payment, status, now)
            counts["rejected"] += 1
        elif status.code in ACCEPTED and payment.status == Payment.Status.BATCHED:
            Payment.objects.filter(pk=payment.pk, status=Payment.Status.BATCHED).update(
                status=Payment.Status.ACCEPTED, status_reason=status.code
            )
            counts["accepted"] += 1
        else:
            counts["unchanged"] += 1  # pending at the bank, or already further along
    return counts


def _reject(job: ReconJob, payment: Payment, status: _Status, now: datetime) -> None:
    reason = status.reason or "RJCT"
    Payment.objects.filter(
        pk=payment.pk, status__in=[Payment.Status.BATCHED, Payment.Status.ACCEPTED]
    ).update(status=Payment.Status.REJECTED, status_reason=reason)
    Break.objects.get_or_create(
        kind=Break.Kind.PAYMENT_REJECTED,
        key=f"payment:{payment.end_to_end_id}",
        defaults={
            "job": job,
            "merchant_id": payment.merchant_id,
            "currency": payment.currency,
            "amount_minor": payment.amount_minor,
            "reference": payment.end_to_end_id,
            "detail": {"reason": reason, "payment": payment.pk, "kind": payment.kind},
            "found_at": now,
        },
    )


def _pain002_parse(data: bytes) -> tuple[str, list[_Status]]:
    if len(data) > settings.RECON_XML_MAX_BYTES:
        raise FileRefused(
            f"The file has {len(data):,} bytes; the limit is "
            f"{settings.RECON_XML_MAX_BYTES:,} bytes."
        )
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise FileRefused("The file carries a DTD or entity declaration; refused.") from None
    except ParseError as error:
        raise FileRefused(f"The file is not well-formed XML (truncated?): {error}.") from None
    namespace = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    if namespace not in PAIN002_NAMESPACES:
        raise FileRefused(f"The namespace {namespace!r} is not a pain.002 status report we read.")
    for element in root.iter():
        element.tag = element.tag.rsplit("}", 1)[-1]
    report = root.find("CstmrPmtStsRpt")
    if report is None:
        raise FileRefused("A pain.002 Document must contain CstmrPmtStsRpt.")
    statuses = [
        _Status(
            end_to_end_id=(tx.findtext("OrgnlEndToEndId") or "").strip(),
            code=(tx.findtext("TxSts") or "").strip(),
            reason=_reason(tx),
        )
        for tx in report.iter("TxInfAndSts")
    ]
    file_format = namespace.rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".xsd")
    if not statuses and (report.findtext("OrgnlGrpInfAndSts/GrpSts") or "").strip() == "RJCT":
        # The whole file refused, without a status per transaction: every payment in it.
        msg_id = (report.findtext("OrgnlGrpInfAndSts/OrgnlMsgId") or "").strip()
        group = report.find("OrgnlGrpInfAndSts")
        reason = (_reason(group) if group is not None else "") or "RJCT"
        return file_format, [
            _Status(end_to_end_id=e2e, code="RJCT", reason=reason)
            for e2e in Payment.objects.filter(batch__msg_id=msg_id).values_list(
                "end_to_end_id", flat=True
            )
        ]
    return file_format, [s for s in statuses if s.end_to_end_id]


def _reason(tx: Element) -> str:
    code = (tx.findtext("StsRsnInf/Rsn/Cd") or "").strip()
    info = " ".join((a.text or "").strip() for a in tx.findall("StsRsnInf/AddtlInf"))
    return ": ".join(part for part in (code, info) if part)[:500]
