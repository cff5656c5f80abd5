"""Shared fixtures. PostgreSQL-only tests carry the `postgres` marker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, connections
from django.test import Client, TransactionTestCase
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.two_factor import totp_code
from ledger.events import ValidEvent, event_parse
from ledger.locks import remembered_heads_reset
from merchants.models import Marketplace, Merchant
from merchants.services import marketplace_create, merchant_onboard

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="PostgreSQL is unreachable (see the notice above)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures tests record with ``record_property`` (the reliability tests' seconds
    to redelivery, ...). Here, not in their folder's conftest: under pytest-xdist only this
    conftest is loaded by the process that reports."""
    figures = [
        (report.nodeid.split("::")[-1], name, value)
        for report in terminalreporter.stats.get("passed", [])
        if report.when == "call"
        for name, value in report.user_properties
    ]
    if figures:
        terminalreporter.section("reliability figures")
        for test, name, value in figures:
            terminalreporter.write_line(f"{test}: {name} = {value}")


@pytest.fixture(scope="session", autouse=True)
def _flush_past_append_only_triggers() -> Iterator[None]:
    """Let transactional tests' teardown TRUNCATE ledger_entry, which its trigger refuses.

    Only the superuser test role can set the replication role; the product never does.
    """
    original = TransactionTestCase._fixture_teardown

    def teardown(self: TransactionTestCase) -> None:
        postgres = [c for c in connections.all() if c.vendor == "postgresql"]
        for conn in postgres:
            with conn.cursor() as cursor:
                cursor.execute("SET session_replication_role = replica")
        try:
            original(self)
        finally:
            for conn in postgres:
                with conn.cursor() as cursor:
                    cursor.execute("RESET session_replication_role")

    TransactionTestCase._fixture_teardown = teardown  # type: ignore[method-assign]
    yield
    TransactionTestCase._fixture_teardown = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _remembered_heads_trusted() -> None:
    """Each test starts with appends trusting remembered heads (ledger/locks.py), whatever the
    tests before it in this process met: the statements a test counts do not depend on them."""
    remembered_heads_reset()


@pytest.fixture
def redis_url() -> str:
    """The Redis the tests talk to; skipped loudly when down, fails under REQUIRE_SERVICES=1."""
    url = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
    try:
        socket.create_connection(("127.0.0.1", 6379), 2).close()
    except OSError:
        if REQUIRE_SERVICES:
            pytest.fail("REQUIRE_SERVICES=1 but Redis is unreachable at 127.0.0.1:6379")
        pytest.skip("!! Redis is unreachable at 127.0.0.1:6379: skipping")
    return url


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium (apt-get install chromium), never a downloaded browser, for Playwright.

    Skipped loudly when it or the playwright package is missing; fails under REQUIRE_SERVICES=1.
    """
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = "the playwright package is not installed (pip install -r requirements.txt)"
    else:
        missing = "" if CHROMIUM.exists() else f"{CHROMIUM} is missing (apt-get install chromium)"
    if missing:
        if REQUIRE_SERVICES:
            pytest.fail(f"REQUIRE_SERVICES=1 but {missing}")
        pytest.skip(f"!! {missing}: skipping the browser tests")
    return str(CHROMIUM)


@pytest.fixture
def now() -> datetime:
    return NOW


_serial = count(1)


@pytest.fixture
def marketplace(db: None) -> Marketplace:
    return marketplace_create(code=f"mkt{next(_serial)}", name="Acme Marketplace")


@pytest.fixture
def make_merchant(marketplace: Marketplace) -> Callable[..., Merchant]:
    def make(**overrides: Any) -> Merchant:
        n = next(_serial)
        fields: dict[str, Any] = {
            "legal_name": f"Supplier {n} GmbH",
            "country": "DE",
            "tax_id": f"DE{100000000 + n}",
            "marketplace": marketplace,
            "seller_id": f"seller-{n}",
        }
        return merchant_onboard(**(fields | overrides))

    return make


@pytest.fixture
def merchant(make_merchant: Callable[..., Merchant]) -> Merchant:
    return make_merchant()


def order_placed(ref: str = "ORD-1", amount: str = "100.00", currency: str = "EUR") -> ValidEvent:
    return event_parse(
        {
            "type": "order.placed",
            "ref": ref,
            "occurred_at": "2026-10-01T09:00:00Z",
            "data": {"currency": currency, "amount": amount},
        }
    )


SHARED_FORMATS = Path(__file__).resolve().parents[1].parent / "shared" / "formats"


def shared_format(*parts: str) -> Path:
    """A public example file from ../shared/formats, read as it is; skip (or fail) if absent."""
    path = SHARED_FORMATS.joinpath(*parts)
    if not path.exists():
        message = f"{path} is missing (the public example files live beside the repo)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return path


# --- Officers: the admin wants a password and a TOTP code (config/admin_site.py) -------------

STAFF_PASSWORD = "officer-test-password"


def totp_token(device: TOTPDevice) -> str:
    """The code ``device``'s authenticator app shows now, as an officer types it."""
    return totp_code(device, at=time.time())


@pytest.fixture
def make_staff_user(db: None, django_user_model: type[User]) -> Callable[..., User]:
    """Make a staff user: ``make_staff_user("officer-1", groups=["officer"], superuser=False)``.

    The password is ``STAFF_PASSWORD``; groups are created by name when missing.
    """

    def make(
        username: str | None = None,
        *,
        groups: tuple[str, ...] | list[str] = (),
        superuser: bool = False,
    ) -> User:
        name = username or f"staff-{next(_serial)}"
        if superuser:
            user = django_user_model.objects.create_superuser(name, password=STAFF_PASSWORD)
        else:
            user = django_user_model.objects.create_user(
                name, password=STAFF_PASSWORD, is_staff=True
            )
        for group in groups:
            user.groups.add(Group.objects.get_or_create(name=group)[0])
        return user

    return make


@pytest.fixture
def officer_client_factory(db: None) -> Callable[..., Client]:
    """Sign a staff user in to the admin the way an officer does: password and a TOTP code.

    ``officer_client_factory(user)`` gives the user a fresh confirmed TOTP device, posts the
    username, the password and the device's current code to the admin login form and returns
    the signed-in ``Client`` (pass ``client=`` to sign in an existing one). The password is
    set to ``STAFF_PASSWORD`` unless you pass the one the user has (``password=``).
    Fails loudly, with the form's errors, if the admin refuses the login.
    """

    def sign_in(user: User, *, password: str | None = None, client: Client | None = None) -> Client:
        if password is None:
            password = STAFF_PASSWORD
            user.set_password(password)
            user.save(update_fields=["password"])
        # A fresh device per sign-in: a TOTP code is accepted once, so a second sign-in of
        # the same user within 30 s would be refused on a shared device.
        device = TOTPDevice.objects.create(
            user=user, name=f"test authenticator {next(_serial)}", confirmed=True
        )
        client = client or Client()
        response = client.post(
            reverse("admin:login"),
            {
                "username": user.get_username(),
                "password": password,
                "otp_device": device.persistent_id,
                "otp_token": totp_token(device),
                "next": reverse("admin:index"),
            },
        )
        if response.status_code != 302 or response["Location"] != reverse("admin:index"):
            errors = response.context["form"].errors if response.context else response
            raise AssertionError(f"the admin refused {user.get_username()!r}: {errors}")
        return client

    return sign_in


@pytest.fixture
def staff_client(
    make_staff_user: Callable[..., User], officer_client_factory: Callable[..., Client]
) -> Client:
    """A superuser signed in to the admin with password and TOTP code; what admin_client was."""
    return officer_client_factory(make_staff_user(superuser=True))


# --- Real Celery workers, for the tests that are about the worker --------------------------

REPO_ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def celery_worker(queue: str, broker_url: str, **env: str) -> Iterator[list[str]]:
    """A real worker (solo pool, its own queue) on the test database, stopped on exit.

    Yields a list that holds the worker's output once it has stopped, to show on failure.
    """
    db = connection.settings_dict
    environment = (
        os.environ
        | env
        | {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CELERY_BROKER_URL": broker_url,
        }
    )
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"]
    command += ["-Q", queue, "--without-heartbeat", "--without-mingle", "--without-gossip"]
    # A file, not a pipe: a pipe nobody reads while the test runs fills up and blocks the worker.
    with tempfile.TemporaryFile() as log:
        worker = subprocess.Popen(
            [*command, "--loglevel=WARNING"], cwd=REPO_ROOT, env=environment, stdout=log, stderr=log
        )
        output: list[str] = []
        try:
            yield output
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            log.seek(0)
            output.append(log.read().decode(errors="replace"))
