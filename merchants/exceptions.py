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
