"""``graphrun.schedule``: cron schedules checked and their next tick, in UTC or a timezone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from graphrun import errors, schedule


@pytest.mark.parametrize(
    ("spec", "after", "expected"),
    [
        ("*/5 * * * *", datetime(2026, 3, 1, 10, 2, tzinfo=UTC), datetime(2026, 3, 1, 10, 5, tzinfo=UTC)),
        ("*/5 * * * *", datetime(2026, 3, 1, 10, 5, tzinfo=UTC), datetime(2026, 3, 1, 10, 10, tzinfo=UTC)),
        (
            "* * * * * */10",
            datetime(2026, 3, 1, 10, 0, 3, tzinfo=UTC),
            datetime(2026, 3, 1, 10, 0, 10, tzinfo=UTC),
        ),
        ("0 9 * * MON", datetime(2026, 3, 4, tzinfo=UTC), datetime(2026, 3, 9, 9, tzinfo=UTC)),
        ("0 0 29 2 *", datetime(2026, 3, 1, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)
def test_the_next_tick_is_strictly_after(spec: str, after: datetime, expected: datetime) -> None:
    assert schedule.next_tick(spec, after) == expected


def test_a_timezone_follows_daylight_saving_time() -> None:
    # Clocks in New York went forward on 2026-03-08: 9:00 is 14:00 UTC before (EST), 13:00 after (EDT).
    before = schedule.next_tick("0 9 * * *", datetime(2026, 3, 7, 12, tzinfo=UTC), "America/New_York")
    after = schedule.next_tick("0 9 * * *", datetime(2026, 3, 9, 12, tzinfo=UTC), "America/New_York")

    assert before == datetime(2026, 3, 7, 14, tzinfo=UTC)
    assert after == datetime(2026, 3, 9, 13, tzinfo=UTC)


@pytest.mark.parametrize("spec", ["every day", "", "61 * * * *", "@reboot", "0 0 31 2 *", "0 0 1 1 * 0 2027"])
def test_a_bad_schedule_is_refused(spec: str) -> None:
    with pytest.raises(errors.InvalidRequest, match="schedule"):
        schedule.check(spec)


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "../etc/passwd", "x" * 300])
def test_a_bad_timezone_is_refused(tz: str) -> None:
    with pytest.raises(errors.InvalidRequest, match="timezone"):
        schedule.check_timezone(tz)


def test_no_timezone_is_utc() -> None:
    assert schedule.check_timezone(None) is None
    assert schedule.check_timezone("Asia/Tokyo") == "Asia/Tokyo"
