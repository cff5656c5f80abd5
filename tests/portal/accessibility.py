"""axe-core (the copy that the PyPI package axe-playwright-python ships, never a CDN) run on a
portal page at desktop width and on a 375 px phone: no serious or critical violation."""

from __future__ import annotations

from typing import Any

BLOCKING = {"serious", "critical"}
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


def axe_violations(page: Any) -> list[str]:
    """The serious and critical violations on ``page`` as it is now, one line per element."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at {node['target']}"
        for violation in results.response["violations"]
        if violation["impact"] in BLOCKING
        for node in violation["nodes"]
    ]


def assert_accessible(page: Any, name: str) -> None:
    """Check ``page`` at desktop width and at 375 px, then put its size back."""
    before = page.viewport_size or DESKTOP
    found = []
    for size in (DESKTOP, PHONE):
        page.set_viewport_size(size)
        found += [f"{size['width']} px: {line}" for line in axe_violations(page)]
    page.set_viewport_size(before)
    assert not found, f"{name}: accessibility violations (axe-core):\n" + "\n".join(found)
