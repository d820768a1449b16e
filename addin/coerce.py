"""Turn raw cell values (as a spreadsheet hands them over) into the typed plan table.

Raw values are what python-calamine, openpyxl, xlwings or a JSON client give: str, float,
int, bool, date/datetime, None or '' for blanks. The typed table has one column per schema
input column: text as str, dates as datetime64, money as int64 cents (exact, so sums never
drift) and counts as int64. Each value that cannot be converted becomes an `Issue` carrying
its cell, and the value is left blank, so one pass reports every problem.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from addin.issues import Issue, Rule, Severity
from sheet_templates.cells import EXCEL_EPOCH as _EPOCH_1900
from sheet_templates.cells import EXCEL_EPOCH_1904 as _EPOCH_1904
from sheet_templates.money import MAX_AMOUNT, parse_amount_text, round_half_away
from sheet_templates.schema import Column, ColumnType, PlanSchema

EXCEL_ERRORS = frozenset({"#DIV/0!", "#N/A", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!", "#SPILL!", "#CALC!"})
ROW = "_row"  # the sheet row each line came from
_NUMBER_TYPES = frozenset({float, int})  # exactly these: bool is an int subclass but not an amount


@dataclass(slots=True)
class Located:
    """Where the values of a raw frame sit: sheet, file, row numbers and column letters."""

    sheet: str
    file: str | None
    letters: dict[str, str]  # schema column name -> column letter in this sheet
    issues: list[Issue] = field(default_factory=list)

    def add(self, rule: Rule, severity: Severity, column: str | None, row: int | None, message: str) -> None:
        row = None if row is None else int(row)  # numpy integers would not serialise as JSON numbers
        cell = f"{self.letters[column]}{row}" if column in self.letters and row is not None else None
        self.issues.append(Issue(rule, severity, message, self.file, self.sheet, cell, column, row))


def coerce(
    raw: Mapping[str, np.ndarray],
    schema: PlanSchema,
    where: Located,
    *,
    date1904: bool = False,
    only: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Convert `raw` (object arrays named by schema input columns, plus `_row`) into typed columns.

    With `only`, just those columns are converted (functions that need a few columns of a big range).
    """
    rows = np.asarray(raw[ROW], dtype=np.int64)
    out: dict[str, object] = {ROW: rows}
    columns = schema.input_columns if only is None else [schema[name] for name in dict.fromkeys(only)]
    for col in columns:
        values = np.asarray(raw[col.name], dtype=object) if col.name in raw else np.full(len(rows), None, dtype=object)
        convert = _CONVERTERS[col.type]
        out[col.name] = convert(values, col, rows, where, date1904)
    return pd.DataFrame(out, index=pd.RangeIndex(len(rows)))


def is_blank(value: object) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def _each_distinct(values: np.ndarray) -> tuple[np.ndarray, list[object]]:
    """Codes and distinct values (hash-based, in C): plan columns repeat a handful of values."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, list(uniques)


def _cells(codes: np.ndarray, k: int) -> np.ndarray:
    return np.flatnonzero(codes == k)


def _text(values: np.ndarray, col: Column, rows: np.ndarray, where: Located, _: bool) -> np.ndarray:
    codes, uniques = _each_distinct(values)
    canon = {c.casefold(): c for c in col.choices} if col.choices else None
    converted = []
    for k, v in enumerate(uniques):
        if isinstance(v, str):
            s = v.strip()
            if s in EXCEL_ERRORS:
                for i in _cells(codes, k):
                    where.add(
                        Rule.TYPE, Severity.ERROR, col.name, rows[i], f"{col.label} shows the error {s}; enter a value"
                    )
                s = ""
        elif isinstance(v, bool):
            s = "TRUE" if v else "FALSE"
        elif isinstance(v, float) and v.is_integer():
            s = str(int(v))  # a code typed as a number: 12345 -> "12345"
        elif isinstance(v, dt.datetime | dt.date):
            s = v.isoformat()
        else:
            s = str(v)
        if canon is not None and s:
            s = canon.get(" ".join(s.split()).casefold(), s)
        converted.append(s)
    table = np.array([*converted, ""], dtype=object)  # code -1 (None, NaN) maps to the last entry: blank
    return table[codes]


def _money(values: np.ndarray, col: Column, rows: np.ndarray, where: Located, _: bool) -> np.ndarray:
    return _number(values, col, rows, where, cents=True)


def _count(values: np.ndarray, col: Column, rows: np.ndarray, where: Located, _: bool) -> np.ndarray:
    return _number(values, col, rows, where, cents=False)


def _number(values: np.ndarray, col: Column, rows: np.ndarray, where: Located, *, cents: bool) -> np.ndarray:
    """Numbers pass through numpy in one step; only text and odd values are looked at one by one."""
    scale = 100 if cents else 1
    kind = "an amount" if cents else "a whole number"
    numeric = np.fromiter(map(_NUMBER_TYPES.__contains__, map(type, values.tolist())), bool, len(values))
    x = np.where(numeric, values, 0.0).astype(np.float64)
    valid = numeric.copy()
    for i in np.flatnonzero(~numeric & (values != "") & ~pd.isna(values)):  # blanks: None, NaN or ""
        v = values[i]
        if is_blank(v):
            continue
        if isinstance(v, str):
            parsed = parse_number_text(v)
            if parsed is None:
                shown = v.strip()
                hint = " (it shows an error)" if shown in EXCEL_ERRORS else ""
                where.add(
                    Rule.TYPE,
                    Severity.ERROR,
                    col.name,
                    rows[i],
                    f'{col.label} must be {kind}, not "{_clip(shown)}"{hint}',
                )
                continue
            where.add(
                Rule.NUMBER_AS_TEXT,
                Severity.WARNING,
                col.name,
                rows[i],
                f'{col.label} "{_clip(v.strip())}" is stored as text; it was read as {parsed:,.2f}',
            )
            x[i], valid[i] = parsed, True
        else:
            where.add(Rule.TYPE, Severity.ERROR, col.name, rows[i], f"{col.label} must be {kind}, not {_clip(str(v))}")
    with np.errstate(invalid="ignore"):
        unusable = valid & ~(np.abs(x) <= MAX_AMOUNT)  # also catches inf and NaN
    for i in np.flatnonzero(unusable):
        where.add(
            Rule.TYPE,
            Severity.ERROR,
            col.name,
            rows[i],
            f"{col.label} {x[i]:,.0f} is larger than Plansheet accepts ({MAX_AMOUNT:,.0f})",
        )
    x[~valid | unusable] = 0.0
    scaled = x * scale
    whole = round_half_away(scaled)
    # A fraction of a cent (or of a lead) is real only beyond the float's own error at that size.
    fractional = np.abs(scaled - whole) > np.maximum(1e-6, 8 * np.spacing(np.abs(scaled)))
    for i in np.flatnonzero(fractional):
        if cents:
            where.add(
                Rule.ROUNDED,
                Severity.WARNING,
                col.name,
                rows[i],
                f"{col.label} {x[i]} has more than two decimals; it was rounded to {whole[i] / 100:.2f}",
            )
        else:
            where.add(Rule.TYPE, Severity.ERROR, col.name, rows[i], f"{col.label} must be a whole number, not {x[i]:g}")
            whole[i] = 0
    return whole.astype(np.int64)


def _date(values: np.ndarray, col: Column, rows: np.ndarray, where: Located, date1904: bool) -> np.ndarray:
    codes, uniques = _each_distinct(values)
    epoch = _EPOCH_1904 if date1904 else _EPOCH_1900
    converted = []
    for k, v in enumerate(uniques):
        day: dt.date | None = None
        if isinstance(v, dt.datetime):
            day = v.date()
        elif isinstance(v, dt.date):
            day = v
        elif type(v) is float or type(v) is int:
            if 1 <= v < 2_958_466:  # Excel's date serials: 1900-01-01 .. 9999-12-31
                day = epoch + dt.timedelta(days=int(v))
        elif isinstance(v, str):
            if not v.strip():
                converted.append(np.datetime64("NaT", "s"))
                continue
            day = parse_date_text(v.strip())
        if day is None:
            for i in _cells(codes, k):
                where.add(
                    Rule.TYPE,
                    Severity.ERROR,
                    col.name,
                    rows[i],
                    f'{col.label} must be a date (for example 2026-03-31), not "{_clip(str(v))}"',
                )
            converted.append(np.datetime64("NaT", "s"))
        else:
            converted.append(np.datetime64(day, "s"))
    table = np.array([*converted, np.datetime64("NaT", "s")], dtype="datetime64[s]")
    return table[codes]


def parse_number_text(text: str) -> float | None:
    """A number typed as text ("1,250.50", "$300", "(300)") as money.parse_amount_text reads it; None if not one."""
    number = parse_amount_text(text)
    return None if number is None else float(number)


def parse_date_text(text: str) -> dt.date | None:
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d", "%d %b %Y", "%d %B %Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_CONVERTERS: dict[ColumnType, Callable[[np.ndarray, Column, np.ndarray, Located, bool], np.ndarray]] = {
    ColumnType.ID: _text,
    ColumnType.TEXT: _text,
    ColumnType.CHOICE: _text,
    ColumnType.MONEY: _money,
    ColumnType.COUNT: _count,
    ColumnType.DATE: _date,
}


def blank_lines(table: pd.DataFrame, columns: Sequence[Column]) -> np.ndarray:
    """Rows of a typed table whose `columns` hold nothing: empty text, no date, zero amounts."""
    blank = np.ones(len(table), dtype=bool)
    for col in columns:
        values = table[col.name].to_numpy()
        if col.type is ColumnType.DATE:
            blank &= np.isnat(values)
        elif col.type in (ColumnType.MONEY, ColumnType.COUNT):
            blank &= values == 0
        else:
            blank &= values == ""
    return blank
