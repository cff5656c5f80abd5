"""Production: every secret and address must come from the environment; none has a default.

It refuses to start (ImproperlyConfigured) with the demo's or the suite's secrets, a weak
secret key, DEBUG on, no sealing key, no log signing key or no scrape token
(config/settings/refusals.py).
`manage.py check --deploy` with these settings is clean.
"""

from django.core.exceptions import ImproperlyConfigured

from config.logs import logging_config
from config.settings.base import *  # noqa: F403
from config.settings.base import (
    CHAINFIN_LOG_SIGNING_KEY,
    CHAINFIN_SEALING_KEYS,
    METRICS_TOKEN,
    SECRET_KEY,
    env,
)
from config.settings.refusals import production_refusals

_refusals = production_refusals(
    secret_key=SECRET_KEY,
    # Read again rather than forced off: a DJANGO_DEBUG=true left in a unit file is a mistake
    # to report, not to paper over.
    debug=env.bool("DJANGO_DEBUG", default=False),
    sealing_keys=CHAINFIN_SEALING_KEYS,
    log_signing_key=CHAINFIN_LOG_SIGNING_KEY,
    metrics_token=METRICS_TOKEN,
)
if _refusals:
    raise ImproperlyConfigured(
        "Refusing to start with the production settings:\n  - " + "\n  - ".join(_refusals)
    )

DEBUG = False
CHAINFIN_DEMO = False  # never from the environment: the demo seeds must not reach production
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
# The log's sequencer has a worker of its own (config/serve.py), apart from settlement's.
CELERY_TASK_ROUTES = {"ledger.tasks.log_sequence": {"queue": "log"}}
CACHES = {"default": env.cache_url("CACHE_URL")}  # shared by all web workers: Redis
# Notices of assignment reach business buyers by e-mail: never the console in production.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
# One JSON object per line, for the log shipper.
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING = logging_config(log_format=LOG_FORMAT, level=env("LOG_LEVEL", default="INFO"))

# nginx (config/deploy/nginx.conf.template) terminates TLS or sits behind the terminator, and
# sets X-Forwarded-Proto from what it saw; gunicorn listens on loopback only.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The sign-in lockout counts failures per client address: the one nginx appended last to
# X-Forwarded-For (one proxy in front of gunicorn), never one a client wrote itself.
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=1)
AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
