"""Fixtures that run the production stack on loopback: gunicorn with the production settings,
nginx from Debian's package in front. nginx missing: skipped loudly, a failure under
REQUIRE_SERVICES=1 (.ci/run installs it)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from config.serve import NGINX, gunicorn_command, nginx_command, render_nginx
from ledger.log.notes import Signer
from tests.conftest import REPO_ROOT, REQUIRE_SERVICES

METRICS_TOKEN = secrets.token_urlsafe(32)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def production_env(**overrides: str) -> dict[str, str]:
    """An environment the production settings accept: fresh secrets, the test services."""
    broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
    env = dict(os.environ)
    for name in ("DJANGO_SECRET_KEY", "CHAINFIN_SEALING_KEYS", "DJANGO_DEBUG"):
        env.pop(name, None)
    return (
        env
        | {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "CHAINFIN_SEALING_KEYS": Fernet.generate_key().decode(),
            "CHAINFIN_LOG_SIGNING_KEY": Signer.generate("chainfin.deploy-test/log").encoded,
            "METRICS_TOKEN": secrets.token_urlsafe(32),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": os.environ.get(
                "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chainfin"
            ),
            "CACHE_URL": "redis://127.0.0.1:6379/14",
            "CELERY_BROKER_URL": broker,
            "PYTHONUNBUFFERED": "1",
        }
        | overrides
    )


def wait_until_answering(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing answered at {url} within {seconds} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def nginx_binary() -> str:
    if not Path(NGINX).exists():
        message = f"!! nginx is not installed at {NGINX} (apt-get install nginx): skipping"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return NGINX


@pytest.fixture
def gunicorn_server(tmp_path: Path) -> Iterator[str]:
    """gunicorn on the production settings, two sync workers; yields its host:port."""
    address = f"127.0.0.1:{free_port()}"
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = production_env(
        GUNICORN_BIND=address,
        GUNICORN_WORKERS="2",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        METRICS_TOKEN=METRICS_TOKEN,
    )
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        gunicorn_command(), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_until_answering(f"http://{address}/healthz", process)
        yield address
    finally:
        _stop(process)
        log.close()


@pytest.fixture
def nginx_server(nginx_binary: str, gunicorn_server: str, tmp_path: Path) -> Iterator[str]:
    """nginx with the shipped configuration in front of ``gunicorn_server``; yields host:port."""
    address = f"127.0.0.1:{free_port()}"
    run_dir = tmp_path / "nginx"
    run_dir.mkdir()
    conf = run_dir / "nginx.conf"
    conf.write_text(
        render_nginx(
            listen=address,
            upstream=gunicorn_server,
            run_dir=run_dir,
            static_root=tmp_path,
            metrics_allow=["127.0.0.1"],
        )
    )
    process = subprocess.Popen(nginx_command(conf, run_dir), stderr=subprocess.PIPE)
    try:
        wait_until_answering(f"http://{address}/healthz", process)
        yield address
    finally:
        _stop(process)
