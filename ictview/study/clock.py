"""An injectable clock: washout and audit times come from it, so tests can move time.

Times are timezone-aware UTC datetimes; stored as ISO 8601 text with milliseconds
(the catalog's `utc_now()` format), shown to people as "2026-12-03 14:00 UTC".
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

from ictview.errors import IctviewError


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FixedClock:
    """A clock that only moves when told to (tests, screenshots)."""

    def __init__(self, at: datetime | str):
        self._now = as_utc(parse_time(at) if isinstance(at, str) else at)

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime | str) -> None:
        self._now = as_utc(parse_time(at) if isinstance(at, str) else at)

    def advance(self, **delta: float) -> datetime:
        """advance(days=7, hours=1): keyword arguments of datetime.timedelta."""
        self._now = self._now + timedelta(**delta)
        return self._now


def as_utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise IctviewError(f"clock: time {at.isoformat()} has no time zone (use UTC)")
    return at.astimezone(timezone.utc)


def iso(at: datetime) -> str:
    """Storage form, as catalog.utc_now(): '2026-12-03T14:00:00.000+00:00'."""
    return as_utc(at).isoformat(timespec="milliseconds")


def parse_time(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise IctviewError(f"clock: '{text}' is not an ISO 8601 time") from None
    if at.tzinfo is None:  # the catalog only writes UTC; a bare time is UTC
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc)


def human(at: datetime, *, round_up: bool = False) -> str:
    """'2026-12-03 14:00 UTC' (minutes: what a person needs to plan a session).

    round_up: the next whole minute, for an opening time (a washout that ends at
    14:00:30 opens "14:01": trying at 14:00 must not be refused after being told 14:00).
    """
    at = as_utc(at)
    if round_up and (at.second or at.microsecond):
        at = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return at.strftime("%Y-%m-%d %H:%M UTC")


def human_duration(delta: timedelta) -> str:
    """'6 days 3 hours', '2 hours 5 minutes', 'less than a minute'."""
    s = max(int(delta.total_seconds()), 0)
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    shown = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n][:2]
    return " ".join(shown) if shown else "less than a minute"
