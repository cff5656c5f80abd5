"""The bank officers' financing admin: review queue, maker-checker, facilities, blacklist, exposure.

One module per concern; importing them here registers every admin when Django autodiscovers
``financing.admin``. No form saves a financing row: see ``financing.admin.writes``.
"""

from financing.admin import (
    advances,
    blacklist,
    breaks,
    changes,
    early_warnings,
    facilities,
    home,
    merchants,
    money,
    notices,
    receivables,
    settlement,
    settlement_reports,
    suspense,
)

__all__ = [
    "advances",
    "blacklist",
    "breaks",
    "changes",
    "early_warnings",
    "facilities",
    "home",
    "merchants",
    "money",
    "notices",
    "receivables",
    "settlement",
    "settlement_reports",
    "suspense",
]
