from __future__ import annotations

import datetime as dt

import pytest

from sheet_templates.calendar import FiscalCalendar

FY2027_FEB = FiscalCalendar(2027, start_month=2, named_for="end")


def labels(cal: FiscalCalendar) -> list[str]:
    return [m.label for m in cal.months]


def test_fy2027_starting_in_february_named_for_its_end_runs_feb_2026_to_jan_2027() -> None:
    cal = FY2027_FEB
    assert cal.label == "FY2027"
    assert labels(cal) == [
        "Feb 2026", "Mar 2026", "Apr 2026", "May 2026", "Jun 2026", "Jul 2026",
        "Aug 2026", "Sep 2026", "Oct 2026", "Nov 2026", "Dec 2026", "Jan 2027",
    ]  # fmt: skip
    assert (cal.start, cal.end) == (dt.date(2026, 2, 1), dt.date(2027, 1, 31))
    assert [m.name for m in cal.months] == [f"m{i:02d}" for i in range(1, 13)]
    assert [m.index for m in cal.months] == list(range(1, 13))


def test_bundled_config_is_that_calendar(schema) -> None:
    assert schema.calendar == FY2027_FEB


def test_named_for_start_begins_in_the_named_year() -> None:
    cal = FiscalCalendar(2027, start_month=2, named_for="start")
    assert labels(cal)[0] == "Feb 2027"
    assert labels(cal)[-1] == "Jan 2028"
    assert (cal.start, cal.end) == (dt.date(2027, 2, 1), dt.date(2028, 1, 31))


@pytest.mark.parametrize("named_for", ["start", "end"])
def test_calendar_year_when_starting_in_january(named_for: str) -> None:
    cal = FiscalCalendar(2026, start_month=1, named_for=named_for)
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    assert labels(cal) == [f"{m} 2026" for m in months]
    assert (cal.start, cal.end) == (dt.date(2026, 1, 1), dt.date(2026, 12, 31))


def test_july_start_named_for_end_like_a_us_federal_style_year() -> None:
    cal = FiscalCalendar(2027, start_month=7)
    assert (cal.start, cal.end) == (dt.date(2026, 7, 1), dt.date(2027, 6, 30))
    assert [m.month for m in cal.quarter_months(3)] == [1, 2, 3]
    assert {m.year for m in cal.quarter_months(3)} == {2027}


@pytest.mark.parametrize(
    ("day", "month"),
    [
        (dt.date(2026, 1, 31), None),  # the day before the year starts
        (dt.date(2026, 2, 1), 1),
        (dt.date(2026, 2, 28), 1),
        (dt.date(2026, 3, 1), 2),
        (dt.date(2026, 12, 31), 11),
        (dt.date(2027, 1, 1), 12),
        (dt.date(2027, 1, 31), 12),
        (dt.date(2027, 2, 1), None),  # the first day of FY2028
    ],
)
def test_month_of(day: dt.date, month: int | None) -> None:
    assert FY2027_FEB.month_of(day) == month
    assert FY2027_FEB.contains(day) is (month is not None)


def test_every_day_of_the_year_falls_in_the_month_that_contains_it() -> None:
    cal = FY2027_FEB
    day = cal.start
    while day <= cal.end:
        month = cal.months[cal.month_of(day) - 1]
        assert month.first_day <= day <= month.last_day
        day += dt.timedelta(days=1)


def test_quarters_are_three_consecutive_months() -> None:
    cal = FY2027_FEB
    assert [[m.label for m in cal.quarter_months(q)] for q in range(1, 5)] == [
        ["Feb 2026", "Mar 2026", "Apr 2026"],
        ["May 2026", "Jun 2026", "Jul 2026"],
        ["Aug 2026", "Sep 2026", "Oct 2026"],
        ["Nov 2026", "Dec 2026", "Jan 2027"],
    ]
    assert [m.quarter for m in cal.months] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert cal.quarter_months(5) == ()


def test_month_first_and_last_days_including_leap_february() -> None:
    cal = FiscalCalendar(2028, start_month=2, named_for="start")  # Feb 2028 is a leap February
    feb = cal.months[0]
    assert (feb.first_day, feb.last_day) == (dt.date(2028, 2, 1), dt.date(2028, 2, 29))
    assert FY2027_FEB.months[0].last_day == dt.date(2026, 2, 28)
