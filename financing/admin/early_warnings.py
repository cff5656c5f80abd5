"""The early-warning list: merchants with money outstanding whose evidence turned for the worse.

Written once a day by ``financing.tasks.early_warning_run``; officers read it here, with the
figures that raised each warning, and nobody edits it.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.safestring import SafeString

from config.admin_mixins import ReadOnlyAdminMixin
from financing.models import EarlyWarning


@admin.register(EarlyWarning)
class EarlyWarningAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[EarlyWarning]):
    """Newest first; each row says in one sentence what was seen, the figures are below."""

    list_display = ["observed_on", "merchant", "kind", "summary"]
    list_filter = ["kind", "observed_on"]
    list_select_related = ["merchant"]
    search_fields = ["merchant__legal_name", "merchant__public_id"]
    date_hierarchy = "observed_on"
    readonly_fields = ["merchant", "kind", "observed_on", "summary", "figures", "created_at"]

    @admin.display(description="what was seen")
    def summary(self, warning: EarlyWarning) -> str:
        return str(warning.evidence.get("summary", ""))

    @admin.display(description="evidence")
    def figures(self, warning: EarlyWarning) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(warning.evidence, indent=2, sort_keys=True))
