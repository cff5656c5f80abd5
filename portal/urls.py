"""The portal's URLs, namespace ``portal``. Every view but the way in is behind portal.access;
tests/portal/test_access_matrix.py fails when a pattern here is not covered."""

from django.urls import path

from portal.advances import views as advances
from portal.auth import views as auth
from portal.dashboard import views as dashboard
from portal.receivables import views as receivables

app_name = "portal"

urlpatterns = [
    # The way in: open to anyone.
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("login/code/", auth.otp, name="otp"),
    path("password-reset/", auth.password_reset, name="password_reset"),
    path("password-reset/sent/", auth.password_reset_done, name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        auth.password_reset_confirm,
        name="password_reset_confirm",
    ),
    path("password-reset/done/", auth.password_reset_complete, name="password_reset_complete"),
    # A merchant's own pages.
    path("", dashboard.dashboard, name="dashboard"),
    path("switch/", auth.switch, name="switch"),
    path("security/", auth.security, name="security"),
    path("receivables/", receivables.receivable_list, name="receivables"),
    path("receivables/<str:ref>/", receivables.receivable_show, name="receivable"),
    path(
        "receivables/<str:ref>/receipt.json",
        receivables.receivable_receipt_download,
        name="receivable_receipt",
    ),
    # Advances (issue 11, item 4): reading for every role, the POSTs for owner and finance.
    path("advances/", advances.advance_list, name="advances"),
    path("advances/new/", advances.advance_new, name="advance_new"),
    path("advances/new/price/", advances.advance_price, name="advance_price"),
    path("advances/new/request/", advances.advance_create, name="advance_create"),
    path("advances/<str:ref>/", advances.advance_show, name="advance"),
    path("advances/<str:ref>/accept/", advances.advance_accept, name="advance_accept"),
    path("advances/<str:ref>/withdraw/", advances.advance_withdraw, name="advance_withdraw"),
    # Statements and settings come here (issue 11, items 5 and 6).
]
