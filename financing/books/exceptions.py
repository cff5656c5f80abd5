"""Domain errors of the books. One base class; every refusal leaves nothing written."""

from __future__ import annotations


class BooksError(Exception):
    """Base class for every refusal the books make."""

    code = "books_error"


class AccountInvalid(BooksError):
    """An account cannot be opened as asked: unknown kind, not an ISO 4217 currency, bad code."""

    code = "account_invalid"


class AccountCodeClash(BooksError):
    """An account with this code exists with another kind, currency or merchant."""

    code = "account_code_clash"

    def __init__(self, *, code: str, existing: str, requested: str) -> None:
        self.account_code = code
        super().__init__(
            f"Account {code!r} exists as {existing}; it cannot be opened as {requested}."
        )


class JournalInvalid(BooksError):
    """A journal entry that cannot be posted as asked; nothing was written."""

    code = "journal_invalid"


class JournalLegsTooFew(JournalInvalid):
    """A journal entry needs at least two legs: money leaves one account and enters another."""

    code = "journal_legs_too_few"


class JournalLegZero(JournalInvalid):
    """A leg moves nothing; a zero posting would only hide which accounts an entry touches."""

    code = "journal_leg_zero"


class JournalUnbalanced(JournalInvalid):
    """The legs do not sum to zero in a currency."""

    code = "journal_unbalanced"

    def __init__(self, *, currency: str, total_minor: int) -> None:
        self.currency = currency
        self.total_minor = total_minor
        super().__init__(
            f"The legs do not balance in {currency}: they sum to {total_minor} minor units, not 0."
        )


class JournalCurrencyMismatch(JournalInvalid):
    """A leg's account is held in another currency than the one the caller believes."""

    code = "journal_currency_mismatch"

    def __init__(self, *, account_code: str, stated: str, actual: str) -> None:
        self.account_code = account_code
        super().__init__(
            f"Account {account_code!r} is held in {actual}, not {stated}; nothing was written."
        )


class JournalKeyReused(BooksError):
    """The idempotency key was already used for an entry with other legs."""

    code = "journal_key_reused"

    def __init__(self, *, key: str) -> None:
        self.key = key
        super().__init__(
            f"Journal key {key!r} was already used for an entry with other legs;"
            " nothing was written."
        )
