"""Signed checkpoints (c2sp.org/tlog-checkpoint) and the witnesses' cosignatures of them."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from django.conf import settings
from django.db import IntegrityError, transaction

from ledger.exceptions import CosignatureRefused
from ledger.log.notes import Signer, SigningKeyInvalid
from ledger.models import Cosignature, LogCheckpoint, Witness
from ledger.verify import (
    ALG_COSIGNATURE,
    Checkpoint,
    VerificationError,
    Verifier,
    note_parse,
    signature_verify,
)


@cache
def _signer(encoded: str) -> Signer:
    return Signer.parse(encoded)


def log_signer() -> Signer:
    """The bank's log key, from the environment (settings.CHAINFIN_LOG_SIGNING_KEY).

    :raises SigningKeyInvalid: it is missing or malformed.
    """
    if not settings.CHAINFIN_LOG_SIGNING_KEY:
        raise SigningKeyInvalid("CHAINFIN_LOG_SIGNING_KEY is not set: checkpoints cannot be signed")
    return _signer(settings.CHAINFIN_LOG_SIGNING_KEY)


def log_verifier() -> Verifier:
    """The bank's published verifier key: what witnesses and the offline verifier trust."""
    return log_signer().verifier


def checkpoint_sign(*, size: int, root: bytes, now: datetime) -> LogCheckpoint:
    """Sign and store the checkpoint of the tree of ``size`` and ``root``; its origin is the
    key's name, as c2sp.org/tlog-checkpoint recommends.

    :raises SigningKeyInvalid: the bank's log key is missing or malformed.
    """
    signer = log_signer()
    text = Checkpoint(signer.name, size, root).text
    note = text + "\n" + signer.sign_note(text).line
    return LogCheckpoint.objects.create(tree_size=size, root_hash=root, note=note, signed_at=now)


def checkpoint_note(checkpoint: LogCheckpoint, cosignatures: list[Cosignature]) -> str:
    """The checkpoint as served: the bank's note with every stored cosignature line appended."""
    return checkpoint.note + "".join(c.line for c in cosignatures)


def witness_register(*, name: str, vkey: str, party: str, now: datetime) -> Witness:
    """Register a witness's cosigner key (type 0x04) under its key name.

    :raises VerificationError: the key is malformed, not a cosigner key, or not named ``name``.
    """
    verifier = Verifier.parse(vkey)
    if verifier.alg != ALG_COSIGNATURE or verifier.name != name:
        raise VerificationError("a witness registers a cosigner key (type 0x04) of its own name")
    witness, _ = Witness.objects.update_or_create(
        name=name, defaults={"vkey": verifier.vkey, "party": party, "registered_at": now}
    )
    return witness


def cosignature_add(*, tree_size: int, line: str, now: datetime) -> Cosignature:
    """Store a witness's cosignature of the checkpoint at ``tree_size``, once it verifies.

    A repeated cosignature by the same witness returns the stored one.

    :raises CosignatureRefused: no such checkpoint, an unknown witness, or a signature that
        does not verify over that checkpoint.
    """
    checkpoint = LogCheckpoint.objects.filter(tree_size=tree_size).first()
    if checkpoint is None:
        raise CosignatureRefused(f"No checkpoint at tree size {tree_size}.")
    try:
        (signature,) = note_parse("x\n\n" + line.rstrip("\n") + "\n").signatures
    except (VerificationError, ValueError) as exc:
        raise CosignatureRefused("Not one note signature line.") from exc
    witness = next(
        (
            w
            for w in Witness.objects.filter(name=signature.name)
            if Verifier.parse(w.vkey).key_id == signature.key_id
        ),
        None,
    )
    if witness is None:
        raise CosignatureRefused(f"No witness {signature.name!r} with that key is registered.")
    text = note_parse(checkpoint.note).text
    try:
        timestamp = signature_verify(Verifier.parse(witness.vkey), text, signature)
    except VerificationError as exc:
        raise CosignatureRefused(str(exc)) from exc
    assert timestamp is not None  # a 0x04 key's signatures are timestamped
    try:
        with transaction.atomic():
            return Cosignature.objects.create(
                witness=witness,
                checkpoint=checkpoint,
                line=signature.line,
                cosigned_at=datetime.fromtimestamp(timestamp, UTC),
                received_at=now,
            )
    except IntegrityError:  # this witness cosigned this checkpoint before
        return Cosignature.objects.get(witness=witness, checkpoint=checkpoint)
