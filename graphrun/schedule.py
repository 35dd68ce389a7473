"""Cron schedules: checking one, and the next tick after a moment, in the schedule's timezone.

The syntax is croniter's, as the official server takes it: five fields (minute hour day-of-month month
day-of-week), or six with seconds last (checked against langgraph-api 0.16.7: ``*/5 * * * * *`` is every
second of every fifth minute there too; every five seconds is ``* * * * * */5``). A schedule without a
timezone is read in UTC. Pure: the store and the worker compute ticks with it; nothing here keeps time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from graphrun.errors import InvalidRequest


def check(schedule: str) -> str:
    """The schedule, if croniter reads it and it ever fires ('0 0 31 2 *' never does)."""
    fields = schedule.split() if isinstance(schedule, str) else []
    alias = len(fields) == 1 and fields[0].startswith("@")  # @daily, @hourly, ...
    if not (alias or len(fields) in (5, 6)) or not croniter.is_valid(schedule):
        raise InvalidRequest(
            f"invalid cron schedule {schedule!r}: expected five fields (minute hour day-of-month month "
            "day-of-week, e.g. '*/5 * * * *' for every 5 minutes) or six with seconds last (a year field "
            "is not taken: a schedule that ends would stay due forever)"
        )
    try:
        next_tick(schedule, datetime.now(UTC))
    except CroniterBadDateError:
        raise InvalidRequest(
            f"cron schedule {schedule!r} names no date that exists: it would never fire"
        ) from None
    return schedule


def check_timezone(timezone: str | None) -> str | None:
    if timezone is None:
        return None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
        raise InvalidRequest(
            f"invalid timezone {timezone!r}: expected an IANA name such as 'America/New_York'"
        ) from None
    return timezone


def next_tick(schedule: str, after: datetime, timezone: str | None = None) -> datetime:
    """The first tick of ``schedule`` strictly after ``after``, in UTC. Days and hours are the
    timezone's (so '0 9 * * *' in 'Europe/Paris' follows daylight saving time)."""
    local = after.astimezone(ZoneInfo(timezone)) if timezone else after.astimezone(UTC)
    found: datetime = croniter(schedule, local).get_next(datetime)
    return found.astimezone(UTC)
