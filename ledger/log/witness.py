"""A witness of Chainfin's log: fetch the checkpoint, check it extends the last one seen, cosign.

Run by a marketplace or an auditor, apart from the bank (``manage.py witness``). Needs only
the standard library, ``cryptography`` and ``ledger.verify``: what it trusts is the bank's
verifier key it was given and the last checkpoint it kept in its own state file, never the
bank's database. A log that shrinks, forks (same size, another root) or rewrites its past (no
valid consistency proof) raises ``WitnessAlarm``: nothing is cosigned and the state stays at
the last good checkpoint, so every later round alarms again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ledger.log.notes import Signer
from ledger.verify import (
    Checkpoint,
    VerificationError,
    Verifier,
    checkpoint_parse,
    note_parse,
    note_verify,
    verify_consistency,
)


class WitnessAlarm(Exception):
    """The log did something an append-only log cannot: shrink, fork or rewrite its past."""


class LogClient(Protocol):
    def get(self, path: str) -> tuple[int, bytes]: ...

    def post(self, path: str, body: bytes, idempotency_key: str) -> tuple[int, bytes]: ...


@dataclass(frozen=True)
class HttpLogClient:
    """Chainfin's API over HTTP with an API key; POSTs signed as the README describes."""

    base_url: str
    api_key: str
    signing_secret: str
    timeout: float = 10.0

    def _send(self, request: urllib.request.Request) -> tuple[int, bytes]:
        request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            # The URL is the operator's own --url; nothing else comes from outside.
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), bytes(error.read())

    def get(self, path: str) -> tuple[int, bytes]:
        return self._send(urllib.request.Request(self.base_url.rstrip("/") + path))  # noqa: S310

    def post(self, path: str, body: bytes, idempotency_key: str) -> tuple[int, bytes]:
        stamp = str(int(time.time()))
        payload = f"{stamp}.POST.{path}.{hashlib.sha256(body).hexdigest()}".encode()
        digest = hmac.new(self.signing_secret.encode(), payload, hashlib.sha256).hexdigest()
        request = urllib.request.Request(  # noqa: S310
            self.base_url.rstrip("/") + path, data=body, method="POST"
        )
        request.add_header("Content-Type", "application/json")
        request.add_header("Chainfin-Timestamp", stamp)
        request.add_header("Chainfin-Signature", f"v1={digest}")
        request.add_header("Idempotency-Key", idempotency_key)
        return self._send(request)


@dataclass(frozen=True)
class Seen:
    size: int
    root: bytes


def state_read(path: Path) -> Seen | None:
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Seen(int(data["size"]), base64.b64decode(data["root"]))


def state_write(path: Path, seen: Seen) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(
        json.dumps({"size": seen.size, "root": base64.b64encode(seen.root).decode()})
    )
    temporary.replace(path)  # atomic: a crash leaves the old state or the new, never half


def _ok(status: int, body: bytes, what: str) -> bytes:
    if status != 200 and status != 201:
        raise ConnectionError(f"{what}: HTTP {status} {body[:200]!r}")
    return body


def checkpoint_check(
    client: LogClient, log_key: Verifier, seen: Seen | None
) -> tuple[str, Checkpoint]:
    """Fetch the latest checkpoint and check it against ``log_key`` and what was ``seen``.

    :raises WitnessAlarm: it shrank, forked or is inconsistent with ``seen``.
    :raises VerificationError: not signed by the bank's key, or malformed.
    :raises ConnectionError: the API did not answer as it should.
    """
    note = note_parse(_ok(*client.get("/api/v1/checkpoint"), "checkpoint").decode())
    note_verify(note, log_key)
    checkpoint = checkpoint_parse(note.text)
    if checkpoint.origin != log_key.name:
        raise VerificationError(f"checkpoint of origin {checkpoint.origin!r}")
    if seen is None or seen.size == 0:
        return note.text, checkpoint  # the first one seen is trusted on first use
    if checkpoint.size < seen.size:
        raise WitnessAlarm(f"the log shrank from {seen.size} to {checkpoint.size} entries")
    if checkpoint.size == seen.size:
        if checkpoint.root != seen.root:
            raise WitnessAlarm(f"two different trees of size {seen.size}: the log forked")
        return note.text, checkpoint
    path = f"/api/v1/proofs/consistency?first={seen.size}&second={checkpoint.size}"
    status, body = client.get(path)
    if status != 200:
        raise WitnessAlarm(f"no consistency proof from {seen.size} to {checkpoint.size}")
    proof = [base64.b64decode(h) for h in json.loads(body)["proof"]]
    try:
        verify_consistency(
            size1=seen.size,
            size2=checkpoint.size,
            proof=proof,
            root1=seen.root,
            root2=checkpoint.root,
        )
    except VerificationError as exc:
        raise WitnessAlarm(
            f"tree {checkpoint.size} does not extend tree {seen.size} seen before: {exc}"
        ) from exc
    return note.text, checkpoint


def witness_round(
    *, client: LogClient, signer: Signer, log_key: Verifier, state: Path, now: int
) -> Checkpoint | None:
    """One round: check the latest checkpoint, cosign it, post the cosignature, remember it.

    Returns the checkpoint cosigned, None when it was cosigned before.

    :raises WitnessAlarm: see ``checkpoint_check``; nothing is cosigned.
    :raises VerificationError: the checkpoint is not the bank's.
    :raises ConnectionError: the API did not answer as it should.
    """
    seen = state_read(state)
    text, checkpoint = checkpoint_check(client, log_key, seen)
    if seen is not None and seen.size == checkpoint.size and seen.root == checkpoint.root:
        return None
    line = signer.cosign(text, now).line
    body = json.dumps({"tree_size": checkpoint.size, "cosignature": line}).encode()
    key = f"cosign-{signer.name}-{checkpoint.size}"
    _ok(*client.post("/api/v1/checkpoint/cosignatures", body, key), "cosignature")
    state_write(state, Seen(checkpoint.size, checkpoint.root))
    return checkpoint
