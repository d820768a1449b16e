"""The fiscal calendar: which calendar months make up the fiscal year and its quarters."""

from __future__ import annotations

import calendar as _cal
import datetime as dt
from dataclasses import dataclass

QUARTERS = ("Q1", "Q2", "Q3", "Q4")  # the fiscal quarters, as every surface names them
MONTH_KEYS = tuple(f"m{i:02d}" for i in range(1, 13))  # the fiscal months, m01 = the first month of the year


def quarter_of(month_key: str) -> str:
    """'m05' -> 'Q2'."""
    return QUARTERS[(MONTH_KEYS.index(month_key)) // 3]


def months_of(quarter: str) -> tuple[str, ...]:
    """'Q2' -> ('m04', 'm05', 'm06')."""
    q = QUARTERS.index(quarter)
    return MONTH_KEYS[3 * q : 3 * q + 3]


def period_months(text: str) -> tuple[str, ...] | None:
    """The fiscal months a period names: '', FY or YEAR (all), Q1..Q4, or m01..m12 (any case); None if none."""
    name = text.strip()
    if name.upper() in ("", "FY", "YEAR"):
        return MONTH_KEYS
    if name.upper() in QUARTERS:
        return months_of(name.upper())
    if name.lower() in MONTH_KEYS:
        return (name.lower(),)
    return None


def fiscal_year(value: object) -> int | None:
    """The fiscal year a cell or a query names (2028, 2028.0, "2028" or "FY2028"); None for a blank.

    ValueError, saying how to write it, for anything else.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"year {value!r} is not a fiscal year; write it as 2028 or FY2028")
    if isinstance(value, (int, float)) and float(value).is_integer():
        text = str(int(value))
    else:
        text = str(value).strip().upper().removeprefix("FY").strip()
    if not (text.isdigit() and len(text) == 4):
        raise ValueError(f"year {str(value)[:20]!r} is not a fiscal year; write it as 2028 or FY2028")
    return int(text)


@dataclass(frozen=True, slots=True)
class FiscalMonth:
    """One of the twelve fiscal months (`index` 1..12) and the calendar month it is."""

    index: int
    year: int
    month: int

    @property
    def name(self) -> str:
        return f"m{self.index:02d}"

    @property
    def label(self) -> str:
        return f"{_cal.month_abbr[self.month]} {self.year}"

    @property
    def quarter(self) -> int:
        return (self.index - 1) // 3 + 1

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def last_day(self) -> dt.date:
        return dt.date(self.year, self.month, _cal.monthrange(self.year, self.month)[1])


@dataclass(frozen=True, slots=True)
class FiscalCalendar:
    """A fiscal year of twelve calendar months starting in `start_month`.

    `named_for="end"` names the year by the calendar year it ends in (FY2027 = Feb 2026 to
    Jan 2027 when it starts in February), the common US convention; `"start"` by the year
    it starts in.
    """

    year: int
    start_month: int = 1
    named_for: str = "end"

    @property
    def label(self) -> str:
        return f"FY{self.year}"

    @property
    def months(self) -> tuple[FiscalMonth, ...]:
        first_year = self.year
        if self.named_for == "end" and self.start_month > 1:
            first_year -= 1
        out = []
        for i in range(12):
            month0 = self.start_month - 1 + i
            out.append(FiscalMonth(i + 1, first_year + month0 // 12, month0 % 12 + 1))
        return tuple(out)

    @property
    def start(self) -> dt.date:
        return self.months[0].first_day

    @property
    def end(self) -> dt.date:
        return self.months[-1].last_day

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    def month_of(self, day: dt.date) -> int | None:
        """The fiscal month index (1..12) of a date, or None outside the year."""
        if not self.contains(day):
            return None
        return (day.year * 12 + day.month - (self.start.year * 12 + self.start.month)) + 1

    def quarter_months(self, quarter: int) -> tuple[FiscalMonth, ...]:
        return tuple(m for m in self.months if m.quarter == quarter)
