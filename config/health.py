"""Probes for the load balancer and the orchestrator: /healthz (alive) and /readyz (can serve).

/healthz touches nothing: a process that answers is alive, and restarting it because the
database is down would not help. /readyz checks what a request needs (database, Redis cache,
Celery broker, every migration applied) and answers 503 with Retry-After while any is missing,
so traffic goes elsewhere. Neither says more than the names of the checks and ok/failed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse

from config.celery import app as celery_app

logger = structlog.get_logger(__name__)
CHECK_TIMEOUT_SECONDS = 2
# Once every migration is applied it stays so until the next deploy, which restarts us; the
# migration graph is not cheap to load on every probe.
_migrated: list[bool] = []


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "alive"})


def _database() -> None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")


def _migrations() -> None:
    if _migrated:
        return
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise RuntimeError("unapplied migrations")
    _migrated.append(True)


def _cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise RuntimeError("the cache did not keep a value")
    cache.delete(key)


def _broker() -> None:
    with celery_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=CHECK_TIMEOUT_SECONDS)


CHECKS: dict[str, Callable[[], None]] = {
    "database": _database,
    "migrations": _migrations,
    "cache": _cache,
    "broker": _broker,
}


def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as error:  # every failure means "not ready", whatever raised it
            logger.warning("readiness_check_failed", check=name, error=repr(error)[:300])
            results[name] = "failed"
        else:
            results[name] = "ok"
    ready = all(result == "ok" for result in results.values())
    response = JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": results},
        status=200 if ready else 503,
    )
    if not ready:
        response["Retry-After"] = str(settings.SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response
