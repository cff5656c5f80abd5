"""A merchant's bank account, changed only by four eyes: a changed payee is the classic fraud.

An officer proposes an account (validated, sealed, masked: ``merchants.bank_details``); it is
written as ``proposed`` with a ``bank_account_change`` RiskChange, and becomes the merchant's
active account, retiring the one before, only when a different senior officer confirms it
(``financing.services.proposals.change_confirm``); a rejected proposal ends ``rejected``. A
merchant's owner may propose through the portal too (``bank_account_request``): the same
proposal, with the owner as proposer, so any senior officer confirms it. Nothing here logs or
returns the number.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction

from financing.exceptions import WrongState
from financing.models import RiskChange
from financing.services._shared import officer_require, proposal_confirmed_require, proposal_record
from merchants.bank_details import (
    BankDetails,
    account_mask,
    bank_details_validate,
    bank_number_seal,
)
from merchants.exceptions import BankDetailsInvalid
from merchants.models import BankAccount, Merchant
from merchants.team import owner_require

PROPOSE_PERMISSION = "merchants.add_bankaccount"


def bank_account_propose(
    *,
    merchant: Merchant,
    holder_name: str,
    iban: str = "",
    account_number: str = "",
    bic: str = "",
    officer: User,
    reason: str,
    now: datetime,
) -> RiskChange:
    """Propose ``merchant``'s new account, for a different senior officer to confirm.

    :raises NotPermitted: the officer may not propose bank accounts.
    :raises WrongState: the details are not valid (the reason never repeats the number), no
        holder or reason, or a change of this merchant's account is already proposed.
    """
    officer_require(officer, PROPOSE_PERMISSION)
    try:
        details = bank_details_validate(iban=iban, account_number=account_number, bic=bic)
    except BankDetailsInvalid as invalid:
        raise WrongState(str(invalid)) from None
    return _proposal_record(merchant, holder_name, details, officer, reason, now)


def bank_account_request(
    *, merchant: Merchant, holder_name: str, iban: str, owner: User, now: datetime
) -> RiskChange:
    """Propose ``merchant``'s new account on its owner's word (the portal), for a senior
    officer to confirm once the bank has checked it with the merchant.

    :raises NotAnOwner: ``owner`` is not an owner of ``merchant``.
    :raises BankDetailsInvalid: the IBAN is not valid (the message never repeats it).
    :raises WrongState: no holder, or a change of this merchant's account is already proposed.
    """
    owner_require(user=owner, merchant=merchant)
    details = bank_details_validate(iban=iban)
    reason = f"Requested by the merchant's owner {owner.get_username()} in the portal."
    return _proposal_record(merchant, holder_name, details, owner, reason, now)


def _proposal_record(
    merchant: Merchant,
    holder_name: str,
    details: BankDetails,
    proposer: User,
    reason: str,
    now: datetime,
) -> RiskChange:
    if not holder_name.strip():
        raise WrongState("Name the account holder as the bank knows them.")
    active = BankAccount.objects.filter(merchant=merchant, status=BankAccount.Status.ACTIVE).first()
    with transaction.atomic():
        account = BankAccount.objects.create(
            merchant=merchant,
            holder_name=holder_name.strip(),
            kind=details.kind,
            iban_sealed=bank_number_seal(details.number),
            bic=details.bic,
            masked=account_mask(details.number),
            status=BankAccount.Status.PROPOSED,
            created_at=now,
        )
        return proposal_record(
            kind=RiskChange.Kind.BANK_ACCOUNT_CHANGE,
            target=f"bank_account:{merchant.pk}",
            officer=proposer,
            reason=reason,
            now=now,
            before={
                "merchant": merchant.legal_name,
                "account": active.masked if active else "",
                "holder": active.holder_name if active else "",
            },
            payload={
                "bank_account": account.pk,
                "account": account.masked,
                "holder": account.holder_name,
                "bic": account.bic,
            },
        )


def bank_account_change_apply(*, change: RiskChange, now: datetime) -> BankAccount:
    """Make the proposed account of a confirmed change the merchant's active one, retiring the
    one before; pending payments go to it from the next payment file on.

    :raises WrongState: ``change`` is not a confirmed bank account change, or its account is no
        longer the proposed one.
    """
    proposal_confirmed_require(change, RiskChange.Kind.BANK_ACCOUNT_CHANGE)
    account = BankAccount.objects.select_for_update().get(pk=change.payload["bank_account"])
    if account.status != BankAccount.Status.PROPOSED:
        raise WrongState(f"The account {account.masked} is {account.status}, not proposed.")
    # Retire first: one active account per merchant is a partial unique index.
    BankAccount.objects.filter(
        merchant_id=account.merchant_id, status=BankAccount.Status.ACTIVE
    ).update(status=BankAccount.Status.RETIRED)
    account.status = BankAccount.Status.ACTIVE
    account.save(update_fields=["status"])
    return account


def bank_account_change_discard(*, change: RiskChange, now: datetime) -> None:
    """End the proposed account of a rejected change as ``rejected``: it never pays anyone."""
    if change.kind != RiskChange.Kind.BANK_ACCOUNT_CHANGE:
        raise WrongState("Only a bank account change has an account to discard.")
    BankAccount.objects.filter(
        pk=change.payload["bank_account"], status=BankAccount.Status.PROPOSED
    ).update(status=BankAccount.Status.REJECTED)
