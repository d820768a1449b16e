"""A1 cell references: the one place where row/column numbers become `Plan!F12` and back."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

MAX_ROWS = 1_048_576  # Excel's sheet limits
MAX_COLUMNS = 16_384
_A1 = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,7})$")


EXCEL_EPOCH = dt.date(1899, 12, 30)  # day 0 of Excel's (and Google Sheets') 1900 date system
EXCEL_EPOCH_1904 = dt.date(1904, 1, 1)


def excel_serial(day: dt.date) -> int:
    """A date as the serial number Excel, LibreOffice and Google Sheets store (1900 date system)."""
    return (day - EXCEL_EPOCH).days


def date_of_serial(serial: float, *, date1904: bool = False) -> dt.date:
    """The day of a date serial (the fraction, a time of day, is dropped)."""
    return (EXCEL_EPOCH_1904 if date1904 else EXCEL_EPOCH) + dt.timedelta(days=int(serial))


def column_letter(column: int) -> str:
    """1 -> 'A', 27 -> 'AA', 16384 -> 'XFD'."""
    if not 1 <= column <= MAX_COLUMNS:
        raise ValueError(f"column {column} is outside 1..{MAX_COLUMNS}")
    letters = ""
    while column:
        column, rem = divmod(column - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def column_index(letters: str) -> int:
    """'A' -> 1, 'AA' -> 27; the inverse of `column_letter`."""
    if not letters.isalpha() or not letters.isascii() or len(letters) > 3:
        raise ValueError(f"{letters!r} is not a column name")
    column = 0
    for ch in letters.upper():
        column = column * 26 + ord(ch) - 64
    if column > MAX_COLUMNS:
        raise ValueError(f"column {letters} is beyond Excel's last column XFD")
    return column


def a1(row: int, column: int) -> str:
    """(12, 6) -> 'F12'."""
    if not 1 <= row <= MAX_ROWS:
        raise ValueError(f"row {row} is outside 1..{MAX_ROWS}")
    return f"{column_letter(column)}{row}"


def parse_a1(ref: str) -> tuple[int, int]:
    """'F12' or '$F$12' -> (12, 6)."""
    match = _A1.match(ref.strip())
    if not match:
        raise ValueError(f"{ref!r} is not an A1 cell reference")
    row = int(match.group(2))
    if not 1 <= row <= MAX_ROWS:
        raise ValueError(f"row {row} is outside 1..{MAX_ROWS}")
    return row, column_index(match.group(1))


def quote_sheet(sheet: str) -> str:
    """Quote a sheet name for use in a reference when it needs it ('My Plan'!A1)."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", sheet):
        return sheet
    return "'" + sheet.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class CellRef:
    """Where a value came from: a cell of a sheet in a book (a file name or a spreadsheet id)."""

    sheet: str
    row: int
    column: int
    book: str | None = None

    @property
    def address(self) -> str:
        return a1(self.row, self.column)

    def __str__(self) -> str:
        return f"{quote_sheet(self.sheet)}!{self.address}"
