"""The portal in a real browser: Debian's Chromium driven by Playwright against a live server.

Signs in, reads the dashboard, filters the receivables, opens one's evidence, switches to
Chinese, and looks at the dashboard on a 375 px phone. Every page is saved as a screenshot in
PORTAL_SCREENSHOTS (default /tmp/chainfin-portal-screenshots) for a person to look at, and
checked with axe-core at desktop width and at 375 px (tests/portal/accessibility.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.portal.accessibility import assert_accessible
from tests.portal.conftest import PORTAL_PASSWORD, Scenario

SCREENSHOTS = Path(os.environ.get("PORTAL_SCREENSHOTS", "/tmp/chainfin-portal-screenshots"))

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(chromium: str) -> Iterator[Any]:
    """A headless Chromium. Ask for it after every fixture that touches the database: while it
    runs, Playwright's event loop runs in this thread, where Django refuses database calls (and
    a connection opened there would outlive the test)."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _shot(page: Any, name: str) -> None:
    """Save the page for a person to look at, and let axe-core look at it at both widths."""
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    assert_accessible(page, name)


def test_sign_in_dashboard_receivable_and_chinese(
    scenario: Scenario, live_server: Any, browser: Any
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
    page.goto(f"{live_server.url}/portal/login/")
    _shot(page, "01-sign-in")
    page.get_by_label("Username").fill(scenario.user_a.username)
    page.get_by_label("Password").fill(PORTAL_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(f"{live_server.url}/portal/")
    assert page.locator("[data-figure=available]").inner_text() == "1,200.00 EUR"
    assert page.locator("[data-figure=outstanding]").inner_text() == "800.00 EUR"
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    page.wait_for_function("document.querySelector('canvas').width > 0")
    _shot(page, "02-dashboard")

    page.get_by_role("link", name="Receivables", exact=True).click()
    page.wait_for_url("**/portal/receivables/")
    page.get_by_label("Can be financed", exact=True).select_option("no")
    # htmx swaps the table in and pushes the filter into the address bar.
    page.wait_for_url("**eligible=no**")
    assert page.get_by_text("have not been delivered yet").first.is_visible()
    _shot(page, "03-receivables-not-fundable")

    page.goto(f"{live_server.url}/portal/receivables/")
    page.get_by_role("link", name=scenario.financed[0], exact=True).click()
    page.wait_for_url(f"**/portal/receivables/{scenario.financed[0]}/")
    steps = page.locator(".timeline__step")
    assert steps.count() >= 7
    assert page.locator(".timeline__step .ok").count() == steps.count()
    _shot(page, "04-receivable-evidence")

    page.get_by_label("Language").select_option("zh-hans")
    page.wait_for_load_state()
    page.wait_for_function("document.documentElement.lang === 'zh-hans'")
    assert page.get_by_role("heading", name="凭证时间线").is_visible()
    _shot(page, "05-receivable-evidence-zh")
    page.get_by_role("link", name="概览").click()
    page.wait_for_url(f"{live_server.url}/portal/")
    assert page.get_by_text("当前可融资").is_visible()
    _shot(page, "06-dashboard-zh")

    phone = browser.new_page(viewport={"width": 375, "height": 812}, is_mobile=True)
    phone.context.add_cookies(page.context.cookies())
    for name, path in [("07-dashboard-phone", ""), ("08-receivables-phone", "receivables/")]:
        phone.goto(f"{live_server.url}/portal/{path}")
        _shot(phone, name)
        # Usable on a phone: nothing wider than the screen, no sideways scrolling.
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375, name
