"""Why a financing action was refused, in terms a merchant, officer or API client can act on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class FinancingError(Exception):
    """Base class; ``code`` is the machine-readable reason an API problem document carries."""

    code = "financing_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AdvanceRefused(FinancingError):
    """Receivables that cannot be financed now, each with its reason codes and messages."""

    code = "advance_refused"

    def __init__(self, message: str, reasons: Mapping[str, Sequence[tuple[str, str]]]) -> None:
        super().__init__(message)
        self.reasons = {ref: list(pairs) for ref, pairs in reasons.items()}


class RequestKeyReused(FinancingError):
    code = "idempotency_key_reused"


class NotPermitted(FinancingError):
    """The officer lacks the permission (an auditor acting, an officer authorizing)."""

    code = "not_permitted"


class MakerCheckerViolation(FinancingError):
    code = "maker_checker"


class WrongState(FinancingError):
    code = "wrong_state"


class ApprovalVoid(FinancingError):
    """What was approved changed before disbursement; the advance needs a fresh approval."""

    code = "approval_void"


class QuoteChanged(FinancingError):
    """The price the merchant named is not the advance's price now; ``terms_hash`` is."""

    code = "quote_changed"

    def __init__(self, message: str, *, terms_hash: str) -> None:
        super().__init__(message)
        self.terms_hash = terms_hash


class FacilityInvalid(FinancingError):
    code = "facility_invalid"


class StatementRefused(FinancingError):
    """A bank statement refused at upload, before any job: what its envelope shows (size,
    encoding, a DTD or entity, another namespace) is wrong; ``message`` says precisely what."""

    code = "file_refused"

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        if too_large:
            self.code = "file_too_large"
