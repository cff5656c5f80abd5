"""Notices go to the debtor who owes the money, with a delivery history; webhook secrets sealed;
the merchant credit file (a proxy of Merchant for the officers' admin).

Existing notices were all webhooks to a marketplace: each gets that marketplace's debtor row.
Existing webhook secrets are sealed with merchants.credentials, as API signing secrets are,
and the clear column is dropped.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import financing.models
import financing.notice_models
from merchants.credentials import secret_open, secret_seal

_CHANNELS = [("webhook", "Signed webhook"), ("email", "E-mail with PDF")]


def notices_to_debtors(apps, schema_editor):
    AssignmentNotice = apps.get_model("financing", "AssignmentNotice")
    Debtor = apps.get_model("merchants", "Debtor")
    for notice in AssignmentNotice.objects.select_related("marketplace").filter(debtor=None):
        debtor, _ = Debtor.objects.get_or_create(
            kind="marketplace",
            marketplace=notice.marketplace,
            defaults={"name": notice.marketplace.name},
        )
        AssignmentNotice.objects.filter(pk=notice.pk).update(debtor=debtor, channel="webhook")


def secrets_seal(apps, schema_editor):
    WebhookEndpoint = apps.get_model("financing", "WebhookEndpoint")
    for endpoint in WebhookEndpoint.objects.all():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            secret_sealed=secret_seal(endpoint.secret)
        )


def secrets_unseal(apps, schema_editor):
    WebhookEndpoint = apps.get_model("financing", "WebhookEndpoint")
    for endpoint in WebhookEndpoint.objects.all():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            secret=secret_open(endpoint.secret_sealed)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("financing", "0005_price_certainty_overdue"),
        ("merchants", "0006_debtor_email"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="NoticeAttempt",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("at", models.DateTimeField()),
                ("channel", models.CharField(choices=_CHANNELS, max_length=16)),
                (
                    "destination",
                    models.CharField(blank=True, help_text="URL or address.", max_length=500),
                ),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("delivered", "Delivered"),
                            ("transient", "Failed, to be retried"),
                            ("refused", "Refused"),
                            ("unaddressed", "No endpoint or address"),
                            ("gave_up", "Gave up after retries"),
                            ("resent", "Re-sent by an officer"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "detail",
                    models.TextField(
                        blank=True, help_text="HTTP status, error, or the officer's word."
                    ),
                ),
                (
                    "notice",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="history",
                        to="financing.assignmentnotice",
                    ),
                ),
                (
                    "officer",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["at", "id"]},
        ),
        migrations.AlterModelOptions(
            name="assignmentnotice",
            options={
                "permissions": [
                    ("resend_assignmentnotice", "Can re-send failed notices of assignment")
                ]
            },
        ),
        migrations.RemoveConstraint(
            model_name="assignmentnotice", name="notice_once_per_marketplace"
        ),
        migrations.AddField(
            model_name="assignmentnotice",
            name="channel",
            field=models.CharField(choices=_CHANNELS, default="webhook", max_length=16),
        ),
        migrations.AddField(
            model_name="assignmentnotice",
            name="debtor",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="notices",
                to="merchants.debtor",
            ),
        ),
        migrations.AddField(
            model_name="assignmentnotice",
            name="waiting",
            field=models.BooleanField(
                default=False,
                help_text="No endpoint or address yet: the sweep sends it once one exists.",
            ),
        ),
        migrations.AlterField(
            model_name="assignmentnotice",
            name="marketplace",
            field=models.ForeignKey(
                blank=True,
                help_text="The debtor marketplace whose webhook receives the notice.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="merchants.marketplace",
            ),
        ),
        migrations.AddField(
            model_name="webhookendpoint",
            name="secret_sealed",
            field=models.BinaryField(null=True),
        ),
        migrations.RunPython(notices_to_debtors, migrations.RunPython.noop),
        migrations.RunPython(secrets_seal, secrets_unseal),
        migrations.RemoveField(model_name="webhookendpoint", name="secret"),
        migrations.AlterField(
            model_name="assignmentnotice",
            name="channel",
            field=models.CharField(choices=_CHANNELS, max_length=16),
        ),
        migrations.AlterField(
            model_name="assignmentnotice",
            name="debtor",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="notices",
                to="merchants.debtor",
            ),
        ),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret_sealed",
            field=models.BinaryField(default=financing.notice_models.new_sealed_webhook_secret),
        ),
        migrations.AddIndex(
            model_name="assignmentnotice",
            index=models.Index(
                condition=models.Q(("waiting", True)), fields=["status"], name="notice_waiting_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="assignmentnotice",
            constraint=models.UniqueConstraint(
                fields=("advance", "debtor"), name="notice_once_per_debtor"
            ),
        ),
        migrations.AddConstraint(
            model_name="assignmentnotice",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("channel", "webhook"), ("marketplace__isnull", False)),
                    models.Q(("channel", "email"), ("marketplace__isnull", True)),
                    _connector="OR",
                ),
                name="notice_webhook_iff_marketplace",
            ),
        ),
        migrations.AddConstraint(
            model_name="assignmentnotice",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["pending", "delivered", "failed"])),
                name="notice_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="assignmentnotice",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("delivered_at__isnull", False), ("status", "delivered")),
                    models.Q(
                        models.Q(("status", "delivered"), _negated=True),
                        ("delivered_at__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="notice_delivered_has_time",
            ),
        ),
        migrations.AddConstraint(
            model_name="assignmentnotice",
            constraint=models.CheckConstraint(
                condition=models.Q(("waiting", False), ("status", "pending"), _connector="OR"),
                name="notice_waiting_is_pending",
            ),
        ),
        migrations.AddConstraint(
            model_name="noticeattempt",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "outcome__in",
                        ["delivered", "transient", "refused", "unaddressed", "gave_up", "resent"],
                    )
                ),
                name="noticeattempt_outcome_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="noticeattempt",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("officer__isnull", False), ("outcome", "resent")),
                    models.Q(
                        models.Q(("outcome", "resent"), _negated=True), ("officer__isnull", True)
                    ),
                    _connector="OR",
                ),
                name="noticeattempt_resent_by_officer",
            ),
        ),
        # The merchant credit file (financing.admin.merchants): a read-only view of a merchant.
        migrations.CreateModel(
            name="MerchantFile",
            fields=[],
            options={
                "verbose_name": "merchant credit file",
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("merchants.merchant",),
        ),
    ]
