"""/healthz, /readyz, 503 with Retry-After for outages, /metrics and its sources, request ids."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from unittest import mock

import pytest
import structlog
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from config import health, metrics
from config.celery import app as celery_app
from ledger.models import LedgerVerification
from ledger.services import entry_append
from ledger.tasks import ledger_verify
from tests.api.conftest import seller_id, signed_client
from tests.conftest import celery_worker, order_placed

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_anything(client, django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_readyz_is_ready_when_everything_answers(client, redis_url) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "cache": "ok",
        "broker": "ok",
    }


def test_readyz_is_503_without_the_broker(client, monkeypatch) -> None:
    for name in ("broker_url", "broker_write_url"):
        monkeypatch.setitem(celery_app.conf, name, "redis://127.0.0.1:1/0")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "failed"
    assert response["Retry-After"] == "30"


def test_readyz_is_503_with_unapplied_migrations(client, monkeypatch) -> None:
    monkeypatch.setattr(health, "_migrated", [])
    with mock.patch.object(MigrationExecutor, "migration_plan", return_value=["0099_pending"]):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "failed"


@pytest.fixture
def database_down() -> Iterator[None]:
    fault = OperationalError("could not connect to server: Connection refused")
    with mock.patch.object(CursorWrapper, "execute", side_effect=fault):
        yield


def test_a_database_fault_in_the_api_is_503_problem_with_retry_after(database_down) -> None:
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/receivables", HTTP_AUTHORIZATION="Bearer cfk_x_y")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "30"
    assert json.loads(response.content)["code"] == "service_unavailable"


def test_a_database_fault_on_a_page_is_503_without_a_trace(staff_client, database_down) -> None:
    staff_client.raise_request_exception = False
    response = staff_client.get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert b"Traceback" not in response.content
    assert b"Connection refused" not in response.content


@pytest.mark.parametrize("path", ["/api/v1/receivables", "/"])
def test_an_outage_met_in_a_middleware_is_one_503_log_line_with_the_request_id(
    caplog, path: str
) -> None:
    # The session middleware meets the database first on a signed-in request; a failure there
    # never reaches a view's process_exception, so the 500 handler answers it.
    fault = OperationalError("could not connect to server: Connection refused")
    client = Client(raise_request_exception=False)
    with (
        mock.patch.object(SessionMiddleware, "process_request", side_effect=fault),
        caplog.at_level(logging.INFO),
    ):
        response = client.get(path, HTTP_X_REQUEST_ID="req-outage-1")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    errors = [r.msg for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert isinstance(errors[0], dict)
    assert errors[0]["request_id"] == "req-outage-1"
    assert errors[0]["code"] == 503
    assert errors[0]["unavailable"] == "database"


def test_the_request_id_from_the_proxy_is_on_the_request_log(client, caplog) -> None:
    with caplog.at_level(logging.INFO):
        client.get("/healthz", HTTP_X_REQUEST_ID="req-from-nginx")
    finished = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    assert any(
        m.get("event") == "request_finished" and m.get("request_id") == "req-from-nginx"
        for m in finished
    ), finished


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_request_id_travels_into_the_celery_task(redis_url) -> None:
    queue = f"i14-{uuid.uuid4().hex[:8]}"
    request_id = f"req-{uuid.uuid4().hex}"
    with celery_worker(queue, redis_url, LOG_FORMAT="json", LOG_LEVEL="INFO") as output:
        # What django-structlog's middleware binds for a request, then a task enqueued in it.
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            result = ledger_verify.apply_async(queue=queue)
        for _ in range(150):
            if LedgerVerification.objects.exclude(outcome="running").exists():
                break
            time.sleep(0.2)
    lines = [json.loads(line) for line in output[0].splitlines() if line.startswith("{")]
    started = [line for line in lines if line.get("event") == "task_started"]
    assert started, output[0]
    assert started[0]["request_id"] == request_id
    assert started[0]["task_id"] == result.id


# --- /metrics ---------------------------------------------------------------------------------


def test_metrics_need_the_token_when_one_is_set(client, settings) -> None:
    settings.METRICS_TOKEN = "s3cret-token-for-the-scraper-0123456789"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}")
    assert response.status_code == 200


def test_metrics_without_a_token_answer_loopback_only(client, settings) -> None:
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 401


def test_a_scrape_has_process_api_and_business_figures(client, merchant, marketplace, now):
    entry_append(source=marketplace.code, merchant_id=merchant.pk, event=order_placed(), now=now)
    signed_client(marketplace).get(f"/api/v1/merchants/{seller_id(merchant)}/chain")
    text = client.get("/metrics").content.decode()
    assert "django_http_requests_total_by_method_total" in text
    assert 'chainfin_api_request_duration_seconds_count{method="GET",' in text
    assert 'route="api/v1/merchants/<str:seller_id>/chain"' in text
    assert "chainfin_ledger_entries_total 1.0" in text
    assert 'chainfin_dead_letters{kind="assignment_notice"} 0.0' in text
    assert 'chainfin_dead_letters{kind="settlement"} 0.0' in text
    assert 'chainfin_settlement_lag_seconds{measure="oldest_pending"} 0.0' in text
    assert "chainfin_settlement_pending 0.0" in text
    assert "chainfin_suspense_open 0.0" in text
    assert 'chainfin_metric_source_up{source="chainfin_ledger_entries"} 1.0' in text


def test_other_apps_plug_gauges_in_and_a_broken_one_does_not_break_the_scrape(client) -> None:
    @metrics.gauge_source(name="chainfin_test_lag_seconds", documentation="t", labels=("cur",))
    def lag() -> Iterator[tuple[tuple[str, ...], float]]:
        yield ("EUR",), 42.0

    @metrics.gauge_source(name="chainfin_test_broken", documentation="t")
    def broken() -> Iterator[tuple[tuple[str, ...], float]]:
        raise OperationalError("down")

    try:
        text = client.get("/metrics").content.decode()
    finally:
        metrics._SOURCES.pop("chainfin_test_lag_seconds")
        metrics._SOURCES.pop("chainfin_test_broken")
    assert 'chainfin_test_lag_seconds{cur="EUR"} 42.0' in text
    assert 'chainfin_metric_source_up{source="chainfin_test_broken"} 0.0' in text
