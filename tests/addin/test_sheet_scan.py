"""Finding cells that show an Excel error in a sheet's XML, however the XML is cut into chunks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from addin.sheet_scan import ErrorCells

SHEET = (
    b'<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row>'
    b'<row r="12"><c r="F12" t="e"><f>1/0</f><v>#DIV/0!</v></c><c r="G12"><v>5</v></c></row>'
    b'<row r="13"><c r="AB13" s="3" t="e"><v>#N/A</v></c><c r="AC13" t="str"><f>"t=""e"""</f><v>t="e"</v></c></row>'
    b"</sheetData></worksheet>"
)
EXPECTED = [(12, 6, "#DIV/0!"), (13, 28, "#N/A")]


def feed_in_pieces(data: bytes, cuts: list[int]) -> list[tuple[int, int, str]]:
    scan = ErrorCells()
    start = 0
    for cut in sorted(set(cuts)):
        scan.feed(data[start:cut])
        start = cut
    scan.feed(data[start:])
    scan.feed(b"", final=True)
    return scan.found


def test_error_cells_in_one_piece():
    assert feed_in_pieces(SHEET, []) == EXPECTED


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(SHEET)), max_size=12))
def test_error_cells_whatever_the_chunks(cuts):
    assert feed_in_pieces(SHEET, cuts) == EXPECTED
