"""Evidence bundles: entries with their canonical bodies, inclusion proofs and the checkpoint
they lead to, as ``python -m ledger.verify`` checks them offline (ledger/verify.py)."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from ledger.exceptions import ProofUnavailable
from ledger.log.checkpoints import log_verifier
from ledger.log.proofs import checkpoint_at, checkpoint_served, inclusion_proof
from ledger.models import Entry
from ledger.verify import BUNDLE_FORMAT


def bundle_export(*, entries: Iterable[Entry], tree_size: int | None = None) -> dict[str, Any]:
    """A bundle of ``entries`` (one chain's in seq order links them) proven against the
    checkpoint of ``tree_size`` (the latest when None); entries it does not hold yet are
    listed under ``pending`` by merchant and seq.

    :raises ProofUnavailable: there is no checkpoint (of that size).
    """
    checkpoint = checkpoint_at(tree_size=tree_size)
    if checkpoint is None:
        raise ProofUnavailable("No checkpoint has been signed yet.")
    items, pending = [], []
    for entry in entries:
        merchant = entry.chain.merchant.public_id
        try:
            proof = inclusion_proof(entry=entry, tree_size=checkpoint.tree_size)
        except ProofUnavailable:
            pending.append({"merchant_id": merchant, "seq": entry.seq})
            continue
        items.append(
            {
                "log_index": proof.log_index,
                "body": bytes(entry.body).decode(),
                "hash": entry.hash,
                "inclusion_proof": [base64.b64encode(h).decode() for h in proof.proof],
                "receipt": {"merchant_id": merchant, "seq": entry.seq, "hash": entry.hash},
            }
        )
    return {
        "format": BUNDLE_FORMAT,
        "log_key": log_verifier().vkey,
        "checkpoint": checkpoint_served(checkpoint),
        "entries": items,
        "pending": pending,
    }
