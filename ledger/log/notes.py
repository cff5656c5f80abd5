"""Signing C2SP notes: the bank's checkpoints (0x01) and witnesses' cosignatures (0x04).

Private keys are written as Go's golang.org/x/mod/sumdb/note does:
``PRIVATE+KEY+<name>+<hex key id>+<base64(signature type || 32-byte Ed25519 seed)>``, so a key
made with the Go tools (``note.GenerateKey``) works here and the other way round. Checking is
``ledger.verify``'s: one implementation, which the offline verifier ships.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.verify import (
    ALG_COSIGNATURE,
    ALG_ED25519,
    NoteSignature,
    Verifier,
    cosigned_message,
    key_id,
)

_PREFIX = "PRIVATE+KEY+"


class SigningKeyInvalid(ValueError):
    """A private key string that is not a note signing key of the wanted type."""


@dataclass(frozen=True)
class Signer:
    name: str
    alg: int
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.alg, self.public_key)

    @property
    def encoded(self) -> str:
        seed = self.private_key.private_bytes_raw()
        material = base64.b64encode(bytes([self.alg]) + seed).decode()
        return f"{_PREFIX}{self.name}+{self.verifier.key_id.hex()}+{material}"

    @classmethod
    def generate(cls, name: str, alg: int = ALG_ED25519) -> Signer:
        return cls(name, alg, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes, alg: int = ALG_ED25519) -> Signer:
        """A key from a 32-byte seed: for tests, whose processes must share one key."""
        return cls(name, alg, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def parse(cls, encoded: str, alg: int = ALG_ED25519) -> Signer:
        """Read a private key string of signature type ``alg``.

        :raises SigningKeyInvalid: malformed, of another type, or its key id does not match.
        """
        if not encoded.startswith(_PREFIX):
            raise SigningKeyInvalid("a signing key starts with PRIVATE+KEY+")
        parts = encoded.strip()[len(_PREFIX) :].split("+", 2)  # base64 may hold "+"
        if len(parts) != 3 or not parts[0]:
            raise SigningKeyInvalid("a signing key is PRIVATE+KEY+<name>+<key id>+<key>")
        name, hex_id, material = parts
        try:
            raw = base64.b64decode(material, validate=True)
        except binascii.Error as exc:
            raise SigningKeyInvalid("the key material is not base64") from exc
        if len(raw) != 33 or raw[0] != alg:
            raise SigningKeyInvalid(f"not an Ed25519 key of signature type {alg:#04x}")
        signer = cls(name, alg, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if key_id(name, alg, signer.public_key).hex() != hex_id.lower():
            raise SigningKeyInvalid("the key id does not match the key")
        return signer

    def sign_note(self, text: str) -> NoteSignature:
        """Sign note ``text`` (ending in a newline) as c2sp.org/signed-note says (type 0x01)."""
        if self.alg != ALG_ED25519:
            raise SigningKeyInvalid("a cosigner key signs cosignatures, not notes")
        return NoteSignature(self.name, self.verifier.key_id, self.private_key.sign(text.encode()))

    def cosign(self, text: str, timestamp: int) -> NoteSignature:
        """Cosign checkpoint note ``text`` at POSIX ``timestamp`` (c2sp.org/tlog-cosignature)."""
        if self.alg != ALG_COSIGNATURE:
            raise SigningKeyInvalid("only a cosigner key (type 0x04) cosigns")
        signature = self.private_key.sign(cosigned_message(text, timestamp))
        return NoteSignature(
            self.name, self.verifier.key_id, struct.pack(">Q", timestamp) + signature
        )
