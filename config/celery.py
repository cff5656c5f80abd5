"""The Celery app. Tasks live in each app's tasks.py and are discovered from INSTALLED_APPS."""

import logging.config
import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging
from django_structlog.celery.steps import DjangoStructLogInitStep

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("chainfin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Binds the publishing request's id (sent in the task's headers) to the task's log lines.
app.steps["worker"].add(DjangoStructLogInitStep)


@setup_logging.connect
def _logging_from_settings(*, logfile: str | None = None, **kwargs: Any) -> None:
    # Celery would otherwise install its own plain handlers; workers log like the web processes,
    # to --logfile when given one (the demo's worker.log and beat.log).
    from django.conf import settings

    config = dict(settings.LOGGING)
    if logfile:
        handler = {"class": "logging.FileHandler", "filename": logfile, "formatter": "structured"}
        config["handlers"] = {**config["handlers"], "console": handler}
    logging.config.dictConfig(config)
