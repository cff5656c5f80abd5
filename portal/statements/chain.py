"""The merchant's whole chain as an evidence bundle, built by the one builder there is
(``ledger.log.bundles.bundle_export``, as ``manage.py log_export`` uses it), for anyone to
check offline with ``python -m ledger.verify``."""

from __future__ import annotations

from typing import Any

from ledger.log.bundles import bundle_export
from ledger.log.checkpoints import log_verifier
from ledger.models import Entry
from merchants.models import Merchant


def chain_bundle(*, merchant: Merchant) -> dict[str, Any]:
    """Return the bundle of every entry of the merchant's chain, in seq order, proven against
    the latest signed checkpoint; entries it does not hold yet are listed as pending.

    :raises ProofUnavailable: no checkpoint has been signed yet.
    """
    entries = Entry.objects.filter(chain=merchant.pk).select_related("chain__merchant")
    return bundle_export(entries=entries.order_by("seq").iterator())


def bank_key() -> str:
    """The bank's published verifier key, for the recipe's ``--key``."""
    return log_verifier().vkey
