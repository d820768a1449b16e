"""Values as spreadsheets pass them, and back: 2-D lists, blanks, floats, date serials, errors.

Excel (through xlwings or Office.js) and Google Sheets hand a function its ranges as lists
of rows, with `None` (or '') for blank cells, floats for every number, and dates as
serial numbers or datetimes. These helpers turn them into the core's arrays (money as
integer cents) and a result back into rows; a problem becomes an `ExcelError` that each
host shows in the cell with its message.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from addin.coerce import parse_date_text, parse_number_text
from sheet_templates.calendar import FiscalCalendar
from sheet_templates.cells import EXCEL_EPOCH as _EPOCH
from sheet_templates.errors import PlansheetError
from sheet_templates.money import MAX_AMOUNT, round_half_away


@dataclass(frozen=True, slots=True)
class ExcelError:
    """An error value for a cell (`#VALUE!`, `#N/A`, ...) and a sentence saying why."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


class HostValueError(PlansheetError):
    """An argument a spreadsheet passed cannot be used; shown in the cell as an Excel error."""

    def __init__(self, message: str, code: str = "#VALUE!") -> None:
        super().__init__(message)
        self.code = code

    def as_error(self) -> ExcelError:
        return ExcelError(self.code, self.message)


def grid(value: Any) -> list[list[Any]]:
    """Any argument as a list of rows: a single value is a 1x1 range, a flat list one row."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list | tuple):
        return [[value]]
    if not value:
        return [[None]]
    if not isinstance(value[0], list | tuple):
        return [list(value)]
    lengths = set(map(len, value))
    if len(lengths) == 1:  # rectangular, as every host sends it: used as it is, without a copy
        return value if isinstance(value, list) else list(value)
    width = max(lengths)
    return [list(r) + [None] * (width - len(r)) for r in value]


def is_blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def numbers(value: Any, name: str) -> np.ndarray:
    """A range of numbers as a 2-D float array; blank cells are 0, text numbers are read."""
    rows = grid(value)
    flat = [v for row in rows for v in row]
    if all(type(v) is float or type(v) is int for v in flat):  # the common case, converted in C
        return _finite(np.array(flat, dtype=np.float64).reshape(len(rows), len(rows[0])), name)
    out = np.zeros((len(rows), len(rows[0])), dtype=np.float64)
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            if type(v) is float or type(v) is int:
                out[r, c] = v
            elif is_blank(v):
                continue
            elif isinstance(v, str) and (parsed := parse_number_text(v)) is not None:
                out[r, c] = parsed
            else:
                where = f" (row {r + 1}, column {c + 1})" if out.size > 1 else ""
                raise HostValueError(f'{name}: "{v}"{where} is not a number')
    return _finite(out, name)


def _finite(out: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(out).all():
        raise HostValueError(f"{name}: contains a number too large to use", "#NUM!")
    return out


def cents(value: Any, name: str) -> np.ndarray:
    """A range of amounts as a 2-D array of integer cents."""
    amounts = numbers(value, name)
    if (np.abs(amounts) > MAX_AMOUNT).any():  # the same limit as a plan's cells
        raise HostValueError(f"{name}: an amount is larger than Plansheet accepts ({MAX_AMOUNT:,})", "#NUM!")
    return round_half_away(amounts * 100).astype(np.int64)


def texts(value: Any) -> np.ndarray:
    """A range as a 2-D array of trimmed strings ('' for blanks; 12345.0 becomes '12345')."""
    rows = grid(value)
    out = np.empty((len(rows), len(rows[0])), dtype=object)
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            if is_blank(v):
                out[r, c] = ""
            elif isinstance(v, float) and v.is_integer():
                out[r, c] = str(int(v))
            else:
                out[r, c] = str(v).strip()
    return out


def text(value: Any, name: str, default: str = "") -> str:
    """A single text argument (a 1x1 range is fine)."""
    rows = grid(value)
    if len(rows) != 1 or len(rows[0]) != 1:
        raise HostValueError(f"{name} must be a single value, not a range")
    v = rows[0][0]
    return default if is_blank(v) else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip())


def date(value: Any, name: str, default: dt.date | None = None) -> dt.date:
    """A single date argument: a datetime, a date serial or ISO text; blank means `default` (today)."""
    rows = grid(value)
    if len(rows) != 1 or len(rows[0]) != 1:
        raise HostValueError(f"{name} must be a single date, not a range")
    v = rows[0][0]
    if is_blank(v):
        return default or dt.date.today()
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool) and 1 <= v < 2_958_466:
        return _EPOCH + dt.timedelta(days=int(v))
    if isinstance(v, str) and len(v) == 10 and v[4] == v[7] == "-":  # ISO, as hosts send dates: read in C
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            pass
    if isinstance(v, str) and (day := parse_date_text(v.strip())) is not None:
        return day
    raise HostValueError(f'{name}: "{v}" is not a date (use a date cell or 2026-03-31)')


def fiscal_month(value: Any, calendar: FiscalCalendar) -> str | None:
    """A period cell as a fiscal month name m01..m12: 'm03', a month label ('Apr 2026') or a date."""
    if is_blank(value):
        return None
    by_label = {m.label.casefold(): m.name for m in calendar.months}
    names = {m.name for m in calendar.months}
    if isinstance(value, str):
        key = value.strip().casefold()
        if key in names:
            return key
        if key in by_label:
            return by_label[key]
    try:
        day = date(value, "period")
    except HostValueError:
        day = None
    index = calendar.month_of(day) if day is not None else None
    if index is None:
        raise HostValueError(
            f'period "{value}" is not a month of {calendar.label} (use m01..m12, "Feb 2026" or a date)'
        )
    return f"m{index:02d}"


def broadcast(arrays: Sequence[np.ndarray], names: Sequence[str]) -> list[np.ndarray]:
    """Ranges of one shape, or single values that apply to every cell; anything else is an error."""
    shapes = {a.shape for a in arrays if a.shape != (1, 1)}
    if len(shapes) > 1:
        shown = ", ".join(f"{n} is {a.shape[0]}x{a.shape[1]}" for a, n in zip(arrays, names, strict=True))
        raise HostValueError(f"the ranges must be the same size ({shown})")
    return list(np.broadcast_arrays(*arrays))


def money_out(cents_array: np.ndarray) -> list[list[float]]:
    """Cents back to amounts, as rows."""
    amounts = np.asarray(cents_array, dtype=np.int64) / 100
    if amounts.ndim == 2 and amounts.shape[1] == 1:  # a column: one small list per row, built in one pass
        return [[v] for v in amounts[:, 0].tolist()]
    return amounts.tolist()


def ratio_out(values: np.ndarray) -> list[list[Any]]:
    """Floats as rows, with NaN (no meaningful value) as a blank cell."""
    return [[None if isinstance(v, float) and math.isnan(v) else v for v in row] for row in values.tolist()]
