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


class JournalMerchantsMixed(JournalInvalid):
    """The legs are on two merchants' accounts, or on another merchant's than the one named.

    Every entry is one merchant's (or the bank's alone), so that a merchant's transaction
    writes only that merchant's rows of the books: what lets them be distributed by merchant.
    Money between two merchants is two entries, each through the bank's accounts.
    """

    code = "journal_merchants_mixed"

    def __init__(self, *, merchant_ids: list[int]) -> None:
        self.merchant_ids = merchant_ids
        named = ", ".join(str(pk) for pk in merchant_ids)
        super().__init__(
            f"A journal entry is one merchant's; these legs are of merchants {named}."
            " Nothing was written."
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
