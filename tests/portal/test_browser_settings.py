"""Settings in a real browser: an owner runs the team, asks for a new payout account, issues
and revokes an API key; a viewer reads them on a phone. Each page is screenshotted and checked
with axe-core at desktop width and at 375 px (``_shot`` of test_browser.py). While the browser
runs, this thread may not touch the database, so every check reads the page."""

# The browser fixture is imported to be shared; tests naming it are not redefinitions.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

import pytest

from tests.portal.conftest import PORTAL_PASSWORD
from tests.portal.settings_helpers import Team, team  # noqa: F401  (a fixture)
from tests.portal.test_browser import _shot, browser, expect  # noqa: F401  (browser: a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/portal/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PORTAL_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/portal/")


def test_an_owner_manages_team_bank_account_and_api_keys(
    team: Team, live_server: Any, browser: Any
) -> None:
    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
    _sign_in(page, base, team.owner.username)

    page.get_by_role("link", name="Settings").click()
    page.wait_for_url("**/portal/settings/team/")
    _shot(page, "31-settings-team")
    page.get_by_label("Email address").fill("new.colleague@example.com")
    page.get_by_label("Role", exact=True).select_option("finance")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_text("We sent them an email")).to_be_visible()
    expect(page.locator('[data-member="new.colleague@example.com"]')).to_be_visible()
    page.get_by_label(f"Role of {team.viewer.email}").select_option("finance")
    page.locator(f'[data-member="{team.viewer.username}"]').get_by_role(
        "button", name="Save role"
    ).click()
    expect(page.get_by_text("The role was changed.")).to_be_visible()
    viewer_row = page.locator(f'[data-member="{team.viewer.username}"]')
    expect(viewer_row.locator(".badge")).to_have_text("Finance")
    page.get_by_label(f"Role of {team.owner.email}").select_option("viewer")
    page.locator(f'[data-member="{team.owner.username}"]').get_by_role(
        "button", name="Save role"
    ).click()
    expect(page.get_by_text("needs at least one owner")).to_be_visible()
    _shot(page, "32-settings-team-last-owner")

    page.get_by_role("link", name="Payout bank account").click()
    page.get_by_label("Account holder").fill("Supplier GmbH")
    page.get_by_label("IBAN").fill("DE88 3704 0044 0532 0130 00")
    page.get_by_role("button", name="Ask the bank to change it").click()
    expect(page.get_by_text("its check digits do not match")).to_be_visible()
    assert page.get_by_label("IBAN").input_value() == ""  # never echoed
    _shot(page, "33-settings-bank-account-mistyped")
    page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
    page.get_by_role("button", name="Ask the bank to change it").click()
    expect(page.locator('[data-account="proposed"]')).to_be_visible()
    assert "DE89 •••• •••• •••• 3000" in page.content()
    assert "0532 0130" not in page.content()
    _shot(page, "34-settings-bank-account-waiting")

    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name (optional)").fill("ERP")
    page.get_by_role("button", name="Issue a key").click()
    secret = page.locator('[data-secret="signing"]').inner_text()
    assert secret.startswith("cfs_")
    _shot(page, "35-settings-api-key-issued")
    page.get_by_role("link", name="I have copied them").click()
    expect(page.locator("[data-secret]")).to_have_count(0)
    prefix = page.locator("[data-key]").first.get_attribute("data-key")
    assert secret not in page.content()
    page.get_by_role("button", name=f"Revoke {prefix}").click()
    expect(page.get_by_text("The key was revoked.")).to_be_visible()
    _shot(page, "36-settings-api-keys")

    page.get_by_label("Language").select_option("zh-hans")
    page.wait_for_function("document.documentElement.lang === 'zh-hans'")
    page.get_by_role("link", name="团队").click()
    expect(page.get_by_role("heading", name="谁可以代表贵公司登录")).to_be_visible()
    _shot(page, "37-settings-team-zh")


def test_a_viewer_reads_the_settings_on_a_phone(team: Team, live_server: Any, browser: Any) -> None:
    phone = browser.new_page(viewport={"width": 375, "height": 812}, is_mobile=True)
    _sign_in(phone, live_server.url, team.viewer.username)
    for name, path in [
        ("38-settings-team-viewer-phone", "team/"),
        ("39-settings-bank-account-viewer-phone", "bank-account/"),
        ("40-settings-api-keys-viewer-phone", "api-keys/"),
    ]:
        phone.goto(f"{live_server.url}/portal/settings/{path}")
        expect(phone.get_by_text("Only an owner of your company can change them.")).to_be_visible()
        assert phone.get_by_role("button", name="Add member").count() == 0
        _shot(phone, name)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375, name
