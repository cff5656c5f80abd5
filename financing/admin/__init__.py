"""The bank officers' financing admin: review queue, maker-checker, facilities, blacklist, exposure.

One module per concern; importing them here registers every admin when Django autodiscovers
``financing.admin``. No form saves a financing row: see ``financing.admin.writes``.
"""

from financing.admin import (
    advances,
    bank_statement_jobs,
    blacklist,
    breaks,
    changes,
    early_warnings,
    facilities,
    home,
    matches,
    merchants,
    money,
    notices,
    receivables,
    recon_jobs,
    settlement,
    settlement_reports,
    suspense,
)

__all__ = [
    "advances",
    "bank_statement_jobs",
    "blacklist",
    "breaks",
    "changes",
    "early_warnings",
    "facilities",
    "home",
    "matches",
    "merchants",
    "money",
    "notices",
    "receivables",
    "recon_jobs",
    "settlement",
    "settlement_reports",
    "suspense",
]
