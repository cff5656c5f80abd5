"""The production settings refuse published or weak secrets and DEBUG; check --deploy is clean;
the demo's seeds and code printer refuse outside the demo."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from config.settings.refusals import (
    DEMO_SEALING_KEY,
    DEMO_SECRET_KEY,
    TEST_LOG_KEY_SEED,
    TEST_SECRET_KEY,
    production_refusals,
)
from ledger.log.notes import Signer
from tests.conftest import REPO_ROOT
from tests.deploy.conftest import production_env

TEST_LOG_KEY = Signer.from_seed("chainfin.test/log", TEST_LOG_KEY_SEED).encoded
GOOD = {
    "secret_key": "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz",
    "debug": False,
    "sealing_keys": ["oZ6m5y0a4F8wXdJ7nZbq1YFvK8u0JrN3k9mQyR2sT4c="],
    "log_signing_key": Signer.generate("bank.example/log").encoded,
    "metrics_token": "t" * 40,
}


def test_good_values_pass() -> None:
    assert production_refusals(**GOOD) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"secret_key": DEMO_SECRET_KEY}, "published key"),
        ({"secret_key": TEST_SECRET_KEY}, "published key"),
        ({"secret_key": ""}, "empty, short"),
        ({"secret_key": "django-insecure-" + "x1y2z3" * 10}, "insecure default"),
        ({"debug": True}, "DJANGO_DEBUG is on"),
        ({"sealing_keys": []}, "CHAINFIN_SEALING_KEYS is empty"),
        ({"sealing_keys": [DEMO_SEALING_KEY]}, "the demo's or the suite's"),
        ({"sealing_keys": ["not-a-key"]}, "not a Fernet key"),
        ({"log_signing_key": ""}, "CHAINFIN_LOG_SIGNING_KEY is empty"),
        ({"log_signing_key": "PRIVATE+KEY+x"}, "not a log signing key"),
        ({"log_signing_key": TEST_LOG_KEY}, "test suite's published key"),
        ({"metrics_token": ""}, "METRICS_TOKEN"),
    ],
)
def test_each_unsafe_value_is_refused(change: dict[str, object], reason: str) -> None:
    reasons = production_refusals(**(GOOD | change))  # type: ignore[arg-type]
    assert len(reasons) == 1 and reason in reasons[0], reasons


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=production_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_refuse_to_start_with_the_demo_secrets() -> None:
    result = _manage(
        "check", DJANGO_SECRET_KEY=DEMO_SECRET_KEY, CHAINFIN_SEALING_KEYS=DEMO_SEALING_KEY
    )
    assert result.returncode != 0
    assert "Refusing to start with the production settings" in result.stderr
    assert "published key" in result.stderr


def test_production_settings_refuse_debug() -> None:
    result = _manage("check", DJANGO_DEBUG="true")
    assert result.returncode != 0
    assert "DJANGO_DEBUG is on" in result.stderr


def test_check_deploy_gives_no_warning() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize("command", ["seed_demo", "seed_financing_demo", "totp_code"])
def test_demo_commands_refuse_under_production_settings(command: str) -> None:
    args = [command, "admin"] if command == "totp_code" else [command]
    result = _manage(*args)
    assert result.returncode != 0
    assert f"{command} is for the demo only" in result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("command", ["seed_demo", "seed_financing_demo", "totp_code"])
def test_demo_commands_refuse_without_the_demo_flag(settings, command: str) -> None:
    settings.CHAINFIN_DEMO = False
    args = ["admin"] if command == "totp_code" else []
    with pytest.raises(CommandError, match="is for the demo only"):
        call_command(command, *args)
