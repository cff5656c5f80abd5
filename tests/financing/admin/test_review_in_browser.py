"""The advance review page in Debian's Chromium: the verdicts in its section headings are legible
(axe-core's colour-contrast rule; green or red text on the admin's blue heading was not)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from financing.models import Facility
from tests.financing.admin.conftest import SignIn, _request, _url
from tests.financing.conftest import Trade

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HEADINGS = [["#eligibility h2"], ["#evidence h2"]]


def test_the_verdicts_in_the_review_headings_are_legible(
    live: Trade, line: Facility, officer: User, sign_in: SignIn, live_server: Any, chromium: str
) -> None:
    advance = _request(live)
    session = sign_in(officer).cookies["sessionid"].value
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
            page = context.new_page()
            page.goto(f"{live_server.url}{_url('change', advance)}")
            verdicts = page.locator("#eligibility h2 .chainfin-ok, #evidence h2 .chainfin-ok")
            assert verdicts.count() == 2  # both headings carry their verdict: the check sees them
            results = Axe().run(
                page,
                context={"include": HEADINGS},
                options={"runOnly": {"type": "rule", "values": ["color-contrast"]}},
            )
        finally:
            browser.close()
    violations = results.response["violations"]
    assert results.response["passes"], "axe checked no text in the headings"
    assert violations == [], [node["target"] for v in violations for node in v["nodes"]]
