"""The admin app, installed with Chainfin's officer site as its default site.

This module is imported while the app registry is still loading, so it names the site by its
dotted path; config/admin_site.py imports forms and models and may only load afterwards.
"""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class OfficerAdminConfig(AdminConfig):
    # Every `@admin.register` and `admin.site` in any app, ours or a library's, lands here.
    default_site = "config.admin_site.OfficerAdminSite"
