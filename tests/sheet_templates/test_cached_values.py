"""Every formula a template carries its value as written, so previews, phones, pandas and Power BI read figures.

Each workbook is read twice: as written (openpyxl `data_only`, the cached values, no calculation)
and after LibreOffice recalculates it in full; the two agree to the cent on every formula cell.
The recalculation is forced (tests/libreoffice.py), and a workbook whose every cached value is
deliberately wrong proves it: LibreOffice's figures replace them all.
"""

from __future__ import annotations

import re
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from sheet_templates import build_schema, load_config
from sheet_templates.cached_values import MissingValue, fill
from sheet_templates.excel_template import build_template
from tests.libreoffice import cached_differences, formula_count, recalculate_many

SCHEMA = build_schema(load_config())
REGION = "EMEA"


def lines() -> list[dict[str, Any]]:
    """A mix a stored plan holds: five currencies, a half cent, a channel typed in another case, gaps."""
    rows = [
        {"channel": "Events", "currency": "EUR", "m01": Decimal("10000"), "m02": Decimal("2500.50"), "actual": 3000},
        {"channel": "Paid Search", "currency": "GBP", "m01": Decimal("1000.50"), "m06": Decimal("333.33")},
        {"channel": "events", "currency": "USD", "m07": 5000, "m10": Decimal("100.10")},  # Excel matches any case
        {"channel": None, "currency": "EUR", "m02": Decimal("100")},  # no channel chosen yet
        {"channel": "Webinars", "currency": "JPY", "m03": 1_500_000, "m11": 123_457},
        {"channel": "Email", "currency": None, "m01": 500},  # no currency: nothing in the reporting currency
        {"channel": "Content", "currency": "BRL", "m09": Decimal("0.05"), "m12": Decimal("12345.67"), "actual": 1},
    ]
    return [{"line_id": f"EMEA-{k:04d}", "region": REGION, **row} for k, row in enumerate(rows, start=1)]


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """(as written, recalculated by LibreOffice) of an empty template, a pre-filled one and a reforecast."""
    work = tmp_path_factory.mktemp("cached")
    written = {
        "empty": build_template(SCHEMA, REGION, work / "empty.xlsx"),
        "filled": build_template(SCHEMA, REGION, work / "filled.xlsx", lines=lines(), spare_rows=3),
        "reforecast": build_template(
            SCHEMA, REGION, work / "reforecast.xlsx", lines=lines(), closed=["m01", "m02", "m03", "m04"]
        ),
    }
    wrong = work / "wrong.xlsx"
    _every_cached_value_wrong(written["filled"], wrong)
    written["wrong"] = wrong
    done = recalculate_many(list(written.values()), work / "recalculated")
    return {name: (path, out) for (name, path), out in zip(written.items(), done, strict=True)}


def _every_cached_value_wrong(source: Path, target: Path) -> None:
    """A copy of `source` whose every formula cell caches 123456.78 (as a file saved by a stale app might)."""
    with zipfile.ZipFile(source) as book, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for item in book.infolist():
            data = book.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                data = re.sub(rb'( t="[a-z]+")?>(<f>.*?</f>)<v>[^<]*</v>', rb">\2<v>123456.78</v>", data)
            out.writestr(item, data)


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", ["empty", "filled", "reforecast"])
def test_every_formula_cell_is_written_with_the_value_libreoffice_computes(
    books: dict[str, tuple[Path, Path]], name: str
) -> None:
    written, recalculated = books[name]
    assert formula_count(written) >= 6 * 7 + 45  # six formulas a Plan row and the Summary's: each is compared
    assert cached_differences(written, recalculated) == []


@pytest.mark.libreoffice
def test_a_reader_that_does_not_calculate_sees_the_plan_not_zeros(books: dict[str, tuple[Path, Path]]) -> None:
    written, _ = books["filled"]
    summary = {r[0]: r[1:6] for r in CalamineWorkbook.from_path(str(written)).get_sheet_by_name("Summary").to_python()}
    # Events: EUR 10,000 + 2,500.50 in Q1 at 1.08, and USD 5,000 (typed "events") in Q3 and 100.10 in Q4.
    rate = SCHEMA.config.plan_rates
    q1 = (Decimal("10000") * rate["EUR"]).quantize(Decimal("0.01")) + (Decimal("2500.50") * rate["EUR"]).quantize(
        Decimal("0.01")
    )
    assert Decimal(repr(summary["Events"][0])) == q1
    assert Decimal(repr(summary["Events"][2])) == (5000 * rate["USD"]).quantize(Decimal("0.01"))
    assert summary["Total planned"][4] > 0 and summary["No listed channel"][0] > 0
    plan = openpyxl.load_workbook(written, data_only=True)["Plan"]
    assert plan[f"{SCHEMA['planned_total'].letter}2"].value == 12500.5
    assert plan[f"{SCHEMA['variance'].letter}2"].value == 9500.5


@pytest.mark.libreoffice
def test_the_recalculation_is_forced_a_workbook_of_wrong_cached_values_is_recalculated_in_full(
    books: dict[str, tuple[Path, Path]],
) -> None:
    wrong, recalculated = books["wrong"]
    good, _ = books["filled"]
    stale = cached_differences(wrong, books["filled"][1])
    assert len(stale) == formula_count(wrong)  # as written, every formula cell reads 123,456.78 ...
    assert cached_differences(good, recalculated) == []  # ... and after LibreOffice, every one is right again


def test_a_formula_cell_without_a_value_is_refused_naming_it(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Costs"
    sheet["A1"], sheet["A2"], sheet["B2"] = 2, "=A1*3", "=A2+1"
    book.save(tmp_path / "costs.xlsx")
    with pytest.raises(MissingValue, match=r"Costs!B2"):
        fill(tmp_path / "costs.xlsx", {"Costs": {"A2": 6}})
    with pytest.raises(MissingValue, match=r"Costs!A1"):
        fill(tmp_path / "costs.xlsx", {"Costs": {"A1": 1, "A2": 6, "B2": 7}})
    assert openpyxl.load_workbook(tmp_path / "costs.xlsx", data_only=True)["Costs"]["A2"].value is None  # untouched


def test_numbers_text_and_truth_values_are_cached_as_their_types(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet["A1"], sheet["A2"], sheet["A3"], sheet["A4"] = 0.1, "=A1*3", '="Q"&1', "=A1>0"
    path = tmp_path / "types.xlsx"
    book.save(path)
    fill(path, {"Sheet": {"A2": 0.30000000000000004, "A3": "Q1 & <2>", "A4": True}})
    cached = openpyxl.load_workbook(path, data_only=True)["Sheet"]
    assert (cached["A2"].value, cached["A3"].value, cached["A4"].value) == (0.30000000000000004, "Q1 & <2>", True)
    assert openpyxl.load_workbook(path)["Sheet"]["A2"].value == "=A1*3"  # the formula stays
    assert CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Sheet").to_python()[2][0] == "Q1 & <2>"
    with zipfile.ZipFile(path) as z:
        assert b'fullCalcOnLoad="1"' in z.read("xl/workbook.xml")  # Excel still recalculates on opening


def test_every_template_sheet_prints_landscape_one_page_wide_with_its_header_and_a_footer(tmp_path: Path) -> None:
    path = build_template(SCHEMA, REGION, tmp_path / "plan.xlsx", lines=lines())
    book = openpyxl.load_workbook(path)
    for sheet in book.worksheets:
        setup = sheet.page_setup
        assert (setup.orientation, setup.fitToWidth, setup.fitToHeight) == ("landscape", 1, 0), sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title
        assert sheet.oddFooter.right.text == "Page &P of &N" and sheet.oddFooter.left.text == "&A", sheet.title
        assert f"{REGION} plan, {SCHEMA.calendar.label}" in sheet.oddFooter.center.text, sheet.title
    assert book["Plan"].print_title_rows == "$1:$1"
    assert book["Summary"].print_title_rows == "$4:$4"
