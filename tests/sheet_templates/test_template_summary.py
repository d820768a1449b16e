"""The template's Summary and Plansheet agree on a plan, including lines a planner added.

A planner adds lines by inserting rows inside the Plan table. LibreOffice (or Excel) grows the
Summary's ranges and the PS_PLAN_ROWS name over them but writes no formulas into the new rows,
so the Summary must compute from the input cells. Lines typed below the table are counted by
nobody: the reader refuses them with the cell and the fix. Expected money is worked out here
with Decimal at the money grain (each line's each month at its plan rate, rounded half up to
the cent, then summed), never read from the template's formulas.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from addin.consolidate import REJECTED, process_file
from addin.issues import Rule, Severity
from addin.reader import plan_from_rows, read_plan, table_rows_from_names
from addin.safety import inspect_package
from sheet_templates import PlanSchema, PlansheetError, build_schema, load_config
from sheet_templates.config import QUARTERS, default_config_path
from sheet_templates.excel_template import NAME_PLAN_ROWS, build_template
from sheet_templates.schema import PLAN_SHEET
from sync_service.api.problems import status_of
from sync_service.cli import main
from sync_service.planning.workflow import Incoming, read_incoming
from sync_service.platform.errors import Unprocessable
from sync_service.platform.storage import Team
from tests.libreoffice import formula_problems, insert_rows_in_libreoffice, sheet_values

SCHEMA: PlanSchema = build_schema(load_config(default_config_path()))
CENT = Decimal("0.01")
NO_CHANNEL = "No listed channel"
FIX = (
    "insert rows inside the table (select a numbered row, Insert rows above) and move the line there, "
    "or download a template with more rows"
)


def month_cents(currency: str | None, amount: Decimal) -> Decimal:
    """One line's one month in the reporting currency: half up to the cent; no plan rate, nothing."""
    rate = SCHEMA.config.plan_rates.get(currency or "")
    return Decimal(0) if rate is None else (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)


def expected_summary(lines: list[dict[str, Any]]) -> dict[str, list[Decimal]]:
    """Channel (or No listed channel) -> planned spend per quarter, from the lines as typed."""
    out = {name: [Decimal(0)] * 4 for name in (*SCHEMA.config.channels, NO_CHANNEL)}
    for line in lines:
        channel = line.get("channel") if line.get("channel") in SCHEMA.config.channels else NO_CHANNEL
        for col in SCHEMA.month_columns:
            if col.name in line:
                out[channel][col.quarter - 1] += month_cents(line.get("currency"), Decimal(str(line[col.name])))
    return out


def summary_rows(path: Path) -> dict[str, list[Any]]:
    return {row[0]: row[1:6] for row in sheet_values(path, "Summary") if row and row[0]}


def assert_money(actual: Any, expected: Decimal, where: str) -> None:
    assert isinstance(actual, int | float), f"{where}: {actual!r} is not a number"
    assert abs(Decimal(repr(float(actual))) - expected) < Decimal("0.000001"), f"{where}: {actual} != {expected}"


def a_line(n: int, **values: Any) -> dict[str, Any]:
    """A valid EMEA line as a planner fills it (amounts in the line's currency)."""
    return {
        "line_id": f"EMEA-{n:04d}",
        "business_unit": "Enterprise",
        "team": "Demand",
        "campaign": f"Campaign {n}",
        "owner": "Kim",
        "status": "Planned",
        **values,
    }


PREFILLED = [
    # EUR 999.99 x 1.08 = 1,079.9892 -> 1,079.99 a month; rounding the quarter instead would differ.
    a_line(1, channel="Events", currency="EUR", m01=Decimal("999.99"), m02=Decimal("999.99"), m03=Decimal("999.99")),
    a_line(2, channel="Paid Search", currency="USD", m04=Decimal("1200.00"), m12=Decimal("0.10")),
    a_line(3, channel="Email", currency="JPY", m07=Decimal(123_457), m08=Decimal(99)),
    a_line(4, currency="BRL", m10=Decimal("0.05")),  # no channel yet
]
# Typed by the planner into two rows inserted inside the table: GBP is not the reporting currency.
INSERTED = [
    # GBP 1,000.50 x 1.27 = 1,270.635: half a cent, rounded up to 1,270.64.
    a_line(101, channel="Events", currency="GBP", m01=Decimal("1000.50"), m06=Decimal("333.33")),
    a_line(102, channel="Webinars", currency="GBP", m09=Decimal("0.01"), m11=Decimal("77.77")),
]


def cells_of(line: dict[str, Any], row: int) -> dict[str, Any]:
    return {f"{SCHEMA[name].letter}{row}": value for name, value in line.items()} | {
        f"{SCHEMA['region'].letter}{row}": "EMEA"
    }


@pytest.fixture(scope="module")
def inserted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A template with lines and 3 spare rows, two rows inserted inside its table and filled, one line typed below."""
    work = tmp_path_factory.mktemp("inserted")
    source = build_template(
        SCHEMA,
        "EMEA",
        work / "plan-EMEA.xlsx",
        lines=PREFILLED,
        spare_rows=3,
        allocations={"Q1": 500_000, "Q2": 250_050, "Q3": 0, "Q4": 1_000_000_00},
    )
    last = 1 + len(PREFILLED) + 3  # the last numbered row before the insertion: 8
    at = 4  # insert above the third line: rows 4 and 5 are new; the old rows 4..8 move to 6..10
    cells = cells_of(INSERTED[0], at) | cells_of(INSERTED[1], at + 1)
    below = last + len(INSERTED) + 2  # a line typed under the (grown) table, one empty row between
    cells |= cells_of(a_line(900, channel="Events", currency="EUR", m01=Decimal(5000)), below)
    out = insert_rows_in_libreoffice(source, work / "out" / "plan-EMEA.xlsx", at, len(INSERTED), cells)
    return out, below


@pytest.mark.libreoffice
def test_rows_inserted_inside_the_table_grow_its_ranges_but_get_no_formulas(inserted: tuple[Path, int]) -> None:
    path, _ = inserted
    book = openpyxl.load_workbook(path)
    plan = book["Plan"]
    assert plan.tables["PlanLines"].ref == f"A1:{SCHEMA.columns[-1].letter}10"
    assert table_rows_from_names(inspect_package(path, plan_sheet=PLAN_SHEET).defined_names) == (2, 10)
    total, q1 = SCHEMA["planned_total"].letter, SCHEMA["q1_reporting"].letter
    assert plan[f"{total}4"].value is None and plan[f"{q1}5"].value is None  # what the Summary must cope with
    assert plan[f"{total}6"].value == "=SUM(O6:Z6)"  # the third prefilled line, moved down
    assert "Plan!$H$2:$H$10" in book["Summary"]["B5"].value


@pytest.mark.libreoffice
def test_summary_counts_inserted_lines_to_the_cent(inserted: tuple[Path, int]) -> None:
    path, _ = inserted
    assert formula_problems(path) == []
    rows = summary_rows(path)
    expected = expected_summary(PREFILLED + INSERTED)
    for name, quarters in expected.items():
        for q, amount in enumerate(quarters):
            assert_money(rows[name][q], amount, f"Summary {name} Q{q + 1}")
        assert_money(rows[name][4], sum(quarters, Decimal(0)), f"Summary {name} total")
    planned = [sum((expected[name][q] for name in expected), Decimal(0)) for q in range(4)]
    for q in range(4):
        assert_money(rows["Total planned"][q], planned[q], f"Total planned Q{q + 1}")
    # Worked on paper: Events Q1 = 3 x 1,079.99 (EUR) + 1,270.64 (GBP, inserted) = 4,510.61.
    assert_money(rows["Events"][0], Decimal("4510.61"), "Events Q1")
    assert expected["Webinars"][2] == Decimal("0.01") and any(expected[NO_CHANNEL])


@pytest.mark.libreoffice
def test_plansheet_reads_the_same_lines_and_refuses_the_one_below_the_table(inserted: tuple[Path, int]) -> None:
    path, below = inserted
    read = read_plan(path, SCHEMA, expected_region="EMEA")
    outside = [i for i in read.issues if i.rule is Rule.OUTSIDE_TABLE]
    assert [(i.location, i.severity) for i in outside] == [(f"Plan!A{below}", Severity.ERROR)]
    assert "rows 2 to 10" in outside[0].message and FIX in outside[0].message
    # The only other error is the line without a channel (prefilled in row 5, moved to 7 by the insertion).
    assert [(i.rule, i.location) for i in read.errors if i.rule is not Rule.OUTSIDE_TABLE] == [
        (Rule.REQUIRED, f"Plan!{SCHEMA['channel'].letter}7")
    ]
    ids = sorted(read.table["line_id"])
    assert ids == sorted([ln["line_id"] for ln in PREFILLED + INSERTED] + ["EMEA-0900"])
    # Inside the table, Plansheet's money equals the Summary's: the inserted lines are in both.
    inside = read.table[read.table["line_id"] != "EMEA-0900"]
    months = [c.name for c in SCHEMA.month_columns]
    cents = sum(
        month_cents(cur, Decimal(int(v)) / 100)
        for cur, row in zip(inside["currency"], inside[months].to_numpy(), strict=True)
        for v in row
    )
    assert_money(summary_rows(path)["Total planned"][4], cents, "Total planned for the year")


def test_a_line_typed_below_the_table_is_refused_with_its_cell_and_the_fix(tmp_path: Path) -> None:
    path = build_template(SCHEMA, "EMEA", tmp_path / "plan-EMEA.xlsx", lines=PREFILLED[:1], spare_rows=2)
    book = openpyxl.load_workbook(path)
    plan = book["Plan"]
    for row, line in (
        (3, a_line(2, channel="Email", currency="USD", m01=10)),
        (7, a_line(7, channel="Email", currency="USD", m01=20)),
    ):
        for ref, value in cells_of(line, row).items():
            plan[ref] = value
    book.save(path)

    read = read_plan(path, SCHEMA)
    assert len(read.table) == 3 and not read.ok
    [issue] = [i for i in read.issues if i.rule is Rule.OUTSIDE_TABLE]
    assert issue.location == "Plan!A7"
    assert issue.message == (
        "This line is below the plan table (rows 2 to 4), so the template's Summary does not count it; " + FIX
    )
    assert [i.rule for i in read.errors] == [Rule.OUTSIDE_TABLE]


def test_plansheet_validate_shows_a_line_below_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = build_template(SCHEMA, "EMEA", tmp_path / "plan-EMEA.xlsx", lines=PREFILLED[:1], spare_rows=1)
    book = openpyxl.load_workbook(path)
    for ref, value in cells_of(a_line(5, channel="Email", currency="USD", m01=10), 5).items():
        book["Plan"][ref] = value
    book.save(path)
    code = main(["validate", str(path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "invalid, 2 lines, 1 error" in out
    assert "Plan!A5" in out and FIX in out and "[plan.outside_table]" in out


def test_consolidate_and_the_service_refuse_a_line_below_the_table(tmp_path: Path) -> None:
    path = build_template(SCHEMA, "EMEA", tmp_path / "plan-EMEA.xlsx", lines=PREFILLED[:1], spare_rows=1)
    book = openpyxl.load_workbook(path)
    for ref, value in cells_of(a_line(6, channel="Email", currency="USD", m01=10), 6).items():
        book["Plan"][ref] = value
    book.save(path)

    outcome = process_file(path, "plan-EMEA.xlsx", SCHEMA)
    assert outcome.status == REJECTED
    assert [i.location for i in outcome.issues if i.rule is Rule.OUTSIDE_TABLE] == ["Plan!A6"]

    team = Team(id="emea-enterprise", region="EMEA", business_unit="Enterprise", name="EMEA Enterprise")
    upload = Incoming(team=team.id, source="xlsx", raw=path.read_bytes(), filename="plan-EMEA.xlsx")
    with pytest.raises(Unprocessable) as refused:
        read_incoming(upload, SCHEMA, team)
    assert status_of(refused.value) == 422  # what the web edge answers
    [issue] = [i for i in refused.value.issues if i["rule"] == "plan.outside_table"]
    assert issue["location"] == "Plan!A6" and FIX in issue["message"]


def test_a_workbook_without_the_table_rows_name_is_not_checked(tmp_path: Path) -> None:
    path = build_template(SCHEMA, "EMEA", tmp_path / "plan-EMEA.xlsx", lines=PREFILLED[:1], spare_rows=1)
    book = openpyxl.load_workbook(path)
    del book.defined_names[NAME_PLAN_ROWS]  # a template from before the name, or another app's export
    for ref, value in cells_of(a_line(9, channel="Email", currency="USD", m01=10), 9).items():
        book["Plan"][ref] = value
    book.save(path)
    read = read_plan(path, SCHEMA)
    assert len(read.table) == 2 and read.ok
    # A grid from a Google sheet or a JSON client has no table: nothing to check either.
    grid = sheet_values(path, PLAN_SHEET)
    assert plan_from_rows(grid, SCHEMA).ok
    outside = plan_from_rows(grid, SCHEMA, table_rows=(2, 3))
    assert [i.location for i in outside.issues if i.rule is Rule.OUTSIDE_TABLE] == ["Plan!A9"]


def test_the_allocations_passed_in_cents_show_in_the_summary(tmp_path: Path) -> None:
    cents = {"Q1": 12_345_678, "Q2": 0, "Q3": 50, "Q4": 100_000_000}
    path = build_template(SCHEMA, "EMEA", tmp_path / "plan-EMEA.xlsx", allocations=cents)
    summary = openpyxl.load_workbook(path)["Summary"]
    row = next(r for r in range(1, summary.max_row + 1) if summary.cell(r, 1).value == "Allocation")
    assert [summary.cell(row, c).value for c in range(2, 6)] == [123_456.78, 0, 0.5, 1_000_000]
    assert summary.cell(row, 6).value == f"=SUM(B{row}:E{row})"
    default = openpyxl.load_workbook(build_template(SCHEMA, "EMEA", tmp_path / "default.xlsx"))["Summary"]
    assert [default.cell(row, c).value for c in range(2, 6)] == [
        float(SCHEMA.config.allocation("EMEA", q)) for q in QUARTERS
    ]
    with pytest.raises(PlansheetError, match="allocations are per quarter"):
        build_template(SCHEMA, "EMEA", tmp_path / "bad.xlsx", allocations={"Q5": 1})


@pytest.mark.libreoffice
def test_the_allocations_are_what_the_recalculated_summary_compares_against(inserted: tuple[Path, int]) -> None:
    path, _ = inserted
    rows = summary_rows(path)
    allocation = [Decimal("5000"), Decimal("2500.50"), Decimal(0), Decimal("1000000")]
    for q in range(4):
        assert_money(rows["Allocation"][q], allocation[q], f"Allocation Q{q + 1}")
        assert_money(
            rows["Remaining (allocation - planned)"][q],
            allocation[q] - Decimal(repr(float(rows["Total planned"][q]))),
            f"Remaining Q{q + 1}",
        )
    assert_money(rows["Allocation"][4], sum(allocation, Decimal(0)), "Allocation for the year")


@pytest.mark.libreoffice
def test_a_row_inserted_above_the_first_numbered_row_is_outside_for_both(tmp_path: Path) -> None:
    """Inserting above a range's first row moves the range down; the Summary and Plansheet both leave the row out."""
    source = build_template(SCHEMA, "EMEA", tmp_path / "plan-EMEA.xlsx", lines=PREFILLED, spare_rows=3)
    out = insert_rows_in_libreoffice(source, tmp_path / "out" / "plan-EMEA.xlsx", 2, 1, cells_of(INSERTED[0], 2))
    assert formula_problems(out) == []
    rows = summary_rows(out)
    for name, quarters in expected_summary(PREFILLED).items():  # without the inserted line
        for q, amount in enumerate(quarters):
            assert_money(rows[name][q], amount, f"Summary {name} Q{q + 1}")
    [issue] = [i for i in read_plan(out, SCHEMA).issues if i.rule is Rule.OUTSIDE_TABLE]
    assert issue.location == "Plan!A2"
    assert issue.message.startswith("This line is above the plan table (rows 3 to 9)")
