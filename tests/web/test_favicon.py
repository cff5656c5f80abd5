"""Every kind of page names its icon, and the icon is a static file that exists (no 404 for
/favicon.ico in the server's log on every first visit)."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.test import Client


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/portal/login/", "/admin/login/"])
def test_pages_link_an_icon_that_exists(client: Client, path: str) -> None:
    page = client.get(path, follow=True).content.decode()

    icon = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page)

    assert icon is not None, path
    assert icon.group(1) == static("portal/favicon.svg")
    assert finders.find("portal/favicon.svg") is not None
