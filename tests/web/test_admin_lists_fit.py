"""Every officer list fits a laptop screen (1,366 and 1,280 pixels wide) beside its filters, in
Debian's Chromium on the demo's data: no column hidden behind a horizontal scroll bar, and in
the compact lists (``admin/compact_change_list.html``) one line per row, a cut value whole on
hover."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from ledger.management.commands.seed_demo import DEMO_PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LAPTOPS = [{"width": 1366, "height": 800}, {"width": 1280, "height": 800}]

# The list's width against its box's, and for each row the cells whose text runs onto a second
# line (text boxes more than half a line apart), with the hover text of cells that are cut.
MEASURE = """() => {
  const table = document.querySelector('#result_list');
  if (!table || !table.tBodies[0].rows.length) return null;
  const box = document.querySelector('#changelist .results') || table.parentElement;
  const wrapped = [], uncut = [];
  for (const row of table.tBodies[0].rows) {
    for (const cell of row.cells) {
      const range = document.createRange();
      range.selectNodeContents(cell);
      const tops = [...range.getClientRects()].filter(r => r.width > 0).map(r => r.top);
      if (tops.length && Math.max(...tops) - Math.min(...tops) > 8) wrapped.push(cell.className);
      const hover = cell.title || (cell.querySelector('[title]') || {}).title;
      if (cell.scrollWidth > cell.clientWidth && !hover) uncut.push(cell.className);
    }
  }
  return {width: table.scrollWidth, box: box.clientWidth, rows: table.tBodies[0].rows.length,
          compact: document.body.classList.contains('compact-list'), wrapped, uncut};
}"""


def test_every_officer_list_fits_a_laptop_screen(
    officer_client_factory: Callable[..., Client], live_server: Any, chromium: str
) -> None:
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_financing_demo", stdout=StringIO())
    admin = User.objects.get(username="admin")
    client = officer_client_factory(admin, password=DEMO_PASSWORD)
    session = client.cookies["sessionid"].value
    from playwright.sync_api import sync_playwright

    measured: dict[str, dict[str, Any]] = {}  # "<width> <list's path>": what MEASURE found
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            for laptop in LAPTOPS:
                context = browser.new_context(viewport=laptop)
                context.add_cookies(
                    [{"name": "sessionid", "value": session, "url": live_server.url}]
                )
                page = context.new_page()
                page.goto(f"{live_server.url}{reverse('admin:index')}")
                links = page.locator("#content-main th[scope=row] a")
                lists = sorted(set(links.evaluate_all("as => as.map(a => a.getAttribute('href'))")))
                for href in lists:
                    page.goto(f"{live_server.url}{href}")
                    result = page.evaluate(MEASURE)
                    if result is not None:
                        measured[f"{laptop['width']} {href}"] = result
                context.close()
        finally:
            browser.close()

    assert len(measured) >= 2 * 25, sorted(measured)  # the demo fills most lists: all were seen
    too_wide = {h: (m["width"], m["box"]) for h, m in measured.items() if m["width"] > m["box"]}
    assert too_wide == {}
    assert sum(m["compact"] for m in measured.values()) >= 2 * 15, "few compact lists were measured"
    wrapped = {href: m["wrapped"] for href, m in measured.items() if m["compact"] and m["wrapped"]}
    assert wrapped == {}
    uncut = {href: m["uncut"] for href, m in measured.items() if m["uncut"]}
    assert uncut == {}
