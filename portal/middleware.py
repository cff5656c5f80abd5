"""The portal's language: the visitor's choice (cookie), else the browser's, else English."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.cache import patch_vary_headers

PORTAL_PREFIX = "/portal/"


class PortalLocaleMiddleware:
    """Django's LocaleMiddleware, for the portal's paths only.

    The officer admin and the marketplace API keep answering in English whatever a browser
    or client asks for: their messages are matched on by tests and by marketplaces' code.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(PORTAL_PREFIX):
            return self.get_response(request)
        language = translation.get_language_from_request(request)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        try:
            response = self.get_response(request)
        finally:
            # Threads serve other paths next: they must not inherit this visitor's language.
            translation.deactivate()
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        response.headers.setdefault("Content-Language", language)
        return response
