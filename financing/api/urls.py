from django.urls import path

from financing.api import bank_statements, views

urlpatterns = [
    path("advances/quote", views.AdvanceQuoteApi.as_view(), name="api-advances-quote"),
    path("advances", views.AdvanceCreateApi.as_view(), name="api-advances"),
    path("advances/<str:ref>", views.AdvanceDetailApi.as_view(), name="api-advance"),
    path("advances/<str:ref>/accept", views.AdvanceAcceptApi.as_view(), name="api-advance-accept"),
    path(
        "advances/<str:ref>/withdraw",
        views.AdvanceWithdrawApi.as_view(),
        name="api-advance-withdraw",
    ),
    path("receivables", views.ReceivableListApi.as_view(), name="api-receivables"),
    path(
        "bank-statements",
        bank_statements.BankStatementCreateApi.as_view(),
        name="api-bank-statements",
    ),
]
