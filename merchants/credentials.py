"""API credentials: how keys look, how they are hashed, and how signing secrets are sealed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

KEY_PREFIX = "cfk_"
SECRET_PREFIX = "cfs_"  # noqa: S105  (a prefix that marks secrets in logs, not a secret)


def key_generate() -> tuple[str, str]:
    """Return a new (prefix, api_key). The prefix is public and indexes the key."""
    prefix = KEY_PREFIX + secrets.token_hex(6)
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


def key_prefix(api_key: str) -> str:
    """'cfk_<12 hex>' of 'cfk_<12 hex>_<secret>'; the secret part may itself contain '_'."""
    return "_".join(api_key.split("_", 2)[:2])


def key_hash(api_key: str) -> str:
    # The key carries 256 random bits, so a plain SHA-256 cannot be brute-forced; a slow password
    # hash would only slow down every request.
    return hashlib.sha256(api_key.encode()).hexdigest()


def key_matches(api_key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(key_hash(api_key), stored_hash)


def secret_generate() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@cache
def _box() -> Fernet:
    # Derived from SECRET_KEY so no second secret needs managing; rotating SECRET_KEY therefore
    # means issuing new API keys (documented in the README).
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"chainfin api signing secrets"
    ).derive(settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def secret_seal(secret: str) -> bytes:
    return _box().encrypt(secret.encode())


def secret_open(sealed: bytes) -> str:
    return _box().decrypt(bytes(sealed)).decode()
