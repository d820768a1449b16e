"""How every sheet Plansheet writes prints: landscape, one page wide, header rows repeated, a footer saying what it is.

One set of rules for the workbooks written with xlsxwriter (the master, the management pack) and
with openpyxl (the plan templates): A4 landscape (Excel and LibreOffice scale to Letter when the
printer asks), as many pages tall as needed but never split sideways, the table's header on every
page, and a footer with the sheet's name, what the workbook is, and "Page 3 of 7".
"""

from __future__ import annotations

from typing import Any

from sheet_templates.text import printable

A4 = 9  # the paper size code of SpreadsheetML
MARGINS = {"left": 0.4, "right": 0.4, "top": 0.5, "bottom": 0.6}  # inches


def footer(what: str) -> str:
    """The footer: the sheet's name left, `what` the workbook is in the centre, the page of pages right."""
    text = printable(what)[:160].replace("&", "&&")
    return f"&L&A&C{text}&RPage &P of &N"


def setup_xlsxwriter(sheet: Any, what: str, header_rows: tuple[int, int] | None) -> None:
    """Print setup of an xlsxwriter worksheet; `header_rows` (first, last; 0-based) repeat on every page."""
    sheet.set_landscape()
    sheet.set_paper(A4)
    sheet.fit_to_pages(1, 0)
    if header_rows is not None:
        sheet.repeat_rows(*header_rows)
    sheet.set_margins(**MARGINS)
    sheet.set_footer(footer(what))


def setup_openpyxl(sheet: Any, what: str, header_rows: tuple[int, int] | None) -> None:
    """Print setup of an openpyxl worksheet; `header_rows` (first, last; 1-based) repeat on every page."""
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    if header_rows is not None:
        sheet.print_title_rows = f"{header_rows[0]}:{header_rows[1]}"
    for side, inches in MARGINS.items():
        setattr(sheet.page_margins, side, inches)
    sheet.oddFooter.left.text = "&A"
    sheet.oddFooter.center.text = printable(what)[:160].replace("&", "&&")
    sheet.oddFooter.right.text = "Page &P of &N"
