"""Reading the exports other systems give us (CSV or xlsx): the grid, its header, its months.

Finance, CRM and marketing-automation exports share their troubles: a title above the header,
a UTF-8 or Windows-1252 CSV with any delimiter, dates written as text in either day order,
footer and totals rows. Each import (actual spend, outcomes) reads its file here, so every
export is read the same way and every refusal names the sheet and cell.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import gc
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as attribute
from typing import Any

import numpy as np
import pandas as pd
from babel.numbers import get_currency_name, get_currency_symbol

from addin.issues import UnreadableWorkbook
from addin.untrusted import FIRST_SHEET, open_untrusted
from sheet_templates.calendar import FiscalCalendar
from sheet_templates.cells import column_letter, parse_a1
from sheet_templates.money import to_cents
from sync_service.platform.errors import Unprocessable


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while an export's rows are read and matched.

    Reading an export makes hundreds of thousands of row lists and records that hold no cycles
    (reference counting frees them), yet every 700 new ones start a collection, and the older
    generations' rescans grow with the survivors: about 40% of the parse of a 200,000-row results
    export (docs/benchmarks.md). Collection resumes afterwards, as it was.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


MONTH_HEADERS = (
    "month",
    "fiscal month",
    "period",
    "fiscal period",
    "posting date",
    "posting period",
    "accounting date",
    "gl date",
    "date",
)


TO_DATE = frozenset({"ytd", "fytd", "year to date", "fiscal year to date", "to date", "itd", "total"})
"""What a period cell says when the row is a to-date total rather than a month's amount."""


def to_date_only(values: Iterable[Any]) -> bool:
    """True when a period column says only "YTD" (or is blank): the export is to date, not by month.

    Finance systems often export a Period column that reads YTD on every row; such a column
    carries no month, so the export is read as one without a month column rather than refused.
    """
    seen = False
    for value in values:
        key = norm(value)
        if not key:
            continue
        if key not in TO_DATE:
            return False
        seen = True
    return seen


def norm(text: Any) -> str:
    """A header as it is compared: lower case, underscores as spaces, runs of spaces as one."""
    return re.sub(r"\s+", " ", str(text or "").strip().lower().replace("_", " "))


def cell_name(j: int, i: int) -> str:
    """The A1 name of 0-based column `j` and row `i`."""
    return f"{column_letter(j + 1)}{i + 1}"


def read_export(raw: bytes, filename: str | None) -> tuple[str, list[list[Any]]]:
    """The export's first sheet (xlsx) or its CSV rows, as (sheet name, grid)."""
    if raw[:4] == b"PK\x03\x04":
        try:
            opened = open_untrusted(raw, sheet=FIRST_SHEET, display_name=filename or "actuals.xlsx")
        except UnreadableWorkbook as exc:
            raise Unprocessable(exc.message, issues=[exc.as_issue().to_dict()]) from None
        return opened.sheet, opened.grid
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise Unprocessable("the export is neither an xlsx workbook nor a UTF-8 or Windows-1252 CSV") from None
    if "\x00" in text:
        raise Unprocessable("the export is neither an xlsx workbook nor a text CSV file")
    allow_fields_up_to(len(text))
    return CSV_SHEET, list(csv.reader(io.StringIO(text), sniffed(text[:SAMPLE])))


CSV_SHEET = "csv"  # the sheet a CSV export's issues name (sheet "csv", cell "C12")
SAMPLE = 4096  # characters of a CSV export its dialect is told from


def sniffed(sample: str) -> type[csv.Dialect]:
    """The CSV dialect (delimiter, quoting) of an export, told from its first `SAMPLE` characters."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def allow_fields_up_to(size: int) -> None:
    """Let the CSV reader take a field as long as the whole upload, rather than answer 500 past 128 KiB.

    A long field is read, not refused: a memo or description column may be long, and is never
    used. A line ID or campaign code longer than a plan cell may hold (`MAX_TEXT`) cannot match
    a line, and is refused with a 422 naming its cell. The limit is the csv module's, for the
    whole process, so it is only ever raised, never put back: a concurrent import can never meet
    a lower limit than it needs.
    """
    if csv.field_size_limit() < size:
        csv.field_size_limit(size)


# --- a preview: the rows as read, before anything is stored ---------------------------------------------

PREVIEW_ROWS = 10  # rows under the header a preview shows (as Frappe's Data Import previews its first rows)
PREVIEW_REFUSED = 20  # refused rows shown besides, so that each refusal is seen at its cell
PREVIEW_COLUMNS = 50
PREVIEW_TEXT = 120  # characters of a cell shown


@dataclass(frozen=True)
class Preview:
    """Rows of an export as its reader reads them: the header, the first rows under it, and the rows refused."""

    sheet: str
    header: int | None  # the header's row number (1-based), when the reader found it
    letters: list[str]  # the columns shown, by letter
    rows: list[tuple[int, list[str]]]  # (row number, each cell as text) in the sheet's order
    total: int  # rows in the sheet, blank ones included
    more_columns: int  # columns of the sheet past the last shown


def preview(
    raw: bytes, filename: str | None, header: int | None = None, refused: Iterable[str] = (), count: int = PREVIEW_ROWS
) -> Preview:
    """The export's header row (`header`, 1-based) and the `count` rows under it, and the rows of `refused` cells.

    Reads the file only: nothing is matched or stored. Without a header (a file refused before
    its header was read) the sheet's first rows are shown. Blank rows are left out.
    """
    sheet, grid = read_export(raw, filename)
    start = header - 1 if header is not None and 0 < header <= len(grid) else 0
    shown: list[int] = []
    for i in range(start, len(grid)):
        if i == start or any(cell_text(v) for v in grid[i]):
            shown.append(i)
            if len(shown) > count:
                break
    wanted = set()
    for ref in refused:
        try:
            wanted.add(parse_a1(ref)[0] - 1)
        except ValueError:  # "row 12": a row without its cell
            found = re.fullmatch(r"row (\d+)", ref.strip())
            if found:
                wanted.add(int(found.group(1)) - 1)
    extra = sorted(i for i in wanted - set(shown) if 0 <= i < len(grid))[:PREVIEW_REFUSED]
    rows = sorted([*shown, *extra])
    width = max((len(grid[i]) for i in rows), default=0)
    while width and not any(cell_text(grid[i][width - 1]) for i in rows if len(grid[i]) >= width):
        width -= 1  # trailing empty columns
    cut = min(width, PREVIEW_COLUMNS)
    return Preview(
        sheet,
        start + 1 if header is not None else None,
        [column_letter(j + 1) for j in range(cut)],
        [(i + 1, [cell_text(v) for v in [*grid[i][:cut], *[""] * (cut - len(grid[i][:cut]))]]) for i in rows],
        len(grid),
        width - cut,
    )


def cell_text(value: Any) -> str:
    """A cell as a preview shows it: text as written, a date as 2026-04-15, a whole number without ".0"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text if len(text) <= PREVIEW_TEXT else text[: PREVIEW_TEXT - 1] + "\u2026"


HEAD_ROWS = 20  # the rows an export's header is looked for in, under any title rows
CHUNK_ROWS = 50_000  # rows of a CSV export read at a time by `CsvStream.chunks`
_BLOCK = 1 << 20


@dataclass(frozen=True)
class CsvStream:
    """A CSV export read as a stream: its first rows now, then its columns `CHUNK_ROWS` rows at a time.

    The columns come from pandas' C parser, which reads a CSV as the csv module does (the same
    rows, the same fields, a short row padded with empty fields) for every export `csv_stream`
    accepts; they are never all held at once, nor is the decoded text.
    """

    raw: bytes = attribute(repr=False)
    encoding: str
    dialect: type[csv.Dialect]
    head: list[list[str]] = attribute(repr=False)  # the first HEAD_ROWS rows, as the csv module reads them
    width: int  # fields in the widest of them: a row further down with more is not streamed

    def chunks(self, columns: Sequence[int] | None = None) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """(index of the chunk's first row, {column: its values as an array of str}) for every chunk of rows.

        The first chunk holds the head's rows at least, so that it is never all blank rows (pandas
        cannot tell the columns of a chunk of blank rows alone).

        NotStreamable when pandas cannot read the file as the csv module would (a row wider than
        the head's, a quote left open at the end), before any chunk that disagrees.
        """
        d = self.dialect
        try:
            reader = pd.read_csv(
                io.BytesIO(self.raw),
                header=None,
                names=range(self.width),
                usecols=columns,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                encoding=self.encoding,
                sep=d.delimiter,
                quotechar=d.quotechar,
                doublequote=d.doublequote,
                escapechar=d.escapechar,
                skipinitialspace=d.skipinitialspace,
                quoting=d.quoting,
                engine="c",
                iterator=True,
            )
        except (ValueError, pd.errors.ParserError) as exc:
            raise NotStreamable(str(exc)) from None
        at = 0
        with reader:
            while True:
                try:
                    frame = reader.get_chunk(CHUNK_ROWS if at else max(CHUNK_ROWS, HEAD_ROWS))
                except StopIteration:
                    break
                except (ValueError, UnicodeError, pd.errors.ParserError) as exc:
                    raise NotStreamable(str(exc)) from None
                chunk = {j: frame[j].to_numpy(dtype=object) for j in frame.columns}
                rows = len(frame)
                del frame
                if not self._agrees(at, chunk):
                    raise NotStreamable("the first rows read differently")
                yield at, chunk
                at += rows
        if at < len(self.head):
            raise NotStreamable("fewer rows than the csv module reads")

    def _agrees(self, at: int, chunk: dict[int, np.ndarray]) -> bool:
        """Whether the chunk's rows among the head's are the head's (padded), in the columns it holds."""
        return all(
            (row[j] if j < len(row) else "") == values[k]
            for j, values in chunk.items()
            for k, row in enumerate(self.head[at : at + len(values)])
        )


class NotStreamable(Exception):
    """The export cannot be streamed with the promise of `CsvStream`: read it whole (`read_export`)."""


def csv_stream(raw: bytes) -> CsvStream | None:
    """The export as a `CsvStream`, or None when it is not a CSV that pandas reads as the csv module does.

    None for an xlsx workbook, a file that is neither UTF-8 nor Windows-1252 or holds a NUL (each
    refused by `read_export`), a carriage return that ends no line (the csv module refuses it, pandas
    would start a row), a byte order mark pandas would skip and the csv module keep (a second one, or
    one in a Windows-1252 file), and a head the csv module cannot read.
    """
    if raw[:4] == b"PK\x03\x04" or b"\x00" in raw or raw.count(b"\r") != raw.count(b"\r\n"):
        return None
    encoding = next((e for e in ("utf-8-sig", "cp1252") if _decodes(raw, e)), None)
    if encoding is None or raw.startswith(codecs.BOM_UTF8 * (2 if encoding == "utf-8-sig" else 1)):
        return None
    dialect = sniffed(codecs.getincrementaldecoder(encoding)().decode(raw[: 4 * SAMPLE + 3])[:SAMPLE])
    allow_fields_up_to(len(raw))
    try:
        with io.TextIOWrapper(io.BytesIO(raw), encoding=encoding, newline="") as text:
            head = list(itertools.islice(csv.reader(text, dialect), HEAD_ROWS))
    except csv.Error:
        return None
    return CsvStream(raw, encoding, dialect, head, max(map(len, head), default=1) or 1)


def _decodes(raw: bytes, encoding: str) -> bool:
    """Whether `raw` is text in `encoding`, decoded a block at a time (never all of it at once)."""
    if raw.isascii():
        return True
    decoder = codecs.getincrementaldecoder(encoding)()
    view = memoryview(raw)
    try:
        for start in range(0, len(raw), _BLOCK):
            decoder.decode(view[start : start + _BLOCK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


_SLASHED = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{2}|\d{4})(?:\s.*)?$")
_TEXT_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m",
    "%Y/%m/%d",
    "%Y/%m",
    "%b %Y",
    "%B %Y",
    "%b-%y",
    "%b-%Y",
    "%B-%Y",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%B %d, %Y",
)


def day_order(values: Iterable[Any], where: str, given: str | None, fallback: str | None = None) -> str | None:
    """'dmy' or 'mdy' for a column of dates written as 04/05/2026, from the values themselves.

    A day above 12 says which part is the day. A column whose every such date could be read
    either way is refused, unless the caller said (`given`), or the system that wrote the export
    writes its dates one way (`fallback`, a preset's): a wrong guess moves results between months
    silently. A fallback never overrides what the dates themselves say.
    """
    if given:
        return given
    first_big = second_big = False
    ambiguous = None
    for value in values:
        if type(value) is not str:
            continue
        match = _SLASHED.match(value.strip())
        if not match:
            continue
        a, b = int(match.group(1)), int(match.group(2))
        if a > 12 and b > 12:  # no date at all: refused with its cell when the rows are read
            continue
        first_big, second_big = first_big or a > 12, second_big or b > 12
        if a <= 12 and b <= 12 and a != b and ambiguous is None:
            ambiguous = value.strip()
    if first_big and second_big:
        raise Unprocessable(f"{where}: the dates are written day-first in some rows and month-first in others")
    if first_big:
        return "dmy"
    if second_big:
        return "mdy"
    if ambiguous is not None and fallback:
        return fallback
    if ambiguous is not None:
        raise Unprocessable(
            f"{where}: {ambiguous!r} could be either day first or month first; write dates as YYYY-MM-DD, "
            "or say which with date_order=dmy or date_order=mdy"
        )
    return None


def fiscal_month(value: Any, calendar: FiscalCalendar, order: str | None) -> str:
    """A month cell as the fiscal month m01..m12 it falls in; ValueError saying why not.

    Takes the fiscal month's name (m03), its label (Apr 2026), a date (a cell or text:
    2026-04-15, 15/04/2026 in the column's day order, April 2026, Apr-26) or a datetime.
    """
    if not isinstance(value, dt.date):
        key = str(value).strip().casefold()
        for m in calendar.months:
            if key in (m.name, m.label.casefold()):
                return m.name
    day = calendar_day(value, order)
    if day is None:
        raise ValueError(f"{str(value)!r} is not a month or a date (use 2026-04-15, Apr 2026 or m03)")
    index = calendar.month_of(day)
    if index is None:
        raise ValueError(f"{day.isoformat()} is outside {calendar.label} ({calendar.start} to {calendar.end})")
    return f"m{index:02d}"


def calendar_day(value: Any, order: str | None) -> dt.date | None:
    """A date cell (a datetime, a date, or text such as 2026-04-15, 15/04/2026 in `order`, Apr 2026) as a date.

    None when it is not a date; ValueError for a slashed date that names no day (31/02/2026).
    A month without a day (Apr 2026) is its first day.
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    match = _SLASHED.match(text)
    if match:
        a, b, year = int(match.group(1)), int(match.group(2)), int(match.group(3))
        year += 2000 if year < 100 else 0
        d, m = (a, b) if order == "dmy" else (b, a)
        try:
            return dt.date(year, m, d)
        except ValueError:
            raise ValueError(f"{text!r} is not a date") from None
    head = text.split("T")[0].split(" ")[0] if re.match(r"^\d{4}-\d", text) else text
    for fmt in _TEXT_FORMATS:
        try:
            return dt.datetime.strptime(head, fmt).date()
        except ValueError:
            continue
    return None


# An amount in the transaction's own currency, as ERP exports head it beside the base-currency "Amount".
FOREIGN_AMOUNT = (
    "amount (foreign currency)",
    "foreign amount",
    "amount (fc)",
    "amount in transaction currency",
    "transaction amount",
)


# --- money written with its currency ------------------------------------------------------------------------

# Where CLDR's symbols for a currency are looked up: the locales whose exports we meet ("US$", "R$", "CA$").
_SYMBOL_LOCALES = ("en", "en_US", "en_GB", "en_CA", "en_AU", "en_IN", "de_DE", "fr_FR", "es_ES", "es_MX", "pt_BR",
                   "ja_JP", "zh_CN", "de_CH", "sv_SE", "nb_NO", "da_DK")  # fmt: skip
_BARE = re.compile(r"^[\s\d,.()\-+']*$")  # an amount without any marker: read by `to_cents` alone
_MARKER = r"(?:[A-Za-z]{3}|[^\d\s\-+().,']{1,4})"
_BEFORE = re.compile(rf"^(?P<sign>[-(]?)\s*(?P<marker>{_MARKER})\s*(?P<amount>[-(]?\s*\d[\d,.\s']*\)?-?)$")
_AFTER = re.compile(rf"^(?P<amount>[-(]?\s*\d[\d,.\s']*\)?-?)\s*(?P<marker>{_MARKER})(?P<close>\)?)$")


@functools.lru_cache(maxsize=32)
def currency_markers(currencies: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """{marker: the currencies (of `currencies`) it may stand for}: each ISO code, and its CLDR symbols.

    A symbol several of them share ("$" is the US, Canadian and Australian dollar's) stands for all of
    them; the row's currency column says which.
    """
    found: dict[str, set[str]] = {}
    for code in currencies:
        found.setdefault(code.casefold(), set()).add(code)
        for locale in _SYMBOL_LOCALES:
            symbol = get_currency_symbol(code, locale)
            if symbol and symbol.upper() != code:
                found.setdefault(symbol.casefold(), set()).add(code)
    return {k: frozenset(v) for k, v in found.items()}


@dataclass(frozen=True, slots=True)
class Marked:
    """An amount as an export writes it: its cents, the currencies its marker may stand for, or why it is not one."""

    cents: int | None
    currencies: frozenset[str] | None = None  # None: no marker
    problem: str | None = None


def marked_amount(value: Any, currencies: tuple[str, ...]) -> Marked:
    """An amount cell read with any currency marker, an ISO code or a symbol, before or after.

    "EUR 12,345.67", "R$12,345.67", "12,345.67 €", "-€12.50" and "(USD 300)" are read with the
    currencies their marker may stand for; a marker that is none of `currencies`' is refused.
    """
    if type(value) is not str or _BARE.match(value):
        cents = to_cents(value)
        return Marked(cents, None, None if cents is not None else "not an amount")
    text = value.strip().replace("\u00a0", " ").replace("\u202f", " ")
    found = _BEFORE.match(text) or _AFTER.match(text)
    if found is None or text.count("(") != text.count(")") or text.count("(") > 1:
        return Marked(None, None, "not an amount")
    parts = found.groupdict()
    amount = parts["amount"].replace(" ", "").replace("'", ",")
    if parts.get("sign") == "(" or parts.get("close") == ")":
        amount = f"({amount.strip('()')})"
    elif parts.get("sign") == "-":
        amount = "-" + amount
    cents = to_cents(amount)
    if cents is None:
        return Marked(None, None, "not an amount")
    marker = parts["marker"]
    means = currency_markers(tuple(sorted(currencies))).get(marker.casefold())
    if means is None:
        listed = ", ".join(sorted(currencies))
        return Marked(None, None, f"{marker!r} is not the code or symbol of a plan currency ({listed})")
    return Marked(cents, means)


def marked_currency(marked: Marked, given: str, text: Any, default: str = "") -> tuple[str | None, str | None]:
    """(the row's currency, None) from its currency column (`given`, '' when blank) and its amount's marker.

    A marker several currencies share ("$") is `default`'s (the reporting currency) when it is one of
    them. (None, why) when the column and the marker disagree, or the marker does not say which.
    """
    if marked.currencies is None:
        return given, None
    if given:
        if given in marked.currencies:
            return given, None
        what = " or ".join(sorted(marked.currencies))
        return None, f"{str(text).strip()!r} is in {what}, but the row's currency is {given}"
    if len(marked.currencies) == 1:
        return next(iter(marked.currencies)), None
    if default in marked.currencies:
        return default, None
    what = " or ".join(sorted(marked.currencies))
    return None, f"{str(text).strip()!r} may be in {what}: add a Currency column, or write the ISO code"


@functools.lru_cache(maxsize=32)
def _currency_names(currencies: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for code in currencies:
        out[code.casefold()] = code
        for count in (1, 2):
            out[get_currency_name(code, count=count, locale="en").casefold()] = code
    return out


def currency_code(value: Any, currencies: Iterable[str]) -> str:
    """A currency cell as its ISO code: the code itself, or its English name as ERPs write it ("Euro", "US Dollar").

    Anything else is upper-cased as it is, for the reader to refuse naming the plan currencies.
    """
    text = str(value if value is not None else "").strip()
    if not text:
        return ""
    return _currency_names(tuple(sorted(currencies))).get(" ".join(text.casefold().split()), text.upper())
