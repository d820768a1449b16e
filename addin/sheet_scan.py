"""Where calamine would put each cell of a worksheet, found without parsing the XML.

python-calamine allocates a dense grid from the first to the last cell of a sheet, so one
stray cell at XFD1048576 would cost gigabytes. `SheetScan` reads the sheet's XML as it is
inflated and finds the highest row and column holding a cell: with numpy, a chunk at a time,
for XML as Excel, openpyxl, xlsxwriter and LibreOffice write it; tag by tag otherwise.
"""

from __future__ import annotations

import functools
import re
import threading

import numpy as np

from sheet_templates.cells import MAX_COLUMNS as EXCEL_MAX_COLUMNS
from sheet_templates.cells import column_letter

MIB = 2**20
CHUNK = MIB  # parts are inflated and scanned this much at a time (measured fastest)
MAX_CARRY_BYTES = 4 * MIB  # one tag or text run of the Plan sheet; an Excel cell holds 32,767 characters


class TooLong(Exception):
    """One tag or text run of the sheet is longer than MAX_CARRY_BYTES."""


class NotCanonical(Exception):
    """The fast scan met XML it does not handle; the part must be walked tag by tag."""


_PAD = bytes(32)  # lets the vectorised scan look a few bytes past the end of a segment
_R_FIRST = int.from_bytes(b' r="', "little")  # canonical: the r attribute comes first, in double quotes
_ROW = int.from_bytes(b"<row", "little")
_HUGE = 10**10  # stands for any row or column number too long to convert
_QUOTED = rb"""(?:[^>"']++|"[^"]*"|'[^']*')*+>"""  # the rest of a tag: quoted values may hold '<' and '>'
_NAME = rb"(?:[^\s/>:<]*:)?"  # quick-xml compares local names: any prefix goes
_WATCHED = rb"(?:" + _NAME + rb"(?:row|c)|/" + _NAME + rb"row)[\s/>]"  # <row>, <c> and </row> move the position
# markup as quick-xml tokenizes it: text and other complete constructs, then a watched tag (groups 1-6):
# '<', '/', name, the letters and digits of a leading r="..", the rest of the tag (None when unfinished)
_TOKEN = re.compile(
    rb"(?:[^<]++|<!--(?>.*?-->)|<!\[CDATA\[(?>.*?\]\]>)|<\?(?>.*?\?>)|<!(?>" + _QUOTED + rb")|<(?!" + _WATCHED + rb")"
    rb"(?>" + _QUOTED + rb"))*+(?:(<)(/?)" + _NAME + rb"(row|c)(?=[\s/>])"
    rb"""(?:\s+r\s*=\s*"([A-Za-z]{0,7})([0-9]{0,10})"(?=[\s/>]))?(""" + _QUOTED + rb")?)?",
    re.DOTALL,
)
_PREFIXED = re.compile(rb"<(?:[^\s/>:<!?][^\s/>:<]*)?:(?:row|c)[\s/>]")
_PREFIX = re.compile(rb"(?:[^\s/>:<!?][^\s/>:<]*)?")
_COLON_TAG = re.compile(rb":(?:row|c)[\s/>]")
_R_KEY = re.compile(rb"(?:^|\s)r\s*=")
_ATTRIBUTE = re.compile(rb"""([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_REFERENCE = re.compile(rb"([A-Za-z]*)([0-9]*)")
_DIMENSION = re.compile(rb"""<(?:[^\s/>:<]*:)?dimension\s[^>]*?\bref\s*=\s*["']([^"']*)""")


class _Workspace(threading.local):
    """Two chunk-sized byte arrays per thread, reused by every scan: fresh pages for each chunk cost ~10%."""

    def get(self, size: int) -> np.ndarray:
        work: np.ndarray | None = getattr(self, "work", None)
        if work is None or work.shape[1] < size:
            work = self.work = np.empty((2, max(size, CHUNK + 4096)), dtype=np.uint8)
        return work


_WORK = _Workspace()


class SheetScan:
    """Highest row and column holding a cell in a worksheet's XML, found the way calamine places cells.

    calamine takes a cell's position from its `r` attribute; a cell without one follows the previous
    cell, and a row without one follows the previous row. The fast scan reads canonical XML, where
    every <row> and <c> starts with an r attribute (as Excel, openpyxl and xlsxwriter write it), with
    numpy a chunk at a time and raises NotCanonical on anything else; the slow scan tokenizes it all.
    Every cell counts, even an empty one calamine would skip: an overestimate, never an underestimate.
    """

    def __init__(self, fast: bool) -> None:
        self.fast = fast
        self.rows = self.columns = 0  # highest cell row and column
        self.row_cell = self.column_cell = ""  # a cell in that row and column, e.g. "A150000"
        self.row_numbers = 0  # highest <row r=..>
        self.dimension: bytes | None = None
        self._carry = b""
        self._row, self._column = 1, 1  # where an implicit row and cell would go
        self._in_data = False
        self.errors = ErrorCells()

    def feed(self, data: bytes, final: bool = False) -> None:
        """Scan the next bytes: complete tags now, an unfinished one when more bytes come."""
        self.errors.feed(data, final)
        buffer = b"".join((self._carry, data, _PAD))
        size = len(buffer) - len(_PAD)
        end = size if final or not self.fast else buffer.rfind(b"<", 0, size) % (size + 1)  # -1: text only
        if not self._in_data:
            self._header(buffer, end)
        if not self.fast:
            end = self._slow(buffer, size)
        elif not self._fast(buffer, end):
            raise NotCanonical
        self._carry = b"" if final else buffer[end:size]
        if len(self._carry) > MAX_CARRY_BYTES:
            raise TooLong

    def _header(self, buffer: bytes, end: int) -> None:
        at = buffer.find(b"sheetData", 0, end)
        self._in_data = at >= 0
        end = end if at < 0 else at
        if self.dimension is None and buffer.find(b"dimension", 0, end) >= 0:
            match = _DIMENSION.search(buffer, 0, end)
            self.dimension = match.group(1) if match else None

    def _fast(self, buffer: bytes, end: int) -> bool:
        """Scan the canonical XML before `end` with numpy; False if it is not canonical."""
        a = np.frombuffer(buffer, dtype=np.uint8)
        u32 = np.ndarray((len(buffer) - 3,), dtype="<u4", buffer=buffer, strides=(1,))  # the 4 bytes at each offset
        # the '<c' and '<r' tags, as int32 positions to keep the arrays small (a segment is a few MB at most)
        work = _WORK.get(end)
        lt, nxt = work[0, :end].view(bool), work[1, :end]
        np.equal(a[:end], 0x3C, out=lt)  # '<'
        np.bitwise_or(a[1 : end + 1], 0x11, out=nxt)
        np.equal(nxt, 0x73, out=nxt.view(bool))  # followed by 'c' or 'r' (or 'b' or 's')
        np.logical_and(lt, nxt.view(bool), out=lt)
        tags = np.flatnonzero(lt).astype(np.int32)
        is_c = a[1:][tags] == 0x63
        cells, others = tags[is_c], tags[~is_c]
        rows = others[(u32[others] == _ROW) & _delimiter(a[4:][others])]
        canonical = u32[2:][cells] == _R_FIRST
        if not canonical.all():  # <col>, <cfRule> and the like are fine; a <c> without r first is not
            if _delimiter(a[2:][cells[~canonical]]).any():
                return False
            cells = cells[canonical]
        if (u32[4:][rows] != _R_FIRST).any():
            return False
        if buffer.find(b":", 0, end) >= 0:  # a prefixed <x:c> or <x:row>? (Excel writes x14ac:dyDescent on rows)
            colons = np.flatnonzero(a[:end] == 0x3A)
            if _prefixed_tag(buffer, colons[(a[1:][colons] | 0x11) == 0x73]):
                return False
        cell_rows, cell_columns, cells_ok = _cell_references(buffer, a, cells + 6)
        row_numbers, rows_ok = _numbers(buffer, rows + 8)
        if not (cells_ok and rows_ok):
            return False
        if cells.size:
            top, right = int(cell_rows.argmax()), int(cell_columns.argmax())
            self._cell(int(cell_rows[top]), int(cell_columns[top]))
            self._cell(int(cell_rows[right]), int(cell_columns[right]))
        if rows.size:
            self.row_numbers = max(self.row_numbers, int(row_numbers.max()))
        return True

    def _slow(self, buffer: bytes, end: int) -> int:
        """Tokenize the XML before `end` as quick-xml does; return where an unfinished construct starts (or `end`)."""
        pos = 0
        while pos < end:
            match = _TOKEN.match(buffer, pos, end)
            assert match is not None  # every part of the pattern is optional
            start, closing, name, letters, digits, attributes = match.groups()
            if attributes is None:  # an unfinished construct, or the end
                return match.start(1) if start else match.end()
            pos = match.end()
            if closing:
                self._row, self._column = self._row + 1, 1
                continue
            if letters is not None:  # r came first: <c r="B7" ...>
                row, column, explicit = int(digits or 0), _column_number(letters), True
            else:
                reference = _attribute_r(attributes)
                row, column = _parse_reference(reference) if reference is not None else (0, 0)
                explicit = reference is not None
            if name == b"row":
                if row:
                    self._row = row
                    self.row_numbers = max(self.row_numbers, row)
                if attributes.endswith(b"/>"):
                    self._row, self._column = self._row + 1, 1
                continue
            if not explicit:
                row, column = self._row, self._column
            if row and column:
                self._cell(row, column)
            self._column = column + 1
        return end

    def _cell(self, row: int, column: int) -> None:
        if row > self.rows:
            self.rows, self.row_cell = row, _address(row, column)
        if column > self.columns:
            self.columns, self.column_cell = column, _address(row, column)


def _prefixed_tag(buffer: bytes, colons: np.ndarray) -> bool:
    """Whether one of these colons makes a prefixed <x:c> or <x:row> tag (and not text such as "Contact:c/o")."""
    if len(colons) > 1_000:
        return _PREFIXED.search(buffer) is not None
    for colon in colons.tolist():
        if _COLON_TAG.match(buffer, colon):
            start = buffer.rfind(b"<", 0, colon)
            if start >= 0 and _PREFIX.fullmatch(buffer, start + 1, colon):
                return True
    return False


def _delimiter(byte: np.ndarray) -> np.ndarray:
    """Whether each byte may end an element name: whitespace, '/' or '>'."""
    return (byte == 0x20) | (byte == 0x3E) | (byte == 0x2F) | ((byte - 9) < 2) | (byte == 0x0D)


def _cell_references(buffer: bytes, a: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Rows and columns of the references at `starts`: 1-3 letters, then digits, then '"'; ok=False otherwise."""
    v0, v1, v2, v3 = (((a[i:][starts] | 0x20) - 97) for i in range(4))  # letters become 0..25, anything else more
    two = v1 < 26
    three = two & (v2 < 26)
    letters_ok = bool((v0 < 26).all()) and not bool((three & (v3 < 26)).any())
    columns = v0.astype(np.int32) + 1
    columns[two] = columns[two] * 26 + v1[two] + 1
    columns[three] = columns[three] * 26 + v2[three] + 1
    rows, digits_ok = _numbers(buffer, starts + 1 + two + three)
    return rows, columns, digits_ok and letters_ok


def _numbers(buffer: bytes, starts: np.ndarray) -> tuple[np.ndarray, bool]:
    """The numbers of 1-7 digits (no leading zero) followed by '"' at `starts`, read 8 bytes at a time (SWAR)."""
    words = np.ndarray((len(buffer) - 7,), dtype="<u8", buffer=buffer, strides=(1,))[starts]
    x = words ^ np.uint64(0x3030303030303030)  # digits become 0..9
    high = np.uint64(0x8080808080808080)
    not_digit = x & ~high
    not_digit += np.uint64(0x7676767676767676)
    not_digit |= x
    not_digit &= high  # the top bit of each byte that is not a digit
    first = ~not_digit
    first += np.uint64(1)
    first &= not_digit  # only the first of them
    count = (np.frexp(first.astype(np.float64))[1] - 8) >> 3  # its index: the number of digits (-1 if none)
    valid = (count >= 1) & ((words & np.uint64(0xFF)) != 0x30)
    shift = (np.where(valid, count, 1) << 3).astype(np.uint64)
    words >>= shift
    ok = bool(valid.all()) and bool(((words & np.uint64(0xFF)) == 0x22).all())
    x <<= np.uint64(64) - shift  # left-align, so missing leading digits read as zeros
    for factor, width, mask in _SWAR_STEPS:
        x = (x * factor + (x >> width)) & mask
    return x.astype(np.int64), ok


_SWAR_STEPS = tuple(  # 8 digits -> 4 pairs -> 2 quads -> 1 number
    (np.uint64(factor), np.uint64(width), np.uint64(mask))
    for factor, width, mask in ((10, 8, 0x00FF00FF00FF00FF), (100, 16, 0x0000FFFF0000FFFF), (10000, 32, 0xFFFFFFFF))
)


def _attribute_r(attributes: bytes) -> bytes | None:
    """The value of the first attribute named exactly r, as calamine reads it."""
    if not _R_KEY.search(attributes):
        return None
    for key, double, single in _ATTRIBUTE.findall(attributes):
        if key == b"r":
            return double or single
    return None


def _parse_reference(reference: bytes) -> tuple[int, int]:
    """b'XFD12' -> (12, 16384), case-insensitive and unbounded; 0 for a missing part."""
    match = _REFERENCE.match(reference)
    assert match is not None  # the pattern matches the empty string
    letters, digits = match.group(1), match.group(2).lstrip(b"0")
    return (_HUGE if len(digits) > 10 else int(digits or 0)), _column_number(letters)


@functools.lru_cache(maxsize=4096)
def _column_number(letters: bytes) -> int:
    """Column number of letters such as b'XFD' (16384), case-insensitive; 0 for no letters."""
    if len(letters) > 7:
        return _HUGE
    column = 0
    for ch in letters.upper():
        column = column * 26 + ch - 64
    return column


def dimension_extent(reference: bytes) -> tuple[int, int]:
    """The bottom-right corner of a <dimension ref="A1:AL2001">, as (rows, columns)."""
    parts = [_parse_reference(part.strip().replace(b"$", b"")) for part in reference.split(b":")]
    return max(row for row, _ in parts), max(column for _, column in parts)


def _address(row: int, column: int) -> str:
    return f"{column_letter(column)}{row}" if 1 <= column <= EXCEL_MAX_COLUMNS else f"R{row}C{column}"


_ERROR_CELL = re.compile(rb'<c\s+r="([A-Za-z]{1,3})([0-9]{1,7})"[^>]*>.*?<v>([^<]{0,64})</v>', re.DOTALL)
_ERROR_MARK = b't="e"'


class ErrorCells:
    """Cells whose saved value is an Excel error (`t="e"`, e.g. #DIV/0!): calamine reads them as blanks.

    Fed the same chunks as `SheetScan`; finds cells written the canonical way (r attribute first).
    """

    def __init__(self) -> None:
        self.found: list[tuple[int, int, str]] = []  # (row, column, error text)
        self._carry = b""
        self._offset = 0  # absolute position of the carry's first byte
        self._done = -1  # absolute position of the last mark handled

    def feed(self, data: bytes, final: bool = False) -> None:
        buffer = self._carry + data
        last_tag = buffer.rfind(b"<")  # a tag, and a mark in it, may be split between chunks
        keep = max(0, len(buffer) - len(_ERROR_MARK))
        if last_tag >= 0:
            keep = min(keep, last_tag)
        pos = 0
        while (at := buffer.find(_ERROR_MARK, pos)) >= 0:
            pos = at + len(_ERROR_MARK)
            if self._offset + at <= self._done:
                continue
            start, close = buffer.rfind(b"<c", 0, at), buffer.find(b"</c>", at)
            if close < 0 and not final:  # the cell continues in the next chunk
                keep = min(keep, max(start, 0))
                break
            self._done = self._offset + at
            if start < 0 or at > buffer.find(b">", start):  # the mark is not an attribute of a <c> tag
                continue
            match = _ERROR_CELL.match(buffer, start, close + 4 if close >= 0 else len(buffer))
            if match:
                row, column = int(match.group(2)), _column_number(match.group(1).upper())
                self.found.append((row, column, match.group(3).decode("utf-8", "replace")))
        if len(buffer) - keep > MAX_CARRY_BYTES:
            keep = len(buffer) - MAX_CARRY_BYTES
        self._carry = b"" if final else buffer[keep:]
        self._offset += keep
