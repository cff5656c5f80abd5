from django.urls import path

from ledger.api import log, views

urlpatterns = [
    path("events", views.EventBatchCreateApi.as_view(), name="api-events"),
    path("merchants/<str:seller_id>/chain", views.ChainHeadApi.as_view(), name="api-chain"),
    path("merchants/<str:seller_id>/entries", views.EntryListApi.as_view(), name="api-entries"),
    path(
        "merchants/<str:seller_id>/entries/<int:seq>",
        views.EntryDetailApi.as_view(),
        name="api-entry",
    ),
    path("invoices/ubl", views.UblInvoiceCreateApi.as_view(), name="api-invoices-ubl"),
    path("logistics/epcis", views.EpcisCreateApi.as_view(), name="api-logistics-epcis"),
    # The global log (ledger/log/)
    path("checkpoint", log.CheckpointApi.as_view(), name="api-checkpoint"),
    path(
        "checkpoint/cosignatures",
        log.CosignatureCreateApi.as_view(),
        name="api-checkpoint-cosignatures",
    ),
    path("proofs/inclusion", log.InclusionProofApi.as_view(), name="api-proof-inclusion"),
    path("proofs/consistency", log.ConsistencyProofApi.as_view(), name="api-proof-consistency"),
]
