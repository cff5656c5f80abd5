"""What a merchant's advances owe against each debtor, and the room left under the bank-wide
debtor limits and a facility's debtor cap: the concentration checks of eligibility and of the
officers' decisions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import connection

from financing.models import Advance, Assignment, Facility
from ledger.sql import placeholders, rows_later
from merchants.models import Merchant


def debtor_exposure(
    merchant: Merchant, *, excluding: Advance | None = None
) -> dict[tuple[str, str], int]:
    """Advance amounts live against each (currency, debtor key) for the merchant."""
    return debtor_exposure_later(merchant, excluding=excluding)()


def debtor_exposure_later(
    merchant: Merchant, *, excluding: Advance | None = None
) -> Callable[[], dict[tuple[str, str], int]]:
    """``debtor_exposure``, read now and loaded when called (``ledger.sql.one_round_trip``)."""
    return _exposure_later("s.merchant_id = %s", [merchant.pk], excluding)


# What counts against a bank-wide debtor limit: advances an officer approved or the bank paid.
# A request alone reserves nothing bank-wide; approvals lock the limit rows and re-check.
BANK_EXPOSED = (Advance.Status.APPROVED, Advance.Status.DISBURSED, Advance.Status.OVERDUE)


def bank_debtor_room(
    debtors: Iterable[tuple[str, str]], *, excluding: Advance | None = None
) -> dict[tuple[str, str], int]:
    """Room left under the bank-wide limit of each (currency, debtor key) that has one.

    Debtors without a limit are left out. Exposure is across all merchants: advances approved
    or outstanding against the debtor, less ``excluding``'s own. The limits are those a
    decision on ``excluding`` holds locked, if it holds every one wanted; else read now.
    """
    wanted = set(debtors)
    if not wanted:
        return {}
    held = excluding.decision_limits if excluding is not None else None
    found = (
        {debtor: held[debtor] for debtor in wanted}
        if held is not None and wanted <= held.keys()
        else _limits_read(wanted)
    )
    limits = {debtor: limit for debtor, limit in found.items() if limit is not None}
    if not limits:
        return {}
    limited = sorted({key for _, key in limits})
    statuses = [status.value for status in BANK_EXPOSED]
    exposure = _exposure_later(
        f"s.debtor_key IN ({placeholders(len(limited))})"
        f" AND a.status IN ({placeholders(len(statuses))})",
        [*limited, *statuses],
        excluding,
    )()
    return {debtor: limit - exposure.get(debtor, 0) for debtor, limit in limits.items()}


def _limits_read(debtors: set[tuple[str, str]]) -> dict[tuple[str, str], int | None]:
    keys = sorted({key for _, key in debtors})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT currency, debtor_key, limit_minor FROM financing_debtorlimit"  # noqa: S608
            f" WHERE debtor_key IN ({placeholders(len(keys))})",  # (placeholders only)
            keys,
        )
        return {(c, k): limit for c, k, limit in cursor.fetchall() if (c, k) in debtors}


def _exposure_later(
    where: str, params: list[Any], excluding: Advance | None
) -> Callable[[], dict[tuple[str, str], int]]:
    """Advance amounts of live assignments matching ``where`` (``s`` the assignment, ``a`` its
    advance), per (currency, debtor key), ``excluding``'s own left out.

    Plain SQL: these run on every verdict, and building the ORM's grouped query cost more than
    twice what running it does.
    """
    live = [status.value for status in Assignment.LIVE]
    others, other_params = "", []
    if excluding is not None:
        others, other_params = " AND s.advance_id <> %s", [excluding.pk]
    sql = (
        "SELECT a.currency, s.debtor_key, SUM(s.advance_minor) FROM financing_assignment s"  # noqa: S608
        " JOIN financing_advance a ON a.id = s.advance_id"
        f" WHERE {where} AND s.status IN ({placeholders(len(live))}){others}"
        " GROUP BY a.currency, s.debtor_key"
    )
    read = rows_later(sql, [*params, *live, *other_params])
    # SUM of a bigint is a numeric on PostgreSQL: an exact integer, as int.
    return lambda: {(currency, key): int(total) for currency, key, total in read()}


def debtor_cap(facility: Facility) -> int:
    return facility.limit_minor * facility.debtor_cap_bp // 10_000
