"""Bank account numbers: validated, normalised and masked. The number itself is sealed by
``merchants.credentials`` before it is stored; only the mask is ever shown or logged."""

from __future__ import annotations

import re
from dataclasses import dataclass

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from merchants import credentials
from merchants.exceptions import BankDetailsInvalid

_LOCAL_ACCOUNT_RE = re.compile(r"^[A-Z0-9]{4,34}$")


@dataclass(frozen=True)
class BankDetails:
    """A validated account: ``kind`` 'iban' or 'local', the normalised number and its BIC."""

    kind: str
    number: str
    bic: str

    def __repr__(self) -> str:  # never the number, even in a traceback's locals
        return f"BankDetails(kind={self.kind!r}, masked={account_mask(self.number)!r})"


def bank_details_validate(
    *, iban: str = "", account_number: str = "", bic: str = ""
) -> BankDetails:
    """An IBAN (checksum, length and bank code per country, by schwifty), or a local account
    number with the BIC of its bank.

    :raises BankDetailsInvalid: neither or both given, or the number or BIC is not valid; the
        message never repeats the number.
    """
    bic = re.sub(r"\s+", "", bic).upper()
    if bool(iban.strip()) == bool(account_number.strip()):
        raise BankDetailsInvalid("Give an IBAN, or a local account number with a BIC.")
    if bic:
        try:
            bic = str(BIC(bic))
        except SchwiftyException as error:
            raise BankDetailsInvalid(f"The BIC is not valid: {error}") from None
    if iban.strip():
        try:
            return BankDetails(kind="iban", number=str(IBAN(iban).compact), bic=bic)
        except SchwiftyException as error:
            # schwifty's messages name the rule broken (checksum, length), not the number.
            raise BankDetailsInvalid(f"The IBAN is not valid: {error}") from None
    number = re.sub(r"[\s-]+", "", account_number).upper()
    if not _LOCAL_ACCOUNT_RE.match(number):
        raise BankDetailsInvalid("A local account number has 4 to 34 letters and digits.")
    if not bic:
        raise BankDetailsInvalid("A local account number needs the BIC of its bank.")
    return BankDetails(kind="local", number=number, bic=bic)


def account_mask(number: str) -> str:
    """'DE89 •••• •••• •••• 3000' for an IBAN, '•••• 6789' for another number: the country and
    the last four, enough to recognise an account and never enough to pay one."""
    compact = re.sub(r"\s+", "", number).upper()
    if re.match(r"^[A-Z]{2}[0-9]{2}", compact) and len(compact) >= 12:
        return f"{compact[:4]} •••• •••• •••• {compact[-4:]}"
    return f"•••• {compact[-4:]}"


def bank_number_seal(number: str) -> bytes:
    """``number`` sealed under the newest key of the ring.

    :raises SealingKeysMissing: no sealing key is configured.
    """
    return credentials.secret_seal(number)


def bank_number_open(sealed: bytes) -> str:
    """The account number sealed in ``sealed``: for the payment file, never for a page or log.

    :raises cryptography.fernet.InvalidToken: no key of the ring opens it.
    """
    return credentials.secret_open(sealed)
