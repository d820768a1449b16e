from __future__ import annotations

import pytest

from sheet_templates.cells import MAX_COLUMNS, MAX_ROWS, CellRef, a1, column_index, column_letter, parse_a1, quote_sheet


def test_every_column_of_the_grid_round_trips() -> None:
    letters = [column_letter(i) for i in range(1, MAX_COLUMNS + 1)]
    assert [column_index(s) for s in letters] == list(range(1, MAX_COLUMNS + 1))
    assert len(set(letters)) == MAX_COLUMNS
    # Letters sort like spreadsheet columns: shorter first, then alphabetically.
    assert letters == sorted(letters, key=lambda s: (len(s), s))


@pytest.mark.parametrize(
    ("column", "letters"),
    [(1, "A"), (26, "Z"), (27, "AA"), (52, "AZ"), (53, "BA"), (702, "ZZ"), (703, "AAA"), (16_384, "XFD")],
)
def test_column_letter_boundaries(column: int, letters: str) -> None:
    assert column_letter(column) == letters
    assert column_index(letters) == column
    assert column_index(letters.lower()) == column


@pytest.mark.parametrize("column", [0, -1, MAX_COLUMNS + 1])
def test_column_letter_outside_the_grid(column: int) -> None:
    with pytest.raises(ValueError, match=f"column {column} is outside 1..16384"):
        column_letter(column)


@pytest.mark.parametrize("letters", ["", "A1", "ÄB", "AAAA", " A", "$A"])
def test_column_index_rejects_non_columns(letters: str) -> None:
    with pytest.raises(ValueError, match="is not a column name"):
        column_index(letters)


def test_column_index_beyond_xfd() -> None:
    with pytest.raises(ValueError, match="beyond Excel's last column XFD"):
        column_index("XFE")


@pytest.mark.parametrize(
    ("ref", "row", "column"),
    [
        ("A1", 1, 1),
        ("F12", 12, 6),
        ("$F$12", 12, 6),
        ("F$12", 12, 6),
        ("$F12", 12, 6),
        ("f12", 12, 6),
        (" F12 ", 12, 6),
        ("XFD1048576", MAX_ROWS, MAX_COLUMNS),
    ],
)
def test_parse_a1(ref: str, row: int, column: int) -> None:
    assert parse_a1(ref) == (row, column)


@pytest.mark.parametrize("ref", ["", "A", "12", "A0", "1A", "A-1", "Plan!A1", "A1:B2", "AAAA1", "A12345678", "R1C1"])
def test_parse_a1_rejects_what_is_not_one_cell(ref: str) -> None:
    with pytest.raises(ValueError, match=r"A1 cell reference|outside|beyond"):
        parse_a1(ref)


def test_parse_a1_limits() -> None:
    with pytest.raises(ValueError, match="row 1048577 is outside"):
        parse_a1("A1048577")
    with pytest.raises(ValueError, match="beyond Excel's last column"):
        parse_a1("XFE1")


def test_a1_is_the_inverse_of_parse_a1_at_the_corners() -> None:
    for row in (1, 2, 99, 100, MAX_ROWS):
        for column in (1, 26, 27, 702, 703, MAX_COLUMNS):
            assert parse_a1(a1(row, column)) == (row, column)
    assert a1(12, 6) == "F12"


@pytest.mark.parametrize(("row", "column"), [(0, 1), (MAX_ROWS + 1, 1), (1, 0), (1, MAX_COLUMNS + 1)])
def test_a1_outside_the_grid(row: int, column: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        a1(row, column)


def test_cell_ref_reads_like_a_spreadsheet_reference() -> None:
    assert str(CellRef("Plan", 12, 6)) == "Plan!F12"
    assert str(CellRef("My Plan", 2, 28, book="plan-EMEA.xlsx")) == "'My Plan'!AB2"
    assert str(CellRef("O'Brien", 1, 1)) == "'O''Brien'!A1"
    assert CellRef("Plan", 12, 6).address == "F12"
    assert CellRef("Plan", 12, 6) == CellRef("Plan", 12, 6)
    assert hash(CellRef("Plan", 12, 6)) == hash(CellRef("Plan", 12, 6))
    with pytest.raises(AttributeError):
        CellRef("Plan", 1, 1).row = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("sheet", "quoted"), [("Plan", "Plan"), ("Plan_2", "Plan_2"), ("2027", "'2027'"), ("Q1 plan", "'Q1 plan'")]
)
def test_quote_sheet(sheet: str, quoted: str) -> None:
    assert quote_sheet(sheet) == quoted
