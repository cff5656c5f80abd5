"""The bank's business day: what day a quote is for, and when it stops holding.

A quote is the price of an advance paid out on the business day it is given: its fee counts the
days from that day to each receivable's due date, and it holds until that day ends. The day is
the calendar date in ``settings.CHAINFIN_BUSINESS_TZ`` (the bank's zone, ``TIME_ZONE`` unless
set), not in UTC: a quote given at 23:30 in Berlin expires half an hour later, not at 01:00.
Weekends and holidays are not modelled; every calendar day is a business day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.CHAINFIN_BUSINESS_TZ)


def business_day(now: datetime) -> date:
    """Return the bank's business day at the aware instant ``now``."""
    return now.astimezone(_zone()).date()


def business_day_end(day: date) -> datetime:
    """Return the last instant of ``day`` in the bank's zone: when a quote for it expires."""
    next_midnight = datetime.combine(day + timedelta(days=1), time.min, tzinfo=_zone())
    return next_midnight - timedelta(microseconds=1)
