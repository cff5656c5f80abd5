"""Domain errors of the parties. One base class; callers turn them into their own refusals."""

from __future__ import annotations


class PartyError(Exception):
    """Base class for every refusal the parties' services make."""

    code = "party_error"


class MerchantNotActive(PartyError):
    """The merchant is suspended or closed, so it may not be given new API credentials."""

    code = "merchant_not_active"

    def __init__(self, *, public_id: str, status: str) -> None:
        self.public_id, self.status = public_id, status
        super().__init__(
            f"Merchant {public_id} is {status}; API keys are issued to active merchants only."
        )


class BankDetailsInvalid(PartyError):
    """An IBAN, local account number or BIC that is not valid."""

    code = "bank_details_invalid"


class NotAnOwner(PartyError):
    """Only an owner of the merchant manages its team, bank account and API credentials."""

    code = "not_an_owner"


class LastOwner(PartyError):
    """The change would leave the merchant without an owner."""

    code = "last_owner"


class MemberNotFound(PartyError):
    """No such membership of this merchant (another merchant's id is not found either)."""

    code = "member_not_found"


class MemberAlreadyAdded(PartyError):
    """The person is a member of this merchant already."""

    code = "member_already_added"


class MemberEmailRefused(PartyError):
    """The address belongs to bank staff, or to several sign-ins, so it cannot be added."""

    code = "member_email_refused"
