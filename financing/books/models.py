"""Accounts, journal entries and postings."""

from __future__ import annotations
