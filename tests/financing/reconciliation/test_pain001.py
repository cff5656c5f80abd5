"""pain.001 files out, validated against the official XSDs; pain.002 status reports in."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from financing.exceptions import NotPermitted, WrongState
from financing.models import Break, Payment, PaymentBatch, ReconJob
from financing.reconciliation.pain001 import XSD_DIR, Pain001Invalid, pain001_validate
from financing.services.payment_files import (
    payment_batch_create,
    payment_batch_xml,
    payment_status_import,
)
from merchants.models import Merchant
from tests.financing.reconciliation.helpers import IBAN, account_active, payment_pending

FORMATS = Path(__file__).resolve().parents[3] / ".." / "shared" / "formats" / "pain001"
PAIN002 = (FORMATS / "postfinance-ch-pain002.001.03-status-report.xml").read_bytes()


def test_the_vendored_xsds_are_the_ones_named_in_their_source_note() -> None:
    note = (XSD_DIR / "SOURCE.md").read_text()
    for scheme in ("pain.001.001.03", "pain.001.001.09"):
        digest = hashlib.sha256((XSD_DIR / f"{scheme}.xsd").read_bytes()).hexdigest()
        assert f"`{scheme}.xsd` | `{digest}`" in note


@pytest.mark.parametrize(
    ("name", "scheme"),
    [
        ("iso-mdr-style-pain001.001.03-abc-corporation.xml", "pain.001.001.03"),
        ("sepa-pain001.001.03-single.xml", "pain.001.001.03"),
        ("php-sepa-xml-pain001.001.09.xml", "pain.001.001.09"),
    ],
)
def test_the_shared_pain001_samples_validate_against_the_same_xsds(name: str, scheme: str) -> None:
    pain001_validate((FORMATS / name).read_bytes(), scheme=scheme)


def test_the_swiss_variant_is_not_the_official_schema() -> None:
    # SIX's .ch.02 namespace has its own XSDs; against the ISO one it fails, as it should.
    swiss = (FORMATS / "six-ch-pain001.001.03.ch.02-musterfile.xml").read_bytes()
    with pytest.raises(Pain001Invalid):
        pain001_validate(swiss, scheme="pain.001.001.03")


def test_the_validator_refuses_a_broken_file_negative_control() -> None:
    good = (FORMATS / "sepa-pain001.001.03-single.xml").read_bytes()
    broken = good.replace(b"<NbOfTxs>1</NbOfTxs>", b"<NbOfTxs>one</NbOfTxs>", 1)
    assert broken != good
    with pytest.raises(Pain001Invalid, match=r"^pain\.001\.001\.03: "):
        pain001_validate(broken, scheme="pain.001.001.03")


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("scheme", ["pain.001.001.03", "pain.001.001.09"])
def test_a_batch_carries_every_ready_payment_and_validates(
    scheme: str,
    merchant: Merchant,
    make_merchant,
    officer: User,
    senior: User,
    now: datetime,
) -> None:
    account = account_active(merchant, officer, senior, now)
    first, second = payment_pending(merchant, now, 80_000), payment_pending(merchant, now, 12_345)
    without_account = payment_pending(make_merchant(), now)

    batch = payment_batch_create(currency="EUR", scheme=scheme, officer=officer, now=now)

    assert (batch.scheme, batch.payments_count, batch.control_sum_minor) == (scheme, 2, 92_345)
    xml = payment_batch_xml(batch=batch)
    pain001_validate(xml, scheme=scheme)  # as the service did before storing it
    assert hashlib.sha256(xml).hexdigest() == batch.file_sha256
    text = xml.decode()
    for payment in (first, second):
        assert f"<EndToEndId>{payment.end_to_end_id}</EndToEndId>" in text
    assert f"<IBAN>{IBAN}</IBAN>" in text and "<CtrlSum>923.45</CtrlSum>" in text
    assert IBAN.encode() not in bytes(PaymentBatch.objects.get().xml_sealed)  # stored sealed
    first.refresh_from_db()
    assert (first.status, first.batch_id, first.bank_account_id) == (
        "batched",
        batch.pk,
        account.pk,
    )
    without_account.refresh_from_db()
    assert (without_account.status, without_account.batch_id) == ("pending", None)

    with pytest.raises(WrongState, match="No pending EUR payment"):
        payment_batch_create(currency="EUR", scheme=scheme, officer=officer, now=now)


@pytest.mark.postgres
@pytest.mark.django_db
def test_only_officers_holding_the_permission_create_payment_files(
    merchant: Merchant, officer: User, senior: User, auditor: User, now: datetime
) -> None:
    account_active(merchant, officer, senior, now)
    payment_pending(merchant, now)
    with pytest.raises(NotPermitted):
        payment_batch_create(currency="EUR", scheme="pain.001.001.09", officer=auditor, now=now)
    assert Payment.objects.get().status == "pending"


def _batched(merchant: Merchant, officer: User, senior: User, now: datetime) -> Payment:
    account_active(merchant, officer, senior, now)
    payment = payment_pending(merchant, now)
    payment_batch_create(currency="EUR", scheme="pain.001.001.09", officer=officer, now=now)
    return Payment.objects.get(pk=payment.pk)


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_rejection_in_the_shared_pain002_rejects_the_payment_and_raises_a_break(
    merchant: Merchant, officer: User, senior: User, now: datetime
) -> None:
    payment = _batched(merchant, officer, senior, now)
    # The report rejects EndToEndId-006-01-01: make it ours.
    Payment.objects.filter(pk=payment.pk).update(end_to_end_id="EndToEndId-006-01-01")

    job = payment_status_import(file_name="p2.xml", data=PAIN002, uploaded_by=None, now=now)

    assert (job.status, job.file_format, job.breaks_found) == ("done", "pain.002.001.03.ch.02", 1)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REJECTED
    assert payment.status_reason == "AC01: 1301813;Konto ungültig"
    [rejected] = Break.objects.all()
    assert (rejected.kind, rejected.key, rejected.amount_minor, rejected.merchant_id) == (
        "payment_rejected",
        "payment:EndToEndId-006-01-01",
        payment.amount_minor,
        merchant.pk,
    )

    again = payment_status_import(file_name="p2.xml", data=PAIN002, uploaded_by=None, now=now)
    assert again.pk == job.pk and Break.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_an_accepting_pain002_marks_the_payment_accepted(
    merchant: Merchant, officer: User, senior: User, now: datetime
) -> None:
    payment = _batched(merchant, officer, senior, now)
    report = f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt>
<GrpHdr><MsgId>STS-1</MsgId><CreDtTm>2026-11-01T12:00:00</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>{payment.batch.msg_id}</OrgnlMsgId>
<OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>
<OrgnlPmtInfAndSts><OrgnlPmtInfId>{payment.batch.msg_id}</OrgnlPmtInfId><TxInfAndSts>
<OrgnlEndToEndId>{payment.end_to_end_id}</OrgnlEndToEndId><TxSts>ACSC</TxSts>
</TxInfAndSts><TxInfAndSts><OrgnlEndToEndId>NOT-OURS</OrgnlEndToEndId><TxSts>ACSC</TxSts>
</TxInfAndSts></OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>""".encode()

    job = payment_status_import(file_name="ok.xml", data=report, uploaded_by=None, now=now)

    assert job.summary == {"accepted": 1, "rejected": 0, "unknown": 1, "unchanged": 0}
    payment.refresh_from_db()
    assert payment.status == Payment.Status.ACCEPTED
    assert not Break.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (PAIN002[:300], "not well-formed XML"),
        (PAIN002.replace(b"pain.002.001.03.ch.02", b"pain.001.001.03.ch.02"), "not a pain.002"),
        (b'<!DOCTYPE d [<!ENTITY x "x">]><d>&x;</d>', "DTD or entity"),
    ],
    ids=["truncated", "wrong-namespace", "entity"],
)
def test_a_broken_status_report_is_refused_and_changes_nothing(
    data: bytes, reason: str, now: datetime
) -> None:
    job = payment_status_import(file_name="bad.xml", data=data, uploaded_by=None, now=now)
    assert job.status == ReconJob.Status.REFUSED and reason in job.refusal
    assert not Break.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_whole_file_rejected_rejects_every_payment_in_it(
    merchant: Merchant, officer: User, senior: User, now: datetime
) -> None:
    payment = _batched(merchant, officer, senior, now)
    report = f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>
<GrpHdr><MsgId>STS-2</MsgId><CreDtTm>2026-11-01T12:00:00</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>{payment.batch.msg_id}</OrgnlMsgId>
<OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId><GrpSts>RJCT</GrpSts>
<StsRsnInf><Rsn><Cd>FF01</Cd></Rsn></StsRsnInf></OrgnlGrpInfAndSts>
</CstmrPmtStsRpt></Document>""".encode()

    job = payment_status_import(file_name="all.xml", data=report, uploaded_by=None, now=now)

    assert job.summary["rejected"] == 1
    payment.refresh_from_db()
    assert (payment.status, payment.status_reason) == ("rejected", "FF01")
