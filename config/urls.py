from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

import config.api.openapi
import config.metric_sources  # noqa: F401  (registers the business figures with /metrics)
from config.api.problems import api_not_found, api_server_error
from config.health import healthz, readyz
from config.metrics import metrics
from config.observability import unavailable_from_current_exception
from config.views import home
from ledger.api.log import log_key

urlpatterns = [
    path("", home, name="home"),
    path(".well-known/chainfin-log-key", log_key, name="log-key"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("portal/", include("portal.urls")),
    # set_language: the portal's language switcher posts here (a cookie, then back).
    path(
        "i18n/", include("django.conf.urls.i18n")
    ),  # config.admin_site.OfficerAdminSite: two-factor
    path("api/v1/", include("ledger.api.urls")),
    path("api/v1/", include("financing.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api_not_found(request, exception)
    if request.path.startswith("/portal/"):
        return render(request, "portal/not_found.html", status=404)
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    # A database or broker outage met outside a view (in a middleware) is a 503 too.
    unavailable = unavailable_from_current_exception(request)
    if unavailable is not None:
        return unavailable
    if request.path.startswith("/api/"):
        return api_server_error(request)
    return defaults.server_error(request)
