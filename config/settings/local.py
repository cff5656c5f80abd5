"""The embedded demo: SQLite and a filesystem broker, no servers needed.

DATABASE_URL and CELERY_BROKER_URL switch to PostgreSQL and Redis.
"""

import os
from pathlib import Path

# CHAINFIN_DEMO_DIR (set by `make demo DEMO_DIR=…`) lets a second demo, or a test, run beside.
DEMO_DIR = Path(
    os.environ.get("CHAINFIN_DEMO_DIR") or Path(__file__).resolve().parent.parent.parent / ".demo"
)
from config.settings.refusals import DEMO_SEALING_KEY, DEMO_SECRET_KEY  # noqa: E402

os.environ.setdefault("DJANGO_SECRET_KEY", DEMO_SECRET_KEY)
os.environ.setdefault("CHAINFIN_SEALING_KEYS", DEMO_SEALING_KEY)
os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{DEMO_DIR / 'chainfin.sqlite3'}")
os.environ.setdefault("CELERY_BROKER_URL", "filesystem://")

from config.settings.base import *  # noqa: E402,F403
from config.settings.base import CELERY_BROKER_URL, LOGGING  # noqa: E402

# The demo seeds and totp_code run only here (config/demo_only.py).
CHAINFIN_DEMO = True

if CELERY_BROKER_URL == "filesystem://":
    _queue = DEMO_DIR / "broker"
    for _folder in ("queue", "processed", "control"):
        (_queue / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue / "queue"),
        "data_folder_out": str(_queue / "queue"),
        "processed_folder": str(_queue / "processed"),
        "store_processed": False,
        "control_folder": str(_queue / "control"),
    }

from config.settings.base import CHAINFIN_LOG_SIGNING_KEY  # noqa: E402

# The demo's log signing key: generated once per demo directory and kept beside its database,
# so checkpoints stay verifiable across restarts. Never a production key.
if not CHAINFIN_LOG_SIGNING_KEY:
    from ledger.log.notes import Signer

    _key_file = DEMO_DIR / "log-signing.key"
    if not _key_file.exists():
        DEMO_DIR.mkdir(parents=True, exist_ok=True)
        _key_file.write_text(Signer.generate("chainfin.demo/log").encoded + "\n")
        _key_file.chmod(0o600)
    CHAINFIN_LOG_SIGNING_KEY = _key_file.read_text().strip()

from django.utils.log import DEFAULT_LOGGING  # noqa: E402

# The demo's witness (config/demo.py) polls the checkpoint every second; its own log says what
# it got, and the console keeps the requests someone is watching for.
LOGGING["filters"] = {
    "witness_polls": {"()": "config.logs.PollsLeftOut", "path": "/api/v1/checkpoint"}
}
LOGGING["handlers"]["console"]["filters"] = ["witness_polls"]
# runserver's own line for each request, as Django writes it, but through the filter too.
LOGGING["formatters"]["django.server"] = DEFAULT_LOGGING["formatters"]["django.server"]
LOGGING["handlers"]["django.server"] = {
    **DEFAULT_LOGGING["handlers"]["django.server"],
    "filters": ["witness_polls"],
}
LOGGING["loggers"]["django.server"] = DEFAULT_LOGGING["loggers"]["django.server"]
