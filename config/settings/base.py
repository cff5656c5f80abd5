"""Settings shared by every environment; everything that differs comes from the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ
from celery.schedules import crontab

from config.logs import logging_config, logging_configure_structlog

# Lets admin and manager classes take type parameters at runtime (ModelAdmin[Merchant]).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("DJANGO_SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])

INSTALLED_APPS = [
    # The officer admin, on a site that demands a verified TOTP device (config/admin_site.py).
    "config.apps.OfficerAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "config.apps.TwoFactorDevicesConfig",  # django_otp.plugins.otp_totp
    "django_prometheus",
    "django_structlog",
    "merchants",
    "ledger",
    "financing",
    "financing.books",
    # The merchant portal (portal/): above financing, the one app that reads all three.
    "portal",
    # Brute-force lockout for every password form (the portal's and the officer admin's).
    "config.apps.SignInAttemptsConfig",  # axes
]

MIDDLEWARE = [
    # Outermost, so its latency covers the whole request; its pair is the last entry.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # A request id on every log line of the request, and on its Celery tasks (below).
    "django_structlog.middlewares.RequestMiddleware",
    "config.observability.ApiLatencyMiddleware",
    "config.observability.ServiceUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # English or Chinese, under /portal/ only: the admin and the API keep one language.
    "portal.middleware.PortalLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(); after authentication
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_env(url: str) -> dict[str, object]:
    """Parse DATABASE_URL; SQLite gets IMMEDIATE transactions so chain appends serialize."""
    config: dict[str, object] = env.db_url_config(url)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    else:
        # Parameters travel apart from the SQL instead of being quoted into it in Python, and
        # statements run repeatedly (the ledger's appends) are prepared once per connection:
        # both measurably cheaper on the append path. Behind a transaction-pooling PgBouncer,
        # set DATABASE_PREPARE_THRESHOLD to 0 to turn preparing off.
        threshold = env.int("DATABASE_PREPARE_THRESHOLD", default=5) or None
        config["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": threshold}
        config.setdefault("CONN_MAX_AGE", 60)
        config["CONN_HEALTH_CHECKS"] = True
    # Transaction boundaries live in services, visibly; never one per request.
    config["ATOMIC_REQUESTS"] = False
    return config


DATABASES = {"default": database_from_env(env("DATABASE_URL"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Officers' second factor: TOTP (RFC 6238) from an authenticator app, enrolled with
# `manage.py totp_enroll`. Authenticator apps show the issuer beside the code; the admin never
# shows a device's secret, so a staff account cannot read another officer's key.
OTP_TOTP_ISSUER = "Chainfin"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# django-axes (checked before the password backend, so a locked account is refused before its
# password is even tried): five failures for one username lock it for 15 minutes from any
# address, so spreading guesses over many addresses does not help; five from one address
# lock that address, so trying one password on many usernames does not either. A success
# resets the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "portal.auth.views.locked_out"
AXES_VERBOSE = False

# Merchant users sign in at the portal; officers at the admin (config/admin_site.py).
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:dashboard"
PORTAL_FROM_EMAIL = env("PORTAL_FROM_EMAIL", default="portal@chainfin.example")

LANGUAGE_CODE = "en"
# The portal's languages (portal/locale); the admin and the API speak English.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
# First, so the portal's own words win over Django's catalogues (its "Filter" is an admin's).
LOCALE_PATHS = [BASE_DIR / "portal" / "locale"]
# English dates as a European merchant reads them (config/formats/en/formats.py says why).
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".static"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "config.api.problems.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
# The base class of each app's domain errors: the exception handler answers each by its code
# (config.api.problems.DOMAIN_PROBLEMS). Named here so the API plumbing imports no app above it.
# The officer home's sections (the admin index), named here so config imports no app.
OFFICER_HOME = "financing.admin.home.officer_home"
API_DOMAIN_ERRORS = (
    "ledger.exceptions.LedgerError",
    "financing.exceptions.FinancingError",
    "merchants.exceptions.PartyError",
)
SPECTACULAR_SETTINGS = {
    "TITLE": "Chainfin marketplace API",
    "DESCRIPTION": (
        "Push orders, invoices (JSON or UBL), logistics events (JSON or EPCIS) and payouts; "
        "every one is appended to the merchant's hash chain and answered with a receipt. "
        "Errors are RFC 9457 problem documents (application/problem+json)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",  # served from our static files: no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several "status" fields have choice sets of their own; a reconciliation job's is named.
    "ENUM_NAME_OVERRIDES": {"ReconJobStatusEnum": ["queued", "running", "done", "refused"]},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.openapi.require_request_bodies",
    ],
    "EXTENSIONS_INFO": {},
}

# API limits. The body cap covers 1,000 events with room; XML documents have their own 1 MiB.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=4 * 1024 * 1024)
# How stale an API key's "last used" may be: each process writes it at most this often per key.
API_KEY_LAST_USED_EVERY_SECONDS = env.float("API_KEY_LAST_USED_EVERY_SECONDS", default=300.0)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=6000)

# Replay protection and rate limits need one shared cache across web workers: Redis in
# production; the single-process demo is fine with local memory.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# The global log (ledger/log/): each sequencer round ends in a checkpoint signed with the bank's
# Ed25519 note key, "PRIVATE+KEY+<origin>+<key id>+<key>" (ledger/log/notes.py; its name is the
# log's origin). Secret, from the environment; the demo and the tests generate their own.
CHAINFIN_LOG_SIGNING_KEY = env("CHAINFIN_LOG_SIGNING_KEY", default="")
LOG_SEQUENCE_EVERY_SECONDS = 1.0
LOG_SEQUENCE_BATCH = 10_000

# Celery: a broker from the environment; the demo runs on kombu's filesystem transport so it
# needs no server (see config/settings/local.py).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
# Redis gives a message a worker took but never acknowledged (acks_late: the worker died) to
# another worker this long after it was taken. Keep it above the longest countdown a task may
# wait in a worker (SETTLEMENT_RETRY_BACKOFF_MAX_MS), or a healthy worker's waiting retry
# is delivered twice: harmless, the tasks are idempotent, but wasted. Settlement does not rely
# on it: its sweep re-sends work still pending after SETTLEMENT_RESEND_AFTER_SECONDS.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=3600)
}
# Workers that share a broker with others (a second deployment, a test) take their own queue.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# Crontab times, not intervals: a restarted beat would otherwise start its 24 hours anew, and
# the verifications run at night, apart from each other and from the sweeps.
# Settlement: how often beat looks for work whose enqueue was lost, how stale it must be,
# how often a transient failure is retried (exponential backoff from, up to), and how long a
# settlement waits for a row lock before that attempt fails and is retried.
SETTLEMENT_SWEEP_SECONDS = env.float("SETTLEMENT_SWEEP_SECONDS", default=15.0)
SETTLEMENT_RESEND_AFTER_SECONDS = env.float("SETTLEMENT_RESEND_AFTER_SECONDS", default=60.0)
SETTLEMENT_RESEND_BATCH = env.int("SETTLEMENT_RESEND_BATCH", default=5000)
SETTLEMENT_MAX_RETRIES = env.int("SETTLEMENT_MAX_RETRIES", default=5)
# Reconciliation: a payment sent this many days ago that no bank statement shows is a break.
RECON_PAYMENT_STATEMENT_DAYS = env.int("RECON_PAYMENT_STATEMENT_DAYS", default=5)
# Bank statement matching records this many matches per transaction (their clearing entries,
# payments booked and breaks closed together); a batch a concurrent run collides with is
# recorded again match by match.
RECON_MATCH_BATCH = env.int("RECON_MATCH_BATCH", default=500)
SETTLEMENT_RETRY_BACKOFF_MS = env.int("SETTLEMENT_RETRY_BACKOFF_MS", default=2_000)
SETTLEMENT_RETRY_BACKOFF_MAX_MS = env.int("SETTLEMENT_RETRY_BACKOFF_MAX_MS", default=300_000)
SETTLEMENT_LOCK_TIMEOUT_MS = env.int("SETTLEMENT_LOCK_TIMEOUT_MS", default=10_000)
# Settlement reports: uploads are kept under REPORT_DIR as <sha256>.report (the worker streams
# them from there; nothing holds a whole report in memory), refused above MAX_BYTES; a job
# writes its breaks and progress every PROGRESS_EVERY lines.
SETTLEMENT_REPORT_DIR = env("SETTLEMENT_REPORT_DIR", default=str(BASE_DIR / "var" / "reports"))
SETTLEMENT_REPORT_MAX_BYTES = env.int("SETTLEMENT_REPORT_MAX_BYTES", default=32 * 1024 * 1024)
SETTLEMENT_REPORT_PROGRESS_EVERY = env.int("SETTLEMENT_REPORT_PROGRESS_EVERY", default=5000)

# Bank files (camt.053/.054 statements, pain.002 status reports) are read whole in the request:
# anything larger is refused before it is parsed.
RECON_XML_MAX_BYTES = env.int("RECON_XML_MAX_BYTES", default=20 * 1024 * 1024)
# The account payments leave from, named as debtor in every pain.001 file.
CHAINFIN_PAYING_NAME = env("CHAINFIN_PAYING_NAME", default="Chainfin Demo Bank")
CHAINFIN_PAYING_IBAN = env("CHAINFIN_PAYING_IBAN", default="DE89370400440532013000")
CHAINFIN_PAYING_BIC = env("CHAINFIN_PAYING_BIC", default="COBADEFFXXX")
# Early warnings (monitoring after funding): the last 30 days against the 90 before them.
# Orders or deliveries falling by more than DROP_BP of their monthly average warn, once that
# average is at least MIN_MONTHLY (a handful of orders a month is noise, not a trend); returns
# or credit notes warn when at least SPIKE_MIN of them rise more than SPIKE_BP above theirs.
# A warning counts in the merchant's risk factors for ACTIVE_DAYS after the day it was seen.
EARLY_WARNING_DROP_BP = env.int("EARLY_WARNING_DROP_BP", default=4000)
EARLY_WARNING_MIN_MONTHLY = env.int("EARLY_WARNING_MIN_MONTHLY", default=3)
EARLY_WARNING_SPIKE_BP = env.int("EARLY_WARNING_SPIKE_BP", default=10_000)
EARLY_WARNING_SPIKE_MIN = env.int("EARLY_WARNING_SPIKE_MIN", default=3)
EARLY_WARNING_ACTIVE_DAYS = env.int("EARLY_WARNING_ACTIVE_DAYS", default=7)

CELERY_BEAT_SCHEDULE = {
    "verify-ledger-daily": {
        "task": "ledger.tasks.ledger_verify",
        "schedule": crontab(minute=15, hour=2),
    },
    "verify-books-daily": {
        "task": "financing.tasks.books_verify_run",
        "schedule": crontab(minute=45, hour=2),
    },
    "overdue-sweep-daily": {
        "task": "financing.tasks.overdue_sweep_run",
        "schedule": crontab(minute=30, hour=1),
    },
    "settlement-sweep": {
        "task": "financing.tasks.settlement_sweep_run",
        "schedule": SETTLEMENT_SWEEP_SECONDS,
    },
    "fee-accrual-daily": {
        "task": "financing.tasks.fee_accrual_run",
        "schedule": crontab(minute=5, hour=1),
    },
    "early-warning-daily": {
        "task": "financing.tasks.early_warning_run",
        "schedule": crontab(minute=0, hour=3),
    },
    "notice-sweep": {
        "task": "financing.tasks.notice_sweep_run",
        "schedule": crontab(minute="*/10"),
    },
    # Seconds, so an interval: crontab stops at minutes. Checkpoints follow ingest within 1 s.
    "log-sequence": {
        "task": "ledger.tasks.log_sequence",
        "schedule": LOG_SEQUENCE_EVERY_SECONDS,
        "options": {"expires": LOG_SEQUENCE_EVERY_SECONDS},
    },
}

# Structured logs (structlog through the standard library, so Django's, Celery's and our own
# loggers come out alike): JSON lines in production, readable lines in the demo. The request id
# from the proxy (X-Request-ID) is bound to every line of the request and travels with the
# Celery tasks it enqueues (django-structlog's task headers).
LOG_FORMAT = env("LOG_FORMAT", default="console")
LOGGING = logging_config(log_format=LOG_FORMAT, level=env("LOG_LEVEL", default="INFO"))
logging_configure_structlog()
DJANGO_STRUCTLOG_CELERY_ENABLED = True
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True

# Health and metrics (config/observability.py). /metrics answers a bearer token when
# METRICS_TOKEN is set, and otherwise only loopback; the proxy serves it to the internal
# network only. A database or broker outage answers 503 with this Retry-After.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS = env.int("SERVICE_UNAVAILABLE_RETRY_AFTER", default=30)
# Load balancers probe over plain HTTP; these must answer there, not redirect to HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

# Set True only by the demo settings: the demo seeds and totp_code refuse to run without it.
CHAINFIN_DEMO = False

# Secrets that must be readable yet never stored in the clear (merchants/credentials.py) are
# sealed with these Fernet keys, newest first: the newest seals, any of them opens. Rotate by
# putting a new key first, running `manage.py reseal_secrets`, then dropping the old one.
CHAINFIN_SEALING_KEYS = env.list("CHAINFIN_SEALING_KEYS", default=[])
# Every sealed column, as app_label.Model.field, for reseal_secrets.
CHAINFIN_SEALED_FIELDS = [
    "merchants.ApiKey.signing_secret_sealed",
    "financing.WebhookEndpoint.secret_sealed",
    "merchants.BankAccount.iban_sealed",
    "financing.PaymentBatch.xml_sealed",
]

# Who stamps entries that the system itself writes (capital flow, rebuilds).
LEDGER_SYSTEM_SOURCE = "chainfin"
# How far in the future an event's occurred_at may lie, for clock skew between systems.
LEDGER_MAX_CLOCK_SKEW_SECONDS = env.int("LEDGER_MAX_CLOCK_SKEW_SECONDS", default=300)

# The lender named in notices of assignment, and where debtors must pay assigned receivables.
CHAINFIN_BANK_NAME = env("CHAINFIN_BANK_NAME", default="Chainfin Demo Bank")
CHAINFIN_COLLECTION_IBAN = env("CHAINFIN_COLLECTION_IBAN", default="DE89370400440532013000")
CHAINFIN_COLLECTION_BIC = env("CHAINFIN_COLLECTION_BIC", default="COBADEFFXXX")
# Notices of assignment to business buyers go by e-mail. The demo prints them on the console;
# production names its SMTP server (EMAIL_HOST, EMAIL_PORT, ...) and EMAIL_BACKEND.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
FINANCING_NOTICE_FROM_EMAIL = env("FINANCING_NOTICE_FROM_EMAIL", default="notices@chainfin.example")
# Notices of assignment: how long one webhook delivery may take, and how often it is retried.
FINANCING_WEBHOOK_TIMEOUT_SECONDS = env.int("FINANCING_WEBHOOK_TIMEOUT_SECONDS", default=10)
FINANCING_WEBHOOK_MAX_RETRIES = env.int("FINANCING_WEBHOOK_MAX_RETRIES", default=8)

# The bank's business day: a quote holds until the end of the day it was given, in this zone,
# and fee days count from the business day the money leaves. Calendar days; no holiday calendar.
CHAINFIN_BUSINESS_TZ = env("CHAINFIN_BUSINESS_TZ", default=TIME_ZONE)
