"""Tests: PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379 unless the environment says else.

When PostgreSQL is unreachable the suite falls back to SQLite and skips the PostgreSQL-only
tests with a loud notice; with REQUIRE_SERVICES=1 it refuses to run instead.
"""

import os
import socket
import sys
from urllib.parse import urlsplit

from config.settings.refusals import TEST_SEALING_KEY, TEST_SECRET_KEY

os.environ.setdefault("DJANGO_SECRET_KEY", TEST_SECRET_KEY)
os.environ.setdefault("CHAINFIN_SEALING_KEYS", TEST_SEALING_KEY)
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chainfin")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 2).close()
    except OSError:
        return False
    return True


if os.environ["DATABASE_URL"].startswith("postgres") and not _reachable(os.environ["DATABASE_URL"]):
    if os.environ.get("REQUIRE_SERVICES") == "1":
        raise SystemExit(
            f"REQUIRE_SERVICES=1 but PostgreSQL is unreachable at {os.environ['DATABASE_URL']}"
        )
    print(
        "\n" + "!" * 78 + "\n!! PostgreSQL is unreachable: running on SQLite and SKIPPING every"
        " PostgreSQL test.\n" + "!" * 78 + "\n",
        file=sys.stderr,
    )
    os.environ["DATABASE_URL"] = "sqlite:////tmp/chainfin-test-fallback.sqlite3"

if _reachable("redis://127.0.0.1:6379"):
    os.environ.setdefault("CACHE_URL", "redis://127.0.0.1:6379/14")
elif os.environ.get("REQUIRE_SERVICES") == "1":
    raise SystemExit("REQUIRE_SERVICES=1 but Redis is unreachable at 127.0.0.1:6379")

from config.settings.base import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The suite seeds demo data in many places; tests/config/test_demo_only.py turns this off to
# prove the seeds and totp_code refuse outside the demo.
CHAINFIN_DEMO = True

# One test database per pytest process, so parallel runs on one machine never drop each other's.
DATABASES["default"]["TEST"] = {"NAME": f"test_chainfin_{os.getpid()}"}  # noqa: F405
# Counters and replay marks of one run must not leak into the next run's fresh database ids.
CACHES["default"]["KEY_PREFIX"] = f"test{os.getpid()}"  # noqa: F405

from config.settings.base import CHAINFIN_LOG_SIGNING_KEY  # noqa: E402

# The tests' log signing key (checkpoints are signed in tests as anywhere else): one fixed key,
# so the workers a test starts sign with the key the test checks.
if not CHAINFIN_LOG_SIGNING_KEY:
    from config.settings.refusals import TEST_LOG_KEY_SEED
    from ledger.log.notes import Signer

    CHAINFIN_LOG_SIGNING_KEY = Signer.from_seed("chainfin.test/log", TEST_LOG_KEY_SEED).encoded
