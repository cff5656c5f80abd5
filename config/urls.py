from django.contrib import admin
from django.urls import path

from config.views import home

admin.site.site_header = "Chainfin — bank officers"
admin.site.site_title = "Chainfin"
admin.site.index_title = "Ledger, parties and financing"

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
]
