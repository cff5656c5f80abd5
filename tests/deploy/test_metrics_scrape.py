"""Prometheus scrapes /metrics through nginx with the token; gunicorn's workers add up."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.deploy.conftest import METRICS_TOKEN


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


@pytest.mark.slow
def test_a_scrape_through_the_proxy_sums_the_workers(nginx_server: str) -> None:
    for _ in range(6):  # spread over both workers
        assert _get(f"http://{nginx_server}/healthz")[0] == 200
    assert _get(f"http://{nginx_server}/metrics")[0] == 401
    status, text = _get(f"http://{nginx_server}/metrics", METRICS_TOKEN)
    assert status == 200
    healthz = [
        line
        for line in text.splitlines()
        if line.startswith("django_http_responses_total_by_status_view_method_total")
        and 'view="healthz"' in line
    ]
    assert healthz and float(healthz[0].rsplit(" ", 1)[1]) >= 6, healthz
    assert "chainfin_metric_source_up" in text
