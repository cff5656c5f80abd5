"""Small pieces of SQL text shared by the hand-written statements."""

from __future__ import annotations


def placeholders(count: int) -> str:
    """``%s, %s, …``: one parameter placeholder per value, for an ``IN (…)`` list or a row."""
    return ", ".join(["%s"] * count)
