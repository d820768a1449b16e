from __future__ import annotations

import datetime as dt
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from sheet_templates import PlansheetError, build_schema, load_config
from sheet_templates.config import default_config_path
from sheet_templates.excel_template import build_template, build_templates

ROWS = 300  # template.rows in the bundled configuration
LAST = ROWS + 1  # header in row 1


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> openpyxl.Workbook:
    """The bundled organisation's EMEA template, built once for the read-only checks below."""
    schema = build_schema(load_config(default_config_path()))
    return openpyxl.load_workbook(build_template(schema, "EMEA", tmp_path_factory.mktemp("book") / "plan-EMEA.xlsx"))


def test_template_fixture_builds_the_emea_template(template_path: Path) -> None:
    assert template_path.name == "plan-EMEA.xlsx"
    assert openpyxl.load_workbook(template_path).sheetnames == ["Instructions", "Plan", "Summary", "Lists"]


def test_sheets_in_order_and_the_plan_opens_first(book) -> None:
    assert book.sheetnames == ["Instructions", "Plan", "Summary", "Lists"]
    assert book.active.title == "Plan"


def test_plan_header_is_the_schema_and_the_table_covers_header_and_rows(book, schema) -> None:
    plan = book["Plan"]
    assert [c.value for c in plan[1]] == [c.label for c in schema.columns]
    assert plan.max_column == len(schema.columns) == 39
    table = plan.tables["PlanLines"]
    assert table.ref == f"A1:AM{LAST}"
    assert [c.name for c in table.tableColumns] == [c.label for c in schema.columns]
    assert plan.max_row == LAST


def test_header_row_is_frozen(book) -> None:
    plan = book["Plan"]
    assert plan.freeze_panes == "B2"  # header row and the Line ID column stay in view


def test_rows_are_prenumbered_for_the_region(book) -> None:
    plan = book["Plan"]
    assert [plan[f"A{r}"].value for r in (2, 3, LAST)] == ["EMEA-0001", "EMEA-0002", f"EMEA-{ROWS:04d}"]
    assert {plan[f"B{r}"].value for r in range(2, LAST + 1)} == {"EMEA"}
    assert plan["C2"].value is None


def test_dropdowns_come_from_named_lists_on_the_lists_sheet(book, schema) -> None:
    plan, lists = book["Plan"], book["Lists"]
    by_range = {str(dv.sqref): dv for dv in plan.data_validations.dataValidation}
    choice_columns = [c for c in schema.columns if c.choices is not None]
    assert [c.name for c in choice_columns] == ["region", "business_unit", "channel", "currency", "status"]
    for col in choice_columns:
        dv = by_range[f"{col.letter}2:{col.letter}{LAST}"]
        assert dv.type == "list"
        # OOXML stores the formula without a leading "=", as Excel and LibreOffice write it.
        assert dv.formula1 == col.list_name
        assert dv.showErrorMessage and dv.errorStyle == "stop"
        [(sheet, cells)] = book.defined_names[col.list_name].destinations
        assert sheet == "Lists"
        assert [c.value for row in lists[cells] for c in row] == list(col.choices)


def test_other_input_columns_are_validated_too(book, schema) -> None:
    by_range = {str(dv.sqref): dv for dv in book["Plan"].data_validations.dataValidation}
    m01 = by_range[f"O2:O{LAST}"]
    assert (m01.type, m01.operator, m01.formula1) == ("decimal", "greaterThanOrEqual", "0")
    leads = by_range[f"AC2:AC{LAST}"]
    assert (leads.type, leads.operator, leads.formula1) == ("whole", "greaterThanOrEqual", "0")
    start = by_range[f"M2:M{LAST}"]
    excel_epoch = dt.date(1899, 12, 30)
    assert start.type == "date"
    assert (excel_epoch + dt.timedelta(int(start.formula1)), excel_epoch + dt.timedelta(int(start.formula2))) == (
        dt.date(2026, 2, 1),
        dt.date(2027, 1, 31),
    )
    assert "2026-02-01 to 2027-01-31" in start.error
    assert by_range[f"E2:E{LAST}"].type == "textLength"
    assert not any(r.startswith(("AH", "AI", "AJ")) for r in by_range)  # formula columns are not inputs


def test_plan_rates_are_a_named_table_on_the_lists_sheet(book, config) -> None:
    [(sheet, cells)] = book.defined_names["ps_fx_rates"].destinations
    assert sheet == "Lists"
    rows = [[c.value for c in row] for row in book["Lists"][cells]]
    assert {code: Decimal(str(rate)) for code, rate in rows} == config.plan_rates


def test_input_cells_are_unlocked_and_formula_cells_locked(book, schema) -> None:
    plan = book["Plan"]
    for row in (2, 150, LAST):
        for col in schema.columns:
            cell = plan.cell(row, col.index)
            assert cell.protection.locked is (not col.is_input), f"{cell.coordinate} ({col.name})"
    assert all(c.protection.locked for c in plan[1])  # headers cannot be renamed by accident


def test_formula_cells_compute_their_own_row(book) -> None:
    plan = book["Plan"]
    assert plan["AH2"].value == "=SUM(O2:Z2)"
    assert plan[f"AH{LAST}"].value == f"=SUM(O{LAST}:Z{LAST})"
    assert plan[f"AI{LAST}"].value == f"=AH{LAST}-AB{LAST}"
    month = "ROUND({}7*VLOOKUP(K7,ps_fx_rates,2,FALSE),2)"
    assert plan["AM7"].value == "=IFERROR(" + "+".join(month.format(m) for m in "XYZ") + ",0)"


def test_every_sheet_is_protected_without_a_password(book) -> None:
    for ws in book.worksheets:
        assert ws.protection.sheet is True, ws.title
        assert ws.protection.password is None, ws.title
    plan = book["Plan"].protection
    # False means "not prevented": planners may still resize columns, filter, sort and insert rows.
    assert (plan.formatColumns, plan.autoFilter, plan.sort, plan.insertRows) == (False, False, False, False)


def test_the_table_rows_are_a_defined_name(book) -> None:
    """PS_PLAN_ROWS spans the numbered rows; spreadsheet apps grow it with rows inserted inside it."""
    assert book.defined_names["PS_PLAN_ROWS"].attr_text == f"Plan!$A$2:$A${LAST}"


def test_formula_columns_are_the_tables_calculated_columns(book, schema) -> None:
    """So Excel writes the formulas into rows inserted inside the table."""
    columns = {c.name: c for c in book["Plan"].tables["PlanLines"].tableColumns}
    for col in schema.columns:
        calculated = columns[col.label].calculatedColumnFormula
        if col.is_input:
            assert calculated is None, col.name
        else:
            assert "=" + calculated.attr_text == book["Plan"][f"{col.letter}2"].value, col.name
    assert columns["Planned total"].calculatedColumnFormula.attr_text == "SUM(O2:Z2)"


def test_template_identity_is_in_defined_names(book, schema) -> None:
    names = book.defined_names
    assert names["PS_TEMPLATE_ID"].attr_text == '"plansheet.plan/acme"'
    assert names["PS_TEMPLATE_VERSION"].attr_text == f'"{schema.version}"'
    assert names["PS_REGION"].attr_text == '"EMEA"'
    assert names["PS_FISCAL_YEAR"].attr_text == "2027"


def test_variance_is_red_when_over_spent_and_green_when_under(book) -> None:
    rules = {str(cf.sqref): cf.rules for cf in book["Plan"].conditional_formatting}
    variance = rules[f"AI2:AI{LAST}"]
    colours = {(r.operator, tuple(r.formula)): r.dxf.fill.fgColor.rgb[-6:] for r in variance}
    assert colours == {("lessThan", ("0",)): "F8CBAD", ("greaterThan", ("0",)): "C6EFCE"}


def test_summary_has_every_channel_and_the_regions_allocation(book, config) -> None:
    summary = book["Summary"]
    assert summary["A1"].value == "Acme Corporation: EMEA plan summary, FY2027"
    assert [c.value for c in summary[4]] == ["Channel", "Q1", "Q2", "Q3", "Q4", "Total"]
    channels = [summary.cell(r, 1).value for r in range(5, 5 + len(config.channels))]
    assert channels == list(config.channels)
    labels = {summary.cell(r, 1).value: r for r in range(5, summary.max_row + 1)}
    allocation = labels["Allocation"]
    assert [summary.cell(allocation, c).value for c in range(2, 6)] == [900_000, 950_000, 900_000, 1_000_000]
    [(sheet, cell)] = book.defined_names["ps_allocation_total"].destinations
    assert (sheet, cell) == ("Summary", f"$F${allocation}")
    # Q1 of the first channel, from the input cells: per currency, each month at its Lists rate to the cent.
    rates = {code: f"Lists!$H${r}" for r, code in enumerate(config.plan_rates, start=2)}
    assert [book["Lists"][cell.removeprefix("Lists!")].value for cell in rates.values()] == [
        float(rate) for rate in config.plan_rates.values()
    ]
    rows = "Plan!${0}$2:${0}$" + str(LAST)
    months = "+".join(f"ROUND({rows.format(m)}*{{rate}},2)" for m in "OPQ")
    expected = "=" + "+".join(
        f'SUMPRODUCT(({rows.format("H")}=$A5)*({rows.format("K")}="{code}")*({months.format(rate=rate)}))'
        for code, rate in rates.items()
    )
    assert summary.cell(5, 2).value == expected


def test_instructions_name_the_region_year_and_template(book, schema) -> None:
    text = "\n".join(str(c.value) for c in book["Instructions"]["A"] if c.value)
    assert "Acme Corporation marketing plan: EMEA, FY2027" in text
    assert "01 February 2026 to 31 January 2027" in text
    assert f"version {schema.version}" in text
    assert "AH  Planned total (calculated)" in text
    assert "Insert rows inside the table" in text and "Lines typed below the table are not counted" in text


def test_build_templates_writes_one_file_per_region(tmp_path: Path, schema) -> None:
    paths = build_templates(schema, tmp_path / "out")
    assert [p.name for p in paths] == ["plan-NA.xlsx", "plan-EMEA.xlsx", "plan-APAC.xlsx", "plan-LATAM.xlsx"]
    for path in paths:
        region = path.stem.removeprefix("plan-")
        book = openpyxl.load_workbook(path)
        assert book.defined_names["PS_REGION"].attr_text == f'"{region}"'
        assert book["Plan"]["A2"].value == f"{region}-0001"


def test_unknown_region_is_refused_before_anything_is_written(tmp_path: Path, schema) -> None:
    out = tmp_path / "out"
    with pytest.raises(PlansheetError) as caught:
        build_templates(schema, out, ["EMEA", "MARS", "Benelux"])
    assert str(caught.value) == "unknown region MARS, Benelux; the configured regions are NA, EMEA, APAC, LATAM"
    assert not out.exists()


def test_unknown_region_is_refused_for_a_single_template_too(tmp_path: Path, schema) -> None:
    path = tmp_path / "plan-MARS.xlsx"
    with pytest.raises(PlansheetError, match="unknown region MARS; the configured regions are NA, EMEA, APAC, LATAM"):
        build_template(schema, "MARS", path)
    assert not path.exists()


def test_prefilled_lines_land_in_their_cells(tmp_path: Path, schema) -> None:
    lines = [
        {
            "line_id": "EMEA-0042",
            "business_unit": "SMB",
            "team": "Field",
            "campaign": "Spring launch",
            "channel": "Events",
            "owner": "Ana",
            "currency": "EUR",
            "status": "Planned",
            "start_date": dt.date(2026, 3, 1),
            "m01": Decimal("1000.50"),
            "m12": 250,
            "actual": Decimal("99.99"),
            "leads": 40,
            "notes": '=HYPERLINK("http://example.invalid")',
        },
        {"campaign": "=1+1", "channel": "Email"},
    ]
    path = build_template(schema, "EMEA", tmp_path / "plan-EMEA.xlsx", lines=lines, spare_rows=2)
    plan = openpyxl.load_workbook(path)["Plan"]
    assert plan.tables["PlanLines"].ref == "A1:AM5"  # two lines and two spare rows
    row2 = {col.name: plan.cell(2, col.index).value for col in schema.input_columns}
    assert row2["line_id"] == "EMEA-0042"
    assert row2["region"] == "EMEA"  # filled in for the planner
    assert (row2["business_unit"], row2["channel"], row2["currency"]) == ("SMB", "Events", "EUR")
    assert row2["start_date"] == dt.datetime(2026, 3, 1)
    assert (plan["O2"].value, plan["Z2"].value, plan["AB2"].value, plan["AC2"].value) == (1000.5, 250, 99.99, 40)
    assert plan["O2"].data_type == "n"
    assert plan["P2"].value is None
    assert [plan[f"A{r}"].value for r in range(3, 6)] == ["EMEA-0002", "EMEA-0003", "EMEA-0004"]
    assert plan["E3"].value == "=1+1"
    # Text that looks like a formula stays text: it is shown as typed, never evaluated.
    for cell in (plan["AG2"], plan["E3"]):
        assert cell.data_type == "s", cell.coordinate
    with zipfile.ZipFile(path) as z:
        sheet_xml = z.read("xl/worksheets/sheet2.xml").decode()
    assert "<f>1+1</f>" not in sheet_xml
    assert "<f>HYPERLINK" not in sheet_xml
    assert plan["AH2"].value == "=SUM(O2:Z2)"  # formula columns are still formulas


def test_a_long_plan_gets_rows_beyond_the_configured_minimum(tmp_path: Path, schema) -> None:
    lines = [{"campaign": f"Campaign {i}"} for i in range(ROWS + 5)]
    plan = openpyxl.load_workbook(build_template(schema, "NA", tmp_path / "plan-NA.xlsx", lines=lines))["Plan"]
    last = plan.tables["PlanLines"].ref.split(":")[1]
    assert int(last[2:]) >= 1 + ROWS + 5
    assert plan[f"E{ROWS + 6}"].value == f"Campaign {ROWS + 4}"
