"""What operations sees: a 503 when a dependency is down, and the API's latency by route.

A database, cache or broker outage is not a bug in the request: the client should come back
later, so it gets 503 with Retry-After (problem+json under /api/), never a 500, a stack trace or
a business figure. The failure is logged once, by django-structlog's request line, which
carries the request id, the status the client got and the dependency that failed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import structlog
from django.conf import settings
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django_structlog import signals as request_log_signals
from kombu.exceptions import OperationalError as BrokerOperationalError
from prometheus_client import Histogram
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.api.problems import problem_response

# Which dependency an exception means is down; the first match names it in the log.
_UNAVAILABLE: tuple[tuple[str, tuple[type[BaseException], ...]], ...] = (
    ("database", (DatabaseOperationalError, DatabaseInterfaceError)),
    ("cache", (RedisConnectionError, RedisTimeoutError)),
    ("broker", (BrokerOperationalError,)),
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

API_LATENCY = Histogram(
    "chainfin_api_request_duration_seconds",
    "Marketplace and merchant API requests, by route pattern, method and status class.",
    ["route", "method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def unavailable_dependency(exc: BaseException) -> str | None:
    """'database', 'cache' or 'broker' when ``exc`` says that dependency is down, else None."""
    for name, kinds in _UNAVAILABLE:
        if isinstance(exc, kinds):
            return name
    return None


def service_unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: problem+json for the API, a short page for people."""
    retry_after = str(settings.SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS)
    if request.path.startswith("/api/"):
        return problem_response(
            503,
            "service_unavailable",
            "Service unavailable",
            "A service Chainfin depends on is unavailable; retry after the given delay.",
            headers={"Retry-After": retry_after},
        )
    response = HttpResponse(
        "<!doctype html><title>Chainfin: unavailable</title>"
        "<h1>Temporarily unavailable</h1><p>Please try again in a minute.</p>",
        status=503,
    )
    response["Retry-After"] = retry_after
    return response


def unavailable_from_current_exception(request: HttpRequest) -> HttpResponse | None:
    """For handler500: the 503 when the exception being handled is an outage, else None.

    A failure inside a middleware never reaches ``process_exception``; Django calls the 500
    handler inside its ``except`` block, so the exception is still current there.
    """
    exc = sys.exc_info()[1]
    if exc is None or unavailable_dependency(exc) is None:
        return None
    return service_unavailable_response(request)


@receiver(request_log_signals.bind_extra_request_failed_metadata)
def _outage_in_a_middleware(
    sender: object, exception: Exception, log_kwargs: dict[str, object], **kwargs: object
) -> None:
    """Make django-structlog's one ``request_failed`` line tell an outage's truth.

    An exception raised in a middleware reaches django-structlog through Django's
    got_request_exception, which it logs as a 500; handler500 answers an outage with 503, so
    the line says 503 and names the dependency, as the view path's ``request_finished`` does.
    """
    dependency = unavailable_dependency(exception)
    if dependency is not None:
        log_kwargs["code"] = 503
        log_kwargs["unavailable"] = dependency


class ServiceUnavailableMiddleware:
    """Turn a view's database, cache or broker outage into a 503 with Retry-After."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        dependency = unavailable_dependency(exception)
        if dependency is None:
            return None
        # No log line of our own: django-structlog's request_finished (level error for a 5xx)
        # already carries the request id; these make it say why.
        structlog.contextvars.bind_contextvars(
            unavailable=dependency, error=f"{type(exception).__name__}: {exception}"[:300]
        )
        return service_unavailable_response(request)


class ApiLatencyMiddleware:
    """Observe each API request's duration under its route pattern (bounded label values)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        # The pattern, never the path: a path holds ids, and one label value per id would
        # grow the metric without bound.
        route = match.route if match is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        API_LATENCY.labels(
            route=route, method=method, status=f"{response.status_code // 100}xx"
        ).observe(time.perf_counter() - started)
        return response
