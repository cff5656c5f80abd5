"""The merchant portal: a supplier's own evidence, receivables and money, in English or Chinese.

Above financing in the layers (it reads the parties, the ledger and financing), and nothing
imports it. One package per area (auth, dashboard, receivables, advances, statements;
settings come next), each with its views, selectors and templates under
``templates/portal/<area>/``. Every view is wrapped by ``portal.access``: who is asking, and for
which merchant, is settled before a view runs.
"""
