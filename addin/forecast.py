"""Year-end forecasts and pacing: where spend is heading, from the months already closed.

A fiscal month is closed once its last day has passed (`as_of` is after it). Two forecasts:
*run rate* extrapolates actual spend per closed month to twelve months; *phasing* adds the
plan of the months still open to the actual spend so far.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import numpy as np

from sheet_templates.calendar import FiscalCalendar


class Method(StrEnum):
    RUN_RATE = "run_rate"
    PHASING = "phasing"


def closed_months(calendar: FiscalCalendar, as_of: dt.date) -> int:
    """How many fiscal months have ended by `as_of` (0..12)."""
    return sum(1 for m in calendar.months if m.last_day < as_of)


def elapsed_fraction(calendar: FiscalCalendar, as_of: dt.date) -> float:
    """The share of the fiscal year's days that have passed by the end of `as_of` (0..1)."""
    total = (calendar.end - calendar.start).days + 1
    passed = (min(max(as_of, calendar.start - dt.timedelta(days=1)), calendar.end) - calendar.start).days + 1
    return passed / total


def forecast(months: np.ndarray, actual: np.ndarray, closed: int, method: Method | str) -> np.ndarray:
    """Year-end spend per line in cents, from planned cents by month (lines x 12) and actual cents."""
    months = np.asarray(months, dtype=np.int64).reshape(-1, 12)
    actual = np.asarray(actual, dtype=np.int64)
    method = Method(method)
    if method is Method.PHASING:
        return actual + months[:, closed:].sum(axis=1)
    if closed == 0:  # nothing closed yet: the plan is the only run rate there is
        return months.sum(axis=1)
    return (actual * 12 * 2 + closed) // (2 * closed)  # actual / closed * 12, rounded half up


def pacing(actual: np.ndarray, planned: np.ndarray, fraction: float) -> np.ndarray:
    """Spend to date against time elapsed: (actual / planned) / fraction of the year; 1.0 is on pace.

    NaN where nothing is planned or no time has passed.
    """
    actual = np.asarray(actual, dtype=np.float64)
    planned = np.asarray(planned, dtype=np.float64)
    out = np.full(np.broadcast(actual, planned).shape, np.nan)
    if fraction <= 0:
        return out
    ok = np.broadcast_to(planned != 0, out.shape)
    ratio = np.divide(actual, planned, out=np.zeros(out.shape), where=planned != 0) / fraction
    out[ok] = ratio[ok]
    return out
