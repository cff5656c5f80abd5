"""API credentials: how keys look, how they are hashed, and how secrets are sealed.

The one owner of sealing: API signing secrets, webhook secrets and anything else that must be
readable yet never stored in the clear go through ``secret_seal`` / ``secret_open``. The keys
are CHAINFIN_SEALING_KEYS, a MultiFernet ring, newest first: the newest seals, any opens, and
``manage.py reseal_secrets`` moves every row (CHAINFIN_SEALED_FIELDS) under the newest, after
which an old key can be dropped. DJANGO_SECRET_KEY seals nothing, so rotating it costs only
sessions (rows sealed before the ring existed open with a key derived from it until they are
resealed: see ``_fernet_from_secret_key``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

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


class SealingKeysMissing(ImproperlyConfigured):
    """CHAINFIN_SEALING_KEYS is empty, so nothing can be sealed or opened."""


def _fernet_from_secret_key(secret_key: str) -> Fernet:
    # Before CHAINFIN_SEALING_KEYS existed, secrets were sealed under a key derived from
    # SECRET_KEY. It stays last in the ring, for opening only, so an upgraded installation reads
    # its old rows until `manage.py reseal_secrets` moves them under the newest sealing key.
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"chainfin api signing secrets"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


@lru_cache(maxsize=4)
def _ring(keys: tuple[str, ...], secret_key: str) -> tuple[Fernet, MultiFernet]:
    if not keys:
        raise SealingKeysMissing(
            "CHAINFIN_SEALING_KEYS is empty: set it to one or more Fernet keys, newest first."
        )
    sealing = [Fernet(key.encode()) for key in keys]
    return sealing[0], MultiFernet([*sealing, _fernet_from_secret_key(secret_key)])


def _keys() -> tuple[Fernet, MultiFernet]:
    """(the newest key, the whole ring) for the settings in force; rotation is a restart."""
    return _ring(tuple(settings.CHAINFIN_SEALING_KEYS), settings.SECRET_KEY)


def secret_seal(secret: str) -> bytes:
    """Seal ``secret`` under the newest key of CHAINFIN_SEALING_KEYS.

    :raises SealingKeysMissing: no sealing key is configured.
    """
    return _keys()[1].encrypt(secret.encode())


def secret_open(sealed: bytes) -> str:
    """Open a sealed secret with whichever key of the ring sealed it.

    :raises cryptography.fernet.InvalidToken: no key of the ring opens it.
    :raises SealingKeysMissing: no sealing key is configured.
    """
    return _keys()[1].decrypt(bytes(sealed)).decode()


def secret_reseal(sealed: bytes) -> bytes | None:
    """The same secret sealed under the newest key, or None if it already is.

    :raises cryptography.fernet.InvalidToken: no key of the ring opens it.
    """
    newest, ring = _keys()
    try:
        newest.decrypt(bytes(sealed))
    except InvalidToken:
        return ring.rotate(bytes(sealed))
    return None
