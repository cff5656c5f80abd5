"""Structured logging: structlog renders every record, ours and the standard library's alike.

Why structlog (with django-structlog): it binds context (the request id, the task id) in
contextvars once and every line carries it, including lines from Django, Celery and libraries
that log through the standard library; django-structlog adds the request middleware and carries
the request id into Celery task headers. One JSON object per line in production (for a log
shipper), readable key=value lines in the demo.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

# Applied to records from structlog loggers and from the standard library alike.
_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
]


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The LOGGING dict: one console handler whose formatter is structlog's, JSON or console."""
    if log_format == "json":
        renderer: Any = structlog.processors.JSONRenderer()
        final: list[Any] = [structlog.processors.dict_tracebacks]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        final = []
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": _SHARED_PROCESSORS,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    *final,
                    renderer,
                ],
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # django-structlog logs each request once (request_finished / request_failed, with
            # the request id); Django's own line for the same failure would be a duplicate.
            "django.request": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }


def logging_configure_structlog() -> None:
    """Route structlog loggers through the standard library, so LOGGING decides the output."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


class PollsLeftOut(logging.Filter):
    """Leaves out the lines of ``GET <path>`` requests that did not fail on the server.

    The demo's witness asks for the log's checkpoint every second: three lines a second (the
    request's start and end, and runserver's own line) buried every other request on the
    demo's console. What the witness got is in its own log; a server error still shows.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.request = f"GET {path}"

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):  # structlog's, from django-structlog's middleware
            request, status = record.msg.get("request"), record.msg.get("code", 0)
        elif record.name == "django.server" and isinstance(record.args, tuple) and record.args:
            request = str(record.args[0]).rsplit(" ", 1)[0]  # the request line less its protocol
            status = getattr(record, "status_code", 0)
        else:
            return True
        if not isinstance(request, str) or request.split("?", 1)[0] != self.request:
            return True
        return isinstance(status, int) and status >= 500
