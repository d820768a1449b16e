"""A PO or invoice export read as a stream, by columns, gives exactly what the rules give row by row.

`parse_purchase_orders` and `parse_invoices` read a CSV a chunk of rows at a time, make the rows
in the usual form in bulk and send every other row through the rules one row at a time. For
generated exports mixing usual rows, odd but valid ones (thousands separators, day-first dates
with a day above 12, blank currencies, statuses and methods in other words, title rows, short
rows, other delimiters and encodings) and bad ones, they give the same rows, or the same 422
with the same issues in the same order, as `purchase_orders_by_row` and `invoices_by_row`; and
the stream reads every generated export (it never falls back to reading it whole). Chunks of a
few rows put chunk boundaries everywhere.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from sync_service.platform import exports
from sync_service.platform.errors import Unprocessable
from sync_service.spend import orders
from tests.sync_service.service_helpers import SCHEMA

BY_ROW = {"po": orders.purchase_orders_by_row, "invoice": orders.invoices_by_row}
PARSE = {"po": orders.parse_purchase_orders, "invoice": orders.parse_invoices}
DAYS = st.dates(dt.date(2025, 3, 1), dt.date(2027, 9, 30))  # the fiscal year 2026-02-01 to 2027-01-31 and around it


def date_text(day: dt.date, style: str, form: int) -> str:
    """A day as an export writes it: ISO mostly, else slashed or dotted in the file's `style`, a month, a timestamp."""
    if form < 6:
        return day.isoformat()
    if form < 8:
        return day.strftime(
            ("%d/%m/%Y", "%d.%m.%y")[form - 6] if style == "dmy" else ("%m/%d/%Y", "%m.%d.%y")[form - 6]
        )
    return day.strftime("%b %Y") if form == 8 else f"{day.isoformat()}T09:30:00"


def field(draw: Any, usual: st.SearchStrategy[str], odd: list[str], bad: list[str], with_bad: bool) -> str:
    """Usual values three times in four, else an odd but valid one, or (in a file with bad rows) a bad one."""
    kind = draw(st.integers(0, 4 if with_bad else 3))
    if kind < 3:
        return draw(usual)
    return draw(st.sampled_from(odd if kind == 3 else bad))


AMOUNT = st.integers(0, 10**9).map(lambda c: f"{c // 100}.{c % 100:02d}") | st.integers(0, 10**6).map(str)
ODD_AMOUNTS = ["1,234.50", "$300", " 12.5 ", "1234.567", "１２", ".5", "0012.3", "100000000000", "-0"]
BAD_AMOUNTS = ["abc", "", "99999999999999", "1e3", "100000000000.01", "12.", "--5", "1.2.3"]
CURRENCY = st.sampled_from(["USD", "EUR", "GBP", "BRL"])
ODD_CURRENCIES = ["", "eur", " GBP ", "Usd"]
BAD_CURRENCIES = ["XYZ", "US D", "€"]
TEXT = st.text(st.characters(codec="cp1252", exclude_categories=("Cc",)), max_size=12)
ODD_TEXT = ["Société Générale", "Acme, Inc.", ' "Quoted" ', "", "tab inside", "x" * 255]
BAD_TEXT = ["bad\u202evendor", "bell\x07", "y" * 256, "two\nlines"]


@st.composite
def po_exports(draw: Any) -> bytes:
    """A PO export (see the module docstring)."""
    with_bad, style = draw(st.booleans()), draw(st.sampled_from(["dmy", "mdy"]))
    period_cell = draw(st.integers(0, 4)) == 0  # one 'Service period' column instead of start and end
    header = ["PO number", "Vendor", "Amount", "Currency", "Line ID", "Campaign code", "Status", "Accrual method"]
    header += ["Service period"] if period_cell else ["Service start", "Service end"]
    if draw(st.booleans()):
        header.append("Memo")
    header = draw(st.permutations(header))
    numbers: list[str] = []
    rows = []
    for n in range(draw(st.integers(0, 24))):
        kind = draw(st.integers(0, 11))
        if kind == 0:
            rows.append([""] * len(header) if draw(st.booleans()) else [])
            continue
        if kind == 1 and numbers and with_bad:  # a PO number again, as it was or in other capitals
            number = draw(st.sampled_from(numbers))
            number = number.lower() if draw(st.booleans()) else number
        else:
            number = field(
                draw, st.just(f"PO-{n}"), [f" po-{n} ", f"PO-Ü{n}", f"po-{n}"], ["", "PO\x07", "P" * 65], with_bad
            )
        numbers.append(number)
        start = draw(DAYS)
        end = start + dt.timedelta(days=draw(st.integers(-3 if with_bad else 0, 120)))
        starts, ends = date_text(start, style, draw(st.integers(0, 9))), date_text(end, style, draw(st.integers(0, 7)))
        if with_bad and draw(st.integers(0, 9)) == 0:
            starts = draw(st.sampled_from(["2026-02-30", "not a date", "1900-01-01", "", "31/31/2026", "13/13/13"]))
        line_id = field(draw, st.sampled_from(["L-1", "L-2", "NAX-0001"]), ["", " L-3 ", "línea"], BAD_TEXT, with_bad)
        code = field(draw, st.sampled_from(["", "CC-1"]), ["CC-ÿ", " CC-2"], ["c\x01", "z" * 256], with_bad)
        if not (line_id or code or with_bad):
            code = "CC-9"
        values = {
            "PO number": number,
            "Vendor": field(draw, TEXT, ODD_TEXT, BAD_TEXT, with_bad),
            "Amount": field(draw, AMOUNT, ODD_AMOUNTS, [*BAD_AMOUNTS, "-5", "(300)"], with_bad),
            "Currency": field(draw, CURRENCY, ODD_CURRENCIES, BAD_CURRENCIES, with_bad),
            "Service start": starts,
            "Service end": ends,
            "Service period": f"{starts}{draw(st.sampled_from([' to ', ' - ', ' – ']))}{ends}",
            "Line ID": line_id,
            "Campaign code": code,
            "Status": field(
                draw,
                st.sampled_from(["Open", "", "Closed"]),
                ["VOID", "fully_invoiced", " released ", "Canceled"],
                ["Pending", "open?"],
                with_bad,
            ),
            "Accrual method": field(
                draw,
                st.sampled_from(["", "plan", "invoice"]),
                ["As planned", "straight_line", "ON INVOICE"],
                ["weird"],
                with_bad,
            ),
            "Memo": draw(st.sampled_from(["", "a note", "a note, with a comma", "two\nlines", '"quoted"'])),
        }
        rows.append([values[h] for h in header])
    return encoded(draw, [header, *rows])


@st.composite
def invoice_exports(draw: Any) -> bytes:
    """An invoice export (see the module docstring)."""
    with_bad, style = draw(st.booleans()), draw(st.sampled_from(["dmy", "mdy"]))
    header = draw(st.permutations(["Invoice number", "PO number", "Amount", "Currency", "Invoice date"]))
    keys: list[tuple[str, str]] = []
    rows = []
    for n in range(draw(st.integers(0, 24))):
        kind = draw(st.integers(0, 11))
        if kind == 0:
            rows.append([])
            continue
        if kind == 1 and keys and with_bad:  # an invoice of a PO again
            po, number = draw(st.sampled_from(keys))
            number = number.upper() if draw(st.booleans()) else number
        else:
            po = field(draw, st.sampled_from(["PO-1", "PO-2", "PO-3"]), ["po-1", " PO-4 "], ["", "P" * 65], with_bad)
            number = field(draw, st.just(f"inv-{n}"), [f" INV-{n} ", f"Rechnung-{n}"], ["", "I\x1f"], with_bad)
        keys.append((po, number))
        day = date_text(draw(DAYS), style, draw(st.integers(0, 9)))
        if with_bad and draw(st.integers(0, 9)) == 0:
            day = draw(st.sampled_from(["2026-02-30", "tomorrow", "9999-12-31", ""]))
        values = {
            "Invoice number": number,
            "PO number": po,
            "Amount": field(
                draw, AMOUNT | AMOUNT.map("-{}".format), [*ODD_AMOUNTS, "(300)", "50-"], BAD_AMOUNTS, with_bad
            ),
            "Currency": field(draw, CURRENCY | st.just(""), ODD_CURRENCIES, BAD_CURRENCIES, with_bad),
            "Invoice date": day,
        }
        rows.append([values[h] for h in header])
    return encoded(draw, [header, *rows])


def encoded(draw: Any, rows: list[list[str]]) -> bytes:
    """The rows as a CSV file: maybe title rows above, short rows, another delimiter, CRLF, a BOM or Windows-1252."""
    above = draw(st.sampled_from([0, 0, 0, 1, 2, -1]))  # blank rows above the header, or a title row (refused)
    rows = [*([["Exported from the ERP on 2026-03-01"]] if above < 0 else [[]] * above), *rows]
    rows = [r[: max(len(r) - draw(st.integers(0, 2)), 1)] if r and not any(r[-2:]) else r for r in rows]
    out = io.StringIO(newline="")
    delimiter = draw(st.sampled_from([",", ",", ",", ";", "\t"]))  # the sniffer takes some for commas: refused
    csv.writer(out, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows(rows)
    text = out.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        return text.encode("utf-8")


def outcome(parse: Any, raw: bytes, order: str | None) -> Any:
    """The rows, each field with its type; or the refusal, its detail, issues and extras."""
    try:
        rows = parse(raw, "export.csv", SCHEMA, order)
    except Unprocessable as exc:
        return ("refused", exc.detail, exc.issues, exc.extra)
    return [(type(r), [(type(v), v) for v in (getattr(r, f) for f in r.__slots__)]) for r in rows]


def read_by_columns(kind: str, raw: bytes, order: str | None, chunk_rows: int) -> Any:
    """`parse_*` with chunks of `chunk_rows` rows, failing if it fell back to reading the export whole."""

    def fell_back(*_: Any) -> None:
        raise AssertionError("the stream did not read the export")

    with (
        mock.patch.object(exports, "CHUNK_ROWS", chunk_rows),
        mock.patch.object(orders, "purchase_orders_by_row" if kind == "po" else "invoices_by_row", fell_back),
    ):
        return outcome(PARSE[kind], raw, order)


@settings(max_examples=400, deadline=None)
@given(raw=po_exports(), order=st.sampled_from([None, None, "dmy", "mdy"]), chunk_rows=st.integers(1, 9))
def test_purchase_orders_read_by_columns_are_the_rows_read_by_row(
    raw: bytes, order: str | None, chunk_rows: int
) -> None:
    assert read_by_columns("po", raw, order, chunk_rows) == outcome(BY_ROW["po"], raw, order)


@settings(max_examples=300, deadline=None)
@given(raw=invoice_exports(), order=st.sampled_from([None, None, "dmy", "mdy"]), chunk_rows=st.integers(1, 9))
def test_invoices_read_by_columns_are_the_rows_read_by_row(raw: bytes, order: str | None, chunk_rows: int) -> None:
    assert read_by_columns("invoice", raw, order, chunk_rows) == outcome(BY_ROW["invoice"], raw, order)


PIECES = ["a", "é", ",", ";", "\t", '"', "'", " ", "\n", "\r\n", "\r", "\ufeff"]


@settings(max_examples=400, deadline=None)
@given(
    text=st.lists(st.sampled_from(PIECES), max_size=40).map("".join),
    encoding=st.sampled_from(["utf-8", "cp1252"]),
    chunk_rows=st.integers(1, 4),
)
def test_the_stream_reads_a_csv_as_the_csv_module_does_or_not_at_all(text: str, encoding: str, chunk_rows: int) -> None:
    """Any text: either the stream declines it, or its rows are the csv module's, each padded to the widest head row."""
    raw = text.encode(encoding, errors="replace")
    stream = exports.csv_stream(raw)
    if stream is None:
        return
    try:
        _, grid = exports.read_export(raw, "export.csv")
    except Unprocessable:
        raise AssertionError("the stream took an export that reading it whole refuses") from None
    assert stream.head == grid[: exports.HEAD_ROWS]
    try:
        with mock.patch.object(exports, "CHUNK_ROWS", chunk_rows):
            chunks = list(stream.chunks())
    except exports.NotStreamable:
        return
    streamed = [[columns[j][k] for j in range(stream.width)] for _, columns in chunks for k in range(len(columns[0]))]
    assert streamed == [[*row, *[""] * (stream.width - len(row))] for row in grid]
