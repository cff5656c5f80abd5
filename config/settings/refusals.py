"""What the production settings refuse to start with: the demo's and the suite's secrets, a
weak secret key, DEBUG on, a missing sealing key or scrape token.

Kept apart from production.py so a test can ask about any environment without importing the
production settings into the running process.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from ledger.log.notes import Signer, SigningKeyInvalid

# Published in this repository, so worthless as secrets: production refuses every one of them.
DEMO_SECRET_KEY = "demo-only-insecure-key-never-use-in-production"  # noqa: S105
DEMO_SEALING_KEY = "Y2hhaW5maW4gZGVtbyBvbmx5IHNlYWxpbmcga2V5ISE="
TEST_SECRET_KEY = "test-only-insecure-key"  # noqa: S105
TEST_SEALING_KEY = "Y2hhaW5maW4gdGVzdCBvbmx5IHNlYWxpbmcga2V5ISE="
PUBLISHED_SECRETS = frozenset(
    {DEMO_SECRET_KEY, DEMO_SEALING_KEY, TEST_SECRET_KEY, TEST_SEALING_KEY}
)

# The suite's log key (config/settings/test.py) comes from this published seed.
TEST_LOG_KEY_SEED = hashlib.sha256(b"chainfin test-only log key").digest()

# Django's own bar (security.W009): 50 characters, 5 distinct, not its generated insecure key.
_MIN_SECRET_KEY_LENGTH = 50
_MIN_SECRET_KEY_CHARACTERS = 5


def _fernet_key_valid(key: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key.encode())) == 32
    except (binascii.Error, ValueError):
        return False


def _log_key_refusal(log_signing_key: str) -> str | None:
    if not log_signing_key:
        # Without it every sequencer round fails: no checkpoint, nothing for witnesses.
        return (
            "CHAINFIN_LOG_SIGNING_KEY is empty: generate the log's key as the README's"
            " 'Keys and their rotation' says"
        )
    try:
        signer = Signer.parse(log_signing_key)
    except SigningKeyInvalid as exc:
        return f"CHAINFIN_LOG_SIGNING_KEY is not a log signing key: {exc}"
    if signer.public_key == Signer.from_seed(signer.name, TEST_LOG_KEY_SEED).public_key:
        return "CHAINFIN_LOG_SIGNING_KEY is the test suite's published key"
    return None


def production_refusals(
    *,
    secret_key: str,
    debug: bool,
    sealing_keys: list[str],
    log_signing_key: str,
    metrics_token: str,
) -> list[str]:
    """Every reason these values must not run a bank; empty when they may."""
    reasons: list[str] = []
    if secret_key in PUBLISHED_SECRETS:
        reasons.append("DJANGO_SECRET_KEY is the demo's or the test suite's published key")
    elif (
        len(secret_key) < _MIN_SECRET_KEY_LENGTH
        or len(set(secret_key)) < _MIN_SECRET_KEY_CHARACTERS
        or secret_key.startswith("django-insecure-")
    ):
        reasons.append(
            "DJANGO_SECRET_KEY is empty, short or Django's insecure default: use 50+ random"
            " characters (python -c 'import secrets; print(secrets.token_urlsafe(50))')"
        )
    if debug:
        reasons.append("DJANGO_DEBUG is on: it shows stack traces and settings to anyone")
    if not sealing_keys:
        reasons.append(
            "CHAINFIN_SEALING_KEYS is empty: generate a Fernet key as the README's"
            " 'Keys and their rotation' says"
        )
    for position, key in enumerate(sealing_keys, start=1):
        if key in PUBLISHED_SECRETS:
            reasons.append(f"CHAINFIN_SEALING_KEYS key {position} is the demo's or the suite's")
        elif not _fernet_key_valid(key):
            reasons.append(f"CHAINFIN_SEALING_KEYS key {position} is not a Fernet key")
    log_key_refusal = _log_key_refusal(log_signing_key)
    if log_key_refusal is not None:
        reasons.append(log_key_refusal)
    if len(metrics_token) < 32:
        reasons.append("METRICS_TOKEN must be set, 32+ characters: /metrics is not public")
    return reasons
