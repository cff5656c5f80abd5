"""The portal in a real browser: Debian's Chromium driven by Playwright against a live server.

Signs in, reads the dashboard, filters the receivables, opens one's evidence, switches to
Chinese, and looks at the dashboard on a 375 px phone; requests an advance at the price shown,
withdraws another, and follows one being repaid; opens a statement and downloads it as CSV and
PDF, in English and in Chinese. Every page is saved as a screenshot in
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
from tests.portal.advance_helpers import frozen_now  # noqa: F401  (a fixture)
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


def expect(target: Any) -> Any:
    """Playwright's web-first assertions: they retry until the page shows what they expect (for
    up to 5 s). A bare ``is_visible()`` or ``inner_text()`` reads the page once, and after a click
    that may still be the page the click left."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


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
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.wait_for_function("document.querySelector('canvas').width > 0")
    _shot(page, "02-dashboard")

    page.get_by_role("link", name="Receivables", exact=True).click()
    page.wait_for_url("**/portal/receivables/")
    page.get_by_label("Can be financed", exact=True).select_option("no")
    # htmx swaps the table in and pushes the filter into the address bar.
    page.wait_for_url("**eligible=no**")
    expect(page.get_by_text("have not been delivered yet").first).to_be_visible()
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
    expect(page.get_by_role("heading", name="凭证时间线")).to_be_visible()
    _shot(page, "05-receivable-evidence-zh")
    page.get_by_role("link", name="概览").click()
    page.wait_for_url(f"{live_server.url}/portal/")
    expect(page.get_by_text("当前可融资")).to_be_visible()
    _shot(page, "06-dashboard-zh")

    phone = browser.new_page(viewport={"width": 375, "height": 812}, is_mobile=True)
    phone.context.add_cookies(page.context.cookies())
    for name, path in [("07-dashboard-phone", ""), ("08-receivables-phone", "receivables/")]:
        phone.goto(f"{live_server.url}/portal/{path}")
        _shot(phone, name)
        # Usable on a phone: nothing wider than the screen, no sideways scrolling.
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375, name


def _download(page: Any, link: str) -> bytes:
    with page.expect_download() as info:
        page.get_by_role("link", name=link).click()
    return Path(info.value.path()).read_bytes()


def test_statements_download_csv_and_pdf_in_english_and_chinese(
    scenario: Scenario, live_server: Any, browser: Any
) -> None:
    import csv
    import io

    from pypdf import PdfReader

    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Username").fill(scenario.user_a.username)
    page.get_by_label("Password").fill(PORTAL_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/portal/")

    page.get_by_role("link", name="Statements", exact=True).click()
    page.wait_for_url("**/portal/statements/")
    _shot(page, "09-statements")
    page.get_by_role("link", name="November 2026").click()
    page.wait_for_url("**/portal/statements/2026-11/")
    expect(page.get_by_role("heading", name="Statement for November 2026")).to_be_visible()
    disbursed = page.locator("[data-section=summary] [data-item=advances_disbursed] .num")
    assert disbursed.inner_text() == "1,600.00 EUR"  # 80 % of the two 1,000.00 invoices
    _shot(page, "10-statement")
    phone = browser.new_page(viewport={"width": 375, "height": 812}, is_mobile=True)
    phone.context.add_cookies(page.context.cookies())
    phone.goto(page.url)
    _shot(phone, "10-statement-phone")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375

    rows = list(csv.DictReader(io.StringIO(_download(page, "Download CSV").decode("utf-8-sig"))))
    by_item = {(r["section"], r["item"]): r for r in rows}
    assert by_item[("summary", "advances_disbursed")]["amount_minor"] == "160000"
    assert by_item[("summary", "repayments")]["amount"] == "1000.00"
    pdf = PdfReader(io.BytesIO(_download(page, "Download PDF")))
    text = "".join(p.extract_text() for p in pdf.pages)
    assert "Statement for November 2026" in text and "1,600.00 EUR" in text

    page.get_by_label("Language").select_option("zh-hans")
    page.wait_for_function("document.documentElement.lang === 'zh-hans'")
    expect(page.get_by_role("heading", name="2026年11月对账单")).to_be_visible()
    _shot(page, "11-statement-zh")
    text = "".join(
        p.extract_text() for p in PdfReader(io.BytesIO(_download(page, "下载 PDF"))).pages
    )
    assert "2026年11月对账单" in text or "Chinese font is not installed" in text

    page.goto(f"{live_server.url}/portal/export/")
    expect(page.get_by_role("heading", name="导出您的凭证链")).to_be_visible()
    _shot(page, "12-chain-export-zh")


@pytest.mark.usefixtures("frozen_now")
def test_request_an_advance_accept_the_quote_and_withdraw_one(
    scenario: Scenario, live_server: Any, browser: Any
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Username").fill(scenario.user_a.username)
    page.get_by_label("Password").fill(PORTAL_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/portal/")

    page.get_by_role("link", name="Advances", exact=True).click()
    page.wait_for_url("**/portal/advances/")
    expect(page.get_by_text("Paid out: being repaid")).to_be_visible()
    _shot(page, "20-advances")

    # Two invoices together, at the price shown, accepted.
    page.get_by_role("link", name="Get an advance").first.click()
    page.wait_for_url("**/portal/advances/new/")
    for ref in scenario.eligible[:2]:
        page.get_by_label(ref).check()
    _shot(page, "21-advance-choose")
    page.get_by_role("button", name="See the price").click()
    page.wait_for_url("**/portal/advances/new/price/**")
    assert page.locator("[data-figure=advance]").inner_text() == "800.00 EUR"
    _shot(page, "22-advance-price")
    page.get_by_role("button", name="Accept and request").click()
    page.wait_for_url("**/portal/advances/adv_*/")
    expect(page.get_by_text("requested. The bank reviews it")).to_be_visible()
    expect(page.locator("#advance-status")).to_have_text("Under review")
    _shot(page, "23-advance-requested")

    # A third invoice on its own, requested, then withdrawn with a reason.
    page.goto(f"{live_server.url}/portal/advances/new/")
    page.get_by_label(scenario.eligible[2]).check()
    page.get_by_role("button", name="See the price").click()
    page.get_by_role("button", name="Accept and request").click()
    page.wait_for_url("**/portal/advances/adv_*/")
    page.get_by_label("Why (optional)").fill("Our buyer paid early.")
    page.get_by_role("button", name="Withdraw the request").click()
    expect(page.locator("#advance-status")).to_have_text("Withdrawn")
    expect(page.get_by_text("its invoices are free again").first).to_be_visible()
    _shot(page, "24-advance-withdrawn")

    # The advance paid out and part repaid: its stages and the waterfall of the payout.
    page.goto(f"{live_server.url}/portal/advances/{scenario.advance.ref}/")
    assert page.locator(".waterfall-line").count() == 1
    # All nine columns of the waterfall on a laptop's screen, none scrolled out of sight.
    wrap = page.locator("#waterfall").locator("xpath=..")
    assert wrap.evaluate("e => e.scrollWidth <= e.clientWidth")
    # The lead figure, what was paid out, reads on one line ("1,584.00 EUR", not "EUR" below).
    lead = page.locator(".tile--lead .tile__value")
    lines = "e => { const r = document.createRange(); r.selectNodeContents(e);"
    lines += " return r.getClientRects().length; }"
    assert lead.evaluate(lines) == 1, lead.inner_text()
    _shot(page, "25-advance-repayments")

    phone = browser.new_page(viewport={"width": 375, "height": 812}, is_mobile=True)
    phone.context.add_cookies(page.context.cookies())
    for name, path in [
        ("15-advances-phone", "advances/"),
        ("16-advance-phone", f"advances/{scenario.advance.ref}/"),
        ("17-advance-price-phone", f"advances/new/price/?refs={scenario.eligible[0]}"),
    ]:
        phone.goto(f"{live_server.url}/portal/{path}")
        _shot(phone, name)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375, name
    # A tablet held either way, and a small laptop: the page never scrolls sideways (the
    # advances list was 1,133 px wide at 768 and 1,024, its statuses kept on one line).
    for width in (768, 1024):
        tablet = browser.new_page(viewport={"width": width, "height": 900})
        tablet.context.add_cookies(page.context.cookies())
        for path in ["advances/", f"advances/{scenario.advance.ref}/", "receivables/"]:
            tablet.goto(f"{live_server.url}/portal/{path}")
            assert tablet.evaluate("document.documentElement.scrollWidth") <= width, (width, path)
