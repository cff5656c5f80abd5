"""The portal's URLs, namespace ``portal``. Every view but the way in is behind portal.access;
tests/portal/test_access_matrix.py fails when a pattern here is not covered."""

from django.urls import path

from portal.advances import views as advances
from portal.auth import views as auth
from portal.dashboard import views as dashboard
from portal.merchant_settings import api_keys, bank_account, team
from portal.receivables import views as receivables
from portal.statements import views as statements

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
    # Statements (issue 11, item 5): every role reads them.
    path("statements/", statements.statement_list, name="statements"),
    path("statements/<str:month>/", statements.statement_show, name="statement"),
    path(
        "statements/<str:month>/statement.csv",
        statements.statement_csv_download,
        name="statement_csv",
    ),
    path(
        "statements/<str:month>/statement.pdf",
        statements.statement_pdf_download,
        name="statement_pdf",
    ),
    path("export/", statements.chain_export, name="chain_export"),
    path("export/chain.json", statements.chain_export_download, name="chain_export_download"),
    path("export/verify.py", statements.verifier_download, name="verifier_download"),
    # Settings (issue 11, item 6): every role reads them, owners change them.
    path("settings/team/", team.team, name="settings_team"),
    path("settings/team/<int:member_id>/role/", team.member_role, name="settings_member_role"),
    path(
        "settings/team/<int:member_id>/remove/", team.member_delete, name="settings_member_remove"
    ),
    path("settings/bank-account/", bank_account.bank_account, name="settings_bank_account"),
    path("settings/api-keys/", api_keys.api_keys, name="settings_api_keys"),
    path(
        "settings/api-keys/<str:prefix>/revoke/",
        api_keys.api_key_revoke_view,
        name="settings_api_key_revoke",
    ),
]
