"""Four-eyes proposals, bank-wide debtor limits and duplicate-flag clearances; debtor keys.

Business buyers without a tax id were keyed by their case-folded name alone; they are now keyed
by their folded name and country (financing.eligibility.business_debtor_key), so the stored
receivables get their key recomputed, and each assignment carries its receivable's key.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from financing.eligibility import business_debtor_key


def debtor_keys_recompute(apps, schema_editor):
    Invoice = apps.get_model("ledger", "Invoice")
    Receivable = apps.get_model("financing", "Receivable")
    Assignment = apps.get_model("financing", "Assignment")
    business = Receivable.objects.exclude(debtor_key__startswith="marketplace:")
    for receivable in business.iterator():
        invoice = Invoice.objects.get(merchant_id=receivable.merchant_id, ref=receivable.ref)
        receivable.debtor_key = business_debtor_key(
            invoice.debtor_tax_id, invoice.debtor_name, invoice.debtor_country
        )
        receivable.save(update_fields=["debtor_key"])
    for assignment in Assignment.objects.iterator():
        assignment.debtor_key = Receivable.objects.values_list("debtor_key", flat=True).get(
            merchant_id=assignment.merchant_id, ref=assignment.invoice_ref
        )
        assignment.save(update_fields=["debtor_key"])


class Migration(migrations.Migration):

    dependencies = [
        ('financing', '0002_fingerprint_national_tax_ids'),
        ('ledger', '0005_sqlite_append_only_again'),
        ('merchants', '0005_debtor_name_key'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='DebtorLimit',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('currency', models.CharField(max_length=3)),
                ('debtor_key', models.CharField(max_length=160)),
                ('debtor_name', models.CharField(max_length=200)),
                ('limit_minor', models.BigIntegerField()),
                ('version', models.PositiveIntegerField(default=1)),
            ],
        ),
        migrations.CreateModel(
            name='DuplicateClearance',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('invoice_ref', models.CharField(max_length=128)),
                ('cleared_at', models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name='RiskChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('facility_open', 'Open a facility'), ('facility_change', "Change a facility's terms"), ('debtor_limit', 'Set a bank-wide debtor limit'), ('blacklist_lift', 'Lift a blacklisting'), ('duplicate_clear', 'Clear a duplicate-invoice flag')], max_length=24)),
                ('target', models.CharField(max_length=200)),
                ('before', models.JSONField(default=dict, help_text='What stood when it was proposed.')),
                ('payload', models.JSONField(default=dict, help_text='What is proposed.')),
                ('reason', models.TextField()),
                ('status', models.CharField(choices=[('proposed', 'Proposed, awaiting a senior officer'), ('confirmed', 'Confirmed'), ('rejected', 'Rejected')], default='proposed', max_length=16)),
                ('proposed_at', models.DateTimeField()),
                ('decided_at', models.DateTimeField(blank=True, null=True)),
                ('decision_note', models.TextField(blank=True)),
            ],
            options={
                'ordering': ['-proposed_at', '-id'],
                'permissions': [('confirm_riskchange', "Can confirm or reject another officer's change")],
            },
        ),
        migrations.AddField(
            model_name='assignment',
            name='debtor_key',
            field=models.CharField(default='', help_text="The receivable's debtor key.", max_length=160),
        ),
        migrations.AlterField(
            model_name='receivable',
            name='debtor_key',
            field=models.CharField(help_text="Who owes it: 'marketplace:<code>', 'business:<tax id>' or 'business-name:<country>:<normalised name>'.", max_length=160),
        ),
        migrations.RunPython(debtor_keys_recompute, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='assignment',
            name='debtor_key',
            field=models.CharField(help_text="The receivable's debtor key.", max_length=160),
        ),
        migrations.AddIndex(
            model_name='assignment',
            index=models.Index(fields=['debtor_key', 'status'], name='assignment_debtor_key_idx'),
        ),
        migrations.AddConstraint(
            model_name='debtorlimit',
            constraint=models.UniqueConstraint(fields=('currency', 'debtor_key'), name='debtorlimit_one_per_debtor'),
        ),
        migrations.AddConstraint(
            model_name='debtorlimit',
            constraint=models.CheckConstraint(condition=models.Q(('limit_minor__gte', 0)), name='debtorlimit_limit_not_negative'),
        ),
        migrations.AddField(
            model_name='duplicateclearance',
            name='entry',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ledger.entry'),
        ),
        migrations.AddField(
            model_name='duplicateclearance',
            name='merchant',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='merchants.merchant'),
        ),
        migrations.AddField(
            model_name='riskchange',
            name='decided_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='riskchange',
            name='proposed_by',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='duplicateclearance',
            name='proposal',
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='financing.riskchange'),
        ),
        migrations.AddField(
            model_name='blacklisting',
            name='lift_change',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='financing.riskchange'),
        ),
        migrations.AddField(
            model_name='facilitychange',
            name='proposal',
            field=models.ForeignKey(blank=True, help_text='The confirmed proposal this change carried out (empty before four-eyes).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='financing.riskchange'),
        ),
        migrations.AddConstraint(
            model_name='riskchange',
            constraint=models.UniqueConstraint(condition=models.Q(('status', 'proposed')), fields=('target',), name='riskchange_one_open_per_target'),
        ),
        migrations.AddConstraint(
            model_name='riskchange',
            constraint=models.CheckConstraint(condition=models.Q(('decided_by__isnull', True), models.Q(('decided_by', models.F('proposed_by')), _negated=True), _connector='OR'), name='riskchange_decider_not_proposer'),
        ),
        migrations.AddConstraint(
            model_name='riskchange',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('decided_at__isnull', True), ('decided_by__isnull', True), ('status', 'proposed')), models.Q(('decided_at__isnull', False), ('decided_by__isnull', False), ('status__in', ['confirmed', 'rejected'])), _connector='OR'), name='riskchange_decision_consistent'),
        ),
        migrations.AddConstraint(
            model_name='riskchange',
            constraint=models.CheckConstraint(condition=models.Q(('reason', ''), _negated=True), name='riskchange_reason_given'),
        ),
        migrations.AddConstraint(
            model_name='riskchange',
            constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['facility_open', 'facility_change', 'debtor_limit', 'blacklist_lift', 'duplicate_clear'])), name='riskchange_kind_valid'),
        ),
        migrations.AddConstraint(
            model_name='duplicateclearance',
            constraint=models.UniqueConstraint(fields=('merchant', 'invoice_ref'), name='duplicateclearance_once_per_receivable'),
        ),
    ]
