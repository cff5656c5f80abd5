"""Prometheus metrics: `/metrics`, and the registry of figures read from the database.

Process metrics (requests, latencies, Django's own) come from django-prometheus and
``config.observability``; under gunicorn each worker writes them to PROMETHEUS_MULTIPROC_DIR and
a scrape adds them up. Business figures (entries ingested, verification results, dead letters,
settlement lag, open breaks) are read from the tables at scrape time instead, so every worker
reports the same number and a restart loses nothing. An app adds one with::

    @gauge_source(name="chainfin_settlement_lag_seconds", documentation="...", labels=("currency",))
    def settlement_lag() -> Iterable[tuple[tuple[str, ...], float]]:
        yield ("EUR",), 42.0

(at import time of a module its AppConfig.ready() imports). A source that fails is reported as
``chainfin_metric_source_up{source="…"} 0`` rather than failing the scrape.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

Reading = tuple[tuple[str, ...], float]
logger = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Source:
    name: str
    documentation: str
    labels: tuple[str, ...]
    kind: Literal["gauge", "counter"]
    read: Callable[[], Iterable[Reading]]


_SOURCES: dict[str, _Source] = {}


def gauge_source(
    *,
    name: str,
    documentation: str,
    labels: tuple[str, ...] = (),
    kind: Literal["gauge", "counter"] = "gauge",
) -> Callable[[Callable[[], Iterable[Reading]]], Callable[[], Iterable[Reading]]]:
    """Register a function that yields (label values, value) for the metric ``name``.

    ``kind="counter"`` for a figure that only grows (exposed as ``name_total``).

    :raises ValueError: another source already has this name.
    """

    def register(read: Callable[[], Iterable[Reading]]) -> Callable[[], Iterable[Reading]]:
        if name in _SOURCES and _SOURCES[name].read is not read:
            raise ValueError(f"metric source {name!r} is registered twice")
        _SOURCES[name] = _Source(name, documentation, labels, kind, read)
        return read

    return register


class _SourcesCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "chainfin_metric_source_up", "1 if the source could be read.", labels=["source"]
        )
        for source in _SOURCES.values():
            family_class = CounterMetricFamily if source.kind == "counter" else GaugeMetricFamily
            family = family_class(source.name, source.documentation, labels=list(source.labels))
            try:
                for label_values, value in source.read():
                    family.add_metric(list(label_values), value)
            except Exception:  # a broken source must not take the other metrics down
                logger.exception("metric_source_failed", source=source.name)
                up.add_metric([source.name], 0)
                continue
            up.add_metric([source.name], 1)
            yield family
        yield up


_SOURCES_REGISTRY = CollectorRegistry(auto_describe=False)
_SOURCES_REGISTRY.register(_SourcesCollector())


def _process_metrics() -> bytes:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest(REGISTRY)
    # Each gunicorn worker (and Celery process) writes its own files; add them all up.
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        offered = request.headers.get("Authorization", "")
        return hmac.compare_digest(offered.encode(), f"Bearer {token}".encode())
    # No token (the demo): only from this machine. Behind the proxy every request comes from
    # loopback, so production requires the token (config/settings/production.py).
    return ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "0.0.0.0").is_loopback  # noqa: S104


def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition; a bearer token (METRICS_TOKEN), else loopback only."""
    if not _allowed(request):
        response = HttpResponse("metrics need the scrape token\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body = _process_metrics() + generate_latest(_SOURCES_REGISTRY)
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
