"""Reading filled plan templates as a marketer returns them: typed lines, and every issue at its cell.

Each test builds a real template with the template builder, types into it with openpyxl the
way a planner would (by the header labels they see, leaving rows empty in between), saves it
and reads it back with `read_plan`. Expected cells are where the test typed the value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest
from openpyxl.utils import get_column_letter

from addin.issues import Rule, Severity
from addin.reader import PlanRead, plan_from_rows, read_plan, table_rows_from_names
from sheet_templates import OrgConfig, PlanSchema, build_schema, load_config
from sheet_templates.config import default_config_path
from sheet_templates.excel_template import build_template
from sheet_templates.samples import sample_lines
from sheet_templates.schema import ColumnType
from tests.addin.reader_helpers import cell, fill, line

EXCEL_EPOCH = dt.date(1899, 12, 30)


def cents(value: Any) -> int:
    """What an amount typed into a cell is worth, in cents (text such as "1,250.50" included)."""
    if value is None:
        return 0
    return int(Decimal(str(value).replace(",", "")) * 100)


def found(read: PlanRead) -> list[tuple[Rule, Severity, str]]:
    return [(i.rule, i.severity, i.location) for i in read.issues]


@pytest.fixture(scope="module")
def blank_template(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bundled organisation's empty EMEA template, built once; each test fills its own copy."""
    schema = build_schema(load_config(default_config_path()))
    return build_template(schema, "EMEA", tmp_path_factory.mktemp("template") / "plan-EMEA.xlsx").read_bytes()


@pytest.fixture
def plan_path(blank_template: bytes, tmp_path: Path) -> Path:
    path = tmp_path / "plan-EMEA.xlsx"
    path.write_bytes(blank_template)
    return path


# --- a valid plan -------------------------------------------------------------------------------------


def test_a_sample_plan_reads_without_issues_to_the_cent(tmp_path: Path, schema: PlanSchema) -> None:
    lines = sample_lines(schema, "EMEA", 40, seed=7)
    path = build_template(schema, "EMEA", tmp_path / "plan-EMEA.xlsx", lines=lines)

    read = read_plan(path, schema, expected_region="EMEA")

    assert read.issues == []
    assert read.ok
    assert read.meta == schema.meta_for("EMEA")
    assert len(read.table) == len(lines)  # the 260 empty pre-numbered rows are not lines
    assert read.table["line_id"].tolist() == [ln["line_id"] for ln in lines]
    assert read.table["_row"].tolist() == list(range(2, 2 + len(lines)))
    money = [c.name for c in schema.input_columns if c.type is ColumnType.MONEY]
    for name in money:
        assert read.table[name].dtype == np.int64, name
        assert read.table[name].tolist() == [cents(ln[name]) for ln in lines], name
    for name in ("leads", "mqls"):
        assert read.table[name].dtype == np.int64
        assert read.table[name].tolist() == [ln[name] for ln in lines]
    for name in ("start_date", "end_date"):
        assert read.table[name].dtype == "datetime64[s]"
        assert read.table[name].tolist() == [pd.Timestamp(ln[name]) for ln in lines]
    assert read.table["channel"].tolist() == [ln["channel"] for ln in lines]
    assert read.table["notes"].tolist() == [ln["notes"] or "" for ln in lines]


def test_typed_lines_with_empty_rows_between_and_an_amount_typed_as_text(plan_path: Path, schema: PlanSchema) -> None:
    rows = {
        2: line(schema),
        3: line(schema, channel="Paid Search", activity="Always-on search", m01=None, m02=None, m03=3300),
        # rows 4, 6 and 7 are left as the template made them: a Line ID and the region, nothing else
        5: line(schema, m01="1,250.50", team="Demand Gen"),
        8: line(schema, channel="Webinars", currency="USD", m02=None, m03=None, m01=99.99, leads=0, notes=None),
    }
    read = read_plan(fill(plan_path, schema, rows), schema)

    assert read.ok
    assert len(read.table) == 4
    assert read.table["_row"].tolist() == [2, 3, 5, 8]
    # the template pre-numbers row r as EMEA-<r-1>; the planner kept those IDs
    assert read.table["line_id"].tolist() == [f"EMEA-{r - 1:04d}" for r in (2, 3, 5, 8)]
    assert read.table["region"].tolist() == ["EMEA"] * 4
    assert read.table["m01"].tolist() == [cents(rows[r]["m01"]) for r in (2, 3, 5, 8)]
    assert read.table["m01"].tolist()[2] == 125050  # "1,250.50" typed as text
    assert read.table["m02"].tolist()[0] == 250050  # 2500.5 typed as a number
    assert read.table["actual"].tolist() == [120025] * 4
    assert read.table["leads"].tolist() == [120, 120, 120, 0]
    assert read.table["notes"].tolist() == ["Booth and travel"] * 3 + [""]
    assert read.table["start_date"].tolist() == [pd.Timestamp(schema.calendar.start)] * 4

    [issue] = read.issues
    assert (issue.rule, issue.severity) == (Rule.NUMBER_AS_TEXT, Severity.WARNING)
    assert issue.location == "Plan!O5" == cell(schema, "m01", 5)
    assert (issue.column, issue.row, issue.file) == ("m01", 5, plan_path.name)
    assert '"1,250.50"' in issue.message and "stored as text" in issue.message
    assert "read as 1,250.50" in issue.message


def test_rows_left_blank_or_holding_only_spaces_are_not_lines(plan_path: Path, schema: PlanSchema) -> None:
    rows = {
        2: line(schema),
        3: {"campaign": "   ", "notes": " "},  # spaces only: still an empty row
        4: {"line_id": None, "region": None},  # the planner cleared the pre-numbered ID too
        6: line(schema, campaign="Spring Launch FY2027"),
    }
    read = read_plan(fill(plan_path, schema, rows), schema)
    assert read.issues == []
    assert read.table["_row"].tolist() == [2, 6]
    assert read.table["campaign"].tolist() == [rows[2]["campaign"], "Spring Launch FY2027"]


def test_a_row_with_only_a_note_is_a_line_and_its_missing_values_are_reported(
    plan_path: Path, schema: PlanSchema
) -> None:
    read = read_plan(fill(plan_path, schema, {2: line(schema), 4: {"notes": "to do: agency quote"}}), schema)
    assert read.table["_row"].tolist() == [2, 4]
    required = [c.name for c in schema.input_columns if c.required and c.name not in ("line_id", "region")]
    assert found(read) == [(Rule.REQUIRED, Severity.ERROR, cell(schema, name, 4)) for name in required]
    assert all(i.message == f"{schema[i.column].label} is required" for i in read.issues)


# --- every rule at once -----------------------------------------------------------------------------


def all_rules_rows(schema: PlanSchema) -> tuple[dict[int, dict[str, Any]], list[tuple[Rule, Severity, str, str]]]:
    """One plan triggering every line rule once, and what the planner must be told: (rule, severity, cell, words)."""
    cal = schema.calendar
    no_spend = {"m01": None, "m02": None, "m03": None}
    too_late = dt.date(cal.end.year + 1, 1, 15)
    rows = {
        2: line(schema),
        3: line(schema, owner=None),
        4: line(schema, channel="Billboards"),
        5: line(schema, m03=-1500),
        6: line(schema, campaign="Data Week " + "x" * 290),
        7: line(schema, notes='=HYPERLINK("http://example.invalid","click")'),
        8: line(schema, start_date=too_late, end_date=None, **no_spend),
        9: line(schema, start_date=dt.date(2026, 6, 1), end_date=dt.date(2026, 5, 1), **no_spend),
        10: line(schema, start_date=dt.date(2026, 4, 1), end_date=dt.date(2026, 6, 30), m02=None),
        11: line(schema, region="NA"),
        12: line(schema, line_id="EMEA-0001"),
        13: line(schema, m04="about 5k"),
        14: line(schema, leads=12.5),
        15: line(schema, m05=1234.567),
        16: line(schema, end_date="end of Q2"),
    }
    expected = [
        (Rule.TOO_MANY_LINES, Severity.ERROR, "Plan", f"{len(rows)} lines; the limit is {len(rows) - 1}"),
        (Rule.REQUIRED, Severity.ERROR, cell(schema, "owner", 3), "Owner is required"),
        (Rule.ALLOWED_VALUE, Severity.ERROR, cell(schema, "channel", 4), 'Channel "Billboards" is not in the list'),
        (Rule.NEGATIVE, Severity.ERROR, cell(schema, "m03", 5), "-1,500.00; amounts cannot be negative"),
        (Rule.TOO_LONG, Severity.ERROR, cell(schema, "campaign", 6), "300 characters long; keep it to 255"),
        (Rule.FORMULA_TEXT, Severity.ERROR, cell(schema, "notes", 7), 'starts with "="'),
        (Rule.DATE_OUTSIDE_YEAR, Severity.ERROR, cell(schema, "start_date", 8), f"{too_late} is outside {cal.label}"),
        (
            Rule.END_BEFORE_START,
            Severity.ERROR,
            cell(schema, "end_date", 9),
            "2026-05-01 is before start date 2026-06-01",
        ),
        (
            Rule.SPEND_OUTSIDE_DATES,
            Severity.WARNING,
            cell(schema, "m01", 10),
            "Feb 2026, outside the line's dates 2026-04-01 to 2026-06-30",
        ),
        (
            Rule.REGION_MISMATCH,
            Severity.ERROR,
            cell(schema, "region", 11),
            'Region "NA" does not match this template\'s region EMEA',
        ),
        (Rule.DUPLICATE_ID, Severity.ERROR, cell(schema, "line_id", 12), "EMEA-0001 is used twice (also in row 2)"),
        (Rule.TYPE, Severity.ERROR, cell(schema, "m04", 13), 'must be an amount, not "about 5k"'),
        (Rule.TYPE, Severity.ERROR, cell(schema, "leads", 14), "must be a whole number, not 12.5"),
        (Rule.ROUNDED, Severity.WARNING, cell(schema, "m05", 15), "rounded to 1234.57"),
        (
            Rule.TYPE,
            Severity.ERROR,
            cell(schema, "end_date", 16),
            'must be a date (for example 2026-03-31), not "end of Q2"',
        ),
    ]
    return rows, expected


def small_schema(config: OrgConfig, max_lines: int) -> PlanSchema:
    return build_schema(dataclasses.replace(config, max_lines=max_lines))


def test_every_rule_is_reported_at_once_with_its_cell(plan_path: Path, config: OrgConfig, schema: PlanSchema) -> None:
    rows, expected = all_rules_rows(schema)
    limited = small_schema(config, max_lines=len(rows) - 1)
    assert limited.version == schema.version  # the line limit is not part of the template's shape

    read = read_plan(fill(plan_path, schema, rows), limited)

    assert found(read) == [(rule, severity, where) for rule, severity, where, _ in expected]
    for issue, (_, _, where, words) in zip(read.issues, expected, strict=True):
        assert words in issue.message, (where, issue.message)
        assert issue.file == plan_path.name
    assert not read.ok
    assert len(read.errors) == sum(s is Severity.ERROR for _, s, _, _ in expected)
    # Every line is in the table even so, with the values that could be read.
    assert read.table["_row"].tolist() == sorted(rows)
    assert read.table.loc[read.table["_row"] == 15, "m05"].item() == 123457
    assert read.table.loc[read.table["_row"] == 13, "m04"].item() == 0


def test_the_same_grid_from_a_json_client_gives_the_same_issues(
    plan_path: Path, config: OrgConfig, schema: PlanSchema
) -> None:
    """A Google Sheet or JSON client sends a plain 2-D list: None for blanks, serial or ISO dates, ragged rows."""
    rows, expected = all_rules_rows(schema)
    limited = small_schema(config, max_lines=len(rows) - 1)
    from_file = read_plan(fill(plan_path, schema, rows), limited)

    header = [c.label for c in schema.columns]
    grid: list[list[Any]] = [header]
    for r in range(2, max(rows) + 1):
        values = {"line_id": f"EMEA-{r - 1:04d}", "region": "EMEA", **rows.get(r, {})}
        out = []
        for col in schema.input_columns:
            v = values.get(col.name)
            if isinstance(v, dt.date) and col.name == "start_date":
                v = (v - EXCEL_EPOCH).days  # Sheets' UNFORMATTED_VALUE gives date serials
            elif isinstance(v, dt.date):
                v = v.isoformat()  # JSON clients send ISO text
            out.append(v)
        while out and out[-1] is None:
            out.pop()  # the Sheets API leaves out empty cells at the end of a row
        grid.append(out)
    grid += [[], [None, None]]  # empty rows at the end

    read = plan_from_rows(grid, limited, file="json", region="EMEA")

    assert found(read) == found(from_file) == [(rule, sev, where) for rule, sev, where, _ in expected]
    assert [i.message for i in read.issues] == [i.message for i in from_file.issues]
    assert {i.file for i in read.issues} == {"json"}
    pd.testing.assert_frame_equal(read.table, from_file.table)


# --- the header ---------------------------------------------------------------------------------------


def test_a_renamed_header_is_unknown_and_the_template_column_is_missing(plan_path: Path, schema: PlanSchema) -> None:
    fill(plan_path, schema, {2: line(schema), 3: line(schema, channel="Email")})
    book = openpyxl.load_workbook(plan_path)
    code = schema["campaign_code"]
    book["Plan"][f"{code.letter}1"] = "Campaign ref"
    book.save(plan_path)

    read = read_plan(plan_path, schema)

    header_cell = f"Plan!{code.letter}1"
    assert found(read) == [
        (Rule.COLUMN_UNKNOWN, Severity.WARNING, header_cell),
        (Rule.COLUMN_MISSING, Severity.ERROR, header_cell),
    ]
    unknown, missing = read.issues
    assert '"Campaign ref" is not part of the template' in unknown.message
    assert '"Campaign code" is missing from the header row' in missing.message
    assert f"it belongs in column {code.letter}" in missing.message
    assert read.table["campaign_code"].tolist() == ["", ""]  # its values were not read as codes
    assert read.table["channel"].tolist() == ["Events", "Email"]


def test_a_duplicated_header_is_an_error_and_the_first_column_is_read(plan_path: Path, schema: PlanSchema) -> None:
    fill(plan_path, schema, {2: line(schema)})
    book = openpyxl.load_workbook(plan_path)
    plan = book["Plan"]
    extra = get_column_letter(len(schema.columns) + 2)  # two columns right of the table
    plan[f"{extra}1"], plan[f"{extra}2"] = "notes", "a second notes column"  # the machine name matches too
    book.save(plan_path)

    read = read_plan(plan_path, schema)

    assert found(read) == [(Rule.COLUMN_DUPLICATE, Severity.ERROR, f"Plan!{extra}1")]
    message = read.issues[0].message
    assert '"Notes" appears twice' in message and f"first in column {schema['notes'].letter}" in message
    assert read.table["notes"].tolist() == ["Booth and travel"]


def test_columns_moved_elsewhere_are_read_by_their_label(tmp_path: Path, schema: PlanSchema) -> None:
    lines = sample_lines(schema, "EMEA", 25, seed=3)
    lines[4]["channel"] = "Billboards"
    original = build_template(schema, "EMEA", tmp_path / "original" / "plan-EMEA.xlsx", lines=lines)
    moved = tmp_path / "moved.xlsx"
    # The planner reorders columns: Owner before Line ID, Channel and Notes swapped, Feb moved to the end.
    order = [c.label for c in schema.input_columns]
    order.remove("Owner")
    order.insert(0, "Owner")
    a, b = order.index("Channel"), order.index("Notes")
    order[a], order[b] = order[b], order[a]
    feb = schema["m01"].label
    order.remove(feb)
    order.append(feb)
    book = openpyxl.load_workbook(original)
    plan = book["Plan"]
    by_label = {c.value: c.column for c in plan[1]}
    columns = {label: [plan.cell(r, by_label[label]).value for r in range(1, plan.max_row + 1)] for label in order}
    for i, label in enumerate(order, start=1):
        for r, value in enumerate(columns[label], start=1):
            plan.cell(r, i).value = value
    for i in range(len(order) + 1, plan.max_column + 1):
        for r in range(1, plan.max_row + 1):
            plan.cell(r, i).value = None  # the formula columns were deleted
    book.save(moved)

    before, after = read_plan(original, schema), read_plan(moved, schema)

    pd.testing.assert_frame_equal(after.table, before.table)
    channel_letter = get_column_letter(order.index("Channel") + 1)
    assert channel_letter != schema["channel"].letter
    assert found(after) == [(Rule.ALLOWED_VALUE, Severity.ERROR, f"Plan!{channel_letter}6")]
    assert found(before) == [(Rule.ALLOWED_VALUE, Severity.ERROR, cell(schema, "channel", 6))]
    assert after.letters["m01"] == get_column_letter(len(order))
    assert after.letters["owner"] == "A"


# --- the template's identity --------------------------------------------------------------------------


def test_a_template_of_another_organisation_is_refused(tmp_path: Path, config: OrgConfig, schema: PlanSchema) -> None:
    globex = build_schema(dataclasses.replace(config, org_id="globex", org_name="Globex Inc"))
    path = build_template(globex, "EMEA", tmp_path / "plan-EMEA.xlsx", lines=sample_lines(globex, "EMEA", 3))

    read = read_plan(path, schema)

    assert found(read) == [(Rule.TEMPLATE_FOREIGN, Severity.ERROR, "")]
    issue = read.issues[0]
    assert issue.file == "plan-EMEA.xlsx" and issue.cell is None
    assert "(plansheet.plan/globex) belongs to another organisation" in issue.message
    assert "use a Acme Corporation template (plansheet.plan/acme)" in issue.message
    assert len(read.table) == 3  # the lines are still read, so the planner sees everything at once


def test_a_template_made_before_the_channel_list_changed_is_stale(
    tmp_path: Path, config: OrgConfig, schema: PlanSchema
) -> None:
    older = build_schema(dataclasses.replace(config, channels=(*config.channels, "Podcasts")))
    assert older.version != schema.version
    path = build_template(older, "EMEA", tmp_path / "plan-EMEA.xlsx")
    fill(path, schema, {2: line(schema)})

    read = read_plan(path, schema)

    assert found(read) == [(Rule.TEMPLATE_STALE, Severity.ERROR, "")]
    message = read.issues[0].message
    assert f"version {older.version}" in message and f"current version is {schema.version}" in message
    assert "download a fresh template" in message


def test_a_template_of_another_region_than_expected(plan_path: Path, schema: PlanSchema) -> None:
    fill(plan_path, schema, {2: line(schema)})
    assert read_plan(plan_path, schema, expected_region="EMEA").issues == []

    read = read_plan(plan_path, schema, expected_region="NA")

    assert found(read) == [(Rule.TEMPLATE_REGION, Severity.ERROR, "")]
    assert "this is the EMEA template, but a plan for NA was expected" in read.issues[0].message


def test_last_years_template_is_reported_for_its_fiscal_year(
    tmp_path: Path, config: OrgConfig, schema: PlanSchema
) -> None:
    last_year = build_schema(dataclasses.replace(config, fiscal_year=config.fiscal_year - 1))
    path = build_template(last_year, "EMEA", tmp_path / "plan-EMEA.xlsx")

    read = read_plan(path, schema)

    whole_file = [i for i in read.issues if i.cell is None]
    assert [i.rule for i in whole_file] == [Rule.TEMPLATE_STALE, Rule.TEMPLATE_FISCAL_YEAR]
    assert f"this template is for FY{config.fiscal_year - 1}" in whole_file[1].message
    assert f"plans are being collected for FY{config.fiscal_year}" in whole_file[1].message
    # Last year's month headers are not this year's: each is reported where the planner can see it.
    header = [(i.rule, i.location) for i in read.issues if i.cell is not None]
    old_months, months = last_year.month_columns, schema.month_columns
    assert sorted(header) == sorted(
        [(Rule.COLUMN_UNKNOWN, f"Plan!{m.letter}1") for m in old_months]
        + [(Rule.COLUMN_MISSING, f"Plan!{m.letter}1") for m in months]
    )
    unknown = {i.message for i in read.issues if i.rule is Rule.COLUMN_UNKNOWN}
    assert f'Column "{old_months[0].label}" is not part of the template; its values were ignored' in unknown


def test_a_workbook_that_was_never_a_template_has_no_identity(tmp_path: Path, schema: PlanSchema) -> None:
    book = openpyxl.Workbook()
    plan = book.active
    plan.title = "Plan"
    plan.append([c.label for c in schema.input_columns])
    values = {"line_id": "X-1", "region": "EMEA", **line(schema)}
    plan.append([values.get(c.name) for c in schema.input_columns])
    book.save(tmp_path / "my-plan.xlsx")

    read = read_plan(tmp_path / "my-plan.xlsx", schema)

    assert found(read) == [(Rule.TEMPLATE_MISSING, Severity.ERROR, "")]
    assert "not a Plansheet template" in read.issues[0].message
    assert read.meta is None
    assert read.table["line_id"].tolist() == ["X-1"]


# --- how values arrive ------------------------------------------------------------------------------


def test_dates_as_serial_numbers_datetimes_and_text(plan_path: Path, schema: PlanSchema) -> None:
    serial_day, text_day, long_day = dt.date(2026, 3, 2), dt.date(2026, 4, 1), dt.date(2026, 4, 15)
    with_time = dt.datetime(2026, 3, 15, 14, 30)
    rows = {
        2: line(schema, start_date=(serial_day - EXCEL_EPOCH).days),
        3: line(schema, start_date=with_time),
        4: line(schema, start_date=text_day.isoformat()),
        5: line(schema, start_date="15 Apr 2026", end_date="2026/12/31"),
    }
    fill(plan_path, schema, rows)
    book = openpyxl.load_workbook(plan_path)
    book["Plan"][f"{schema['start_date'].letter}2"].number_format = "General"  # a pasted number, not a date
    book.save(plan_path)

    read = read_plan(plan_path, schema)

    starts = read.table["start_date"].tolist()
    assert starts == [pd.Timestamp(d) for d in (serial_day, with_time.date(), text_day, long_day)]
    assert read.table["end_date"].tolist()[-1] == pd.Timestamp(2026, 12, 31)
    # amounts before those starts are real findings (one per line, at its first such month); no date was misread
    assert {i.rule for i in read.issues} == {Rule.SPEND_OUTSIDE_DATES}
    assert [i.location for i in read.issues] == [cell(schema, "m01", r) for r in (2, 3, 4, 5)]
    assert "planned in Feb 2026, outside the line's dates 2026-03-02 to 2027-01-31" in read.issues[0].message
    assert "planned in 2 months (Feb 2026 to Mar 2026), outside the line's dates 2026-04-15" in read.issues[3].message


def test_spend_outside_a_lines_dates_is_one_warning_per_line(plan_path: Path, schema: PlanSchema) -> None:
    cal = schema.calendar
    rows = {
        2: line(schema, start_date=dt.date(2026, 3, 1), end_date=dt.date(2026, 3, 31), m12=400),  # Feb, Apr, Jan
        3: line(schema, start_date=None, end_date=dt.date(2026, 2, 28)),  # Mar and Apr after the end
        4: line(schema, start_date=dt.date(2026, 6, 1), end_date=dt.date(2026, 5, 1)),  # dates wrong already
        5: line(schema, start_date=cal.start, end_date=cal.end, m12=1),  # all inside
    }
    read = read_plan(fill(plan_path, schema, rows), schema)

    assert found(read) == [
        (Rule.SPEND_OUTSIDE_DATES, Severity.WARNING, cell(schema, "m01", 2)),
        (Rule.SPEND_OUTSIDE_DATES, Severity.WARNING, cell(schema, "m02", 3)),
        (Rule.END_BEFORE_START, Severity.ERROR, cell(schema, "end_date", 4)),
    ]
    assert (
        "3 months (Feb 2026 to Jan 2027), outside the line's dates 2026-03-01 to 2026-03-31" in read.issues[0].message
    )
    assert "2 months (Mar 2026 to Apr 2026), outside the line's dates … to 2026-02-28" in read.issues[1].message


def test_choices_are_matched_whatever_their_case_and_spacing(plan_path: Path, schema: PlanSchema) -> None:
    rows = {
        2: line(schema, channel="paid search", currency=" eur", status="in FLIGHT", business_unit="mid-market"),
        3: line(schema, channel="PAID  SOCIAL", region="emea"),
    }
    read = read_plan(fill(plan_path, schema, rows), schema)

    assert read.issues == []
    assert read.table["channel"].tolist() == ["Paid Search", "Paid Social"]
    assert read.table["currency"].tolist() == ["EUR", "EUR"]
    assert read.table["status"].tolist() == ["In flight", "Planned"]
    assert read.table["business_unit"].tolist() == ["Mid-Market", "Enterprise"]
    assert read.table["region"].tolist() == ["EMEA", "EMEA"]


def test_values_are_typed(plan_path: Path, schema: PlanSchema) -> None:
    rows = {2: line(schema, campaign_code=20271042, m01="€ 1,000", m02="(250.00)", leads="1,200")}
    read = read_plan(fill(plan_path, schema, rows), schema)

    table = read.table
    assert table["campaign_code"].tolist() == ["20271042"]  # a code typed as a number stays the code
    assert table["m01"].tolist() == [100000]
    assert table["m02"].tolist() == [-25000]  # accountants' brackets are a negative amount ...
    assert table["leads"].tolist() == [1200]
    assert [(i.rule, i.location) for i in read.issues] == [
        (Rule.NUMBER_AS_TEXT, cell(schema, "m01", 2)),
        (Rule.NUMBER_AS_TEXT, cell(schema, "m02", 2)),
        (Rule.NEGATIVE, cell(schema, "m02", 2)),  # ... which a plan may not hold
        (Rule.NUMBER_AS_TEXT, cell(schema, "leads", 2)),
    ]
    for name in ("team", "campaign", "channel", "notes"):
        assert all(isinstance(v, str) for v in table[name]), name


def test_cells_showing_an_error_from_a_host_grid_are_type_errors(schema: PlanSchema) -> None:
    """Google Sheets (formatted values) and JSON clients send an error cell as its text, e.g. "#DIV/0!"."""
    header = [c.label for c in schema.input_columns]
    values = {"line_id": "EMEA-0001", "region": "EMEA", **line(schema, m01="#DIV/0!", channel="#N/A")}
    read = plan_from_rows([header, [values.get(c.name) for c in schema.input_columns]], schema, region="EMEA")

    assert [(i.rule, i.location) for i in read.issues if i.rule is Rule.TYPE] == [
        (Rule.TYPE, cell(schema, "channel", 2)),
        (Rule.TYPE, cell(schema, "m01", 2)),
    ]
    messages = [i.message for i in read.issues if i.rule is Rule.TYPE]
    assert "Channel shows the error #N/A" in messages[0]
    assert messages[1] == 'Feb 2026 must be an amount, not "#DIV/0!" (it shows an error)'


def test_cells_showing_an_error_in_a_workbook_are_type_errors(plan_path: Path, schema: PlanSchema) -> None:
    fill(plan_path, schema, {2: line(schema)})
    book = openpyxl.load_workbook(plan_path)
    plan = book["Plan"]
    plan[f"{schema['m01'].letter}2"] = "#DIV/0!"  # how Excel stores a cell showing an error (t="e")
    plan[f"{schema['channel'].letter}2"] = "#N/A"
    assert plan[f"{schema['m01'].letter}2"].data_type == "e"
    book.save(plan_path)

    read = read_plan(plan_path, schema)

    assert [(i.rule, i.location) for i in read.issues if i.rule is Rule.TYPE] == [
        (Rule.TYPE, cell(schema, "channel", 2)),
        (Rule.TYPE, cell(schema, "m01", 2)),
    ]


# --- found in review: rounding, limits, missing columns, a misplaced header ---------------------------------------


def test_half_cents_round_away_from_zero_like_the_templates_round(plan_path: Path, schema: PlanSchema) -> None:
    fill(plan_path, schema, {2: line(schema, currency="USD", m01=150000.125, m02=0.125, leads=1234567.4)})
    read = read_plan(plan_path, schema)
    row = read.table.iloc[0]
    assert (row["m01"], row["m02"]) == (15000013, 13)  # ROUND(150000.125, 2) = 150000.13 in Excel and LibreOffice
    rounded = [i.location for i in read.issues if i.rule is Rule.ROUNDED]
    assert rounded == [cell(schema, "m01", 2), cell(schema, "m02", 2)]
    leads = [i for i in read.issues if i.location == cell(schema, "leads", 2)]
    assert [(i.rule, i.severity) for i in leads] == [(Rule.TYPE, Severity.ERROR)]
    assert "whole number" in leads[0].message


def test_an_absurd_amount_is_refused_not_summed(plan_path: Path, schema: PlanSchema) -> None:
    fill(plan_path, schema, {2: line(schema, m01=999_999_999_999_999)})
    read = read_plan(plan_path, schema)
    [issue] = [i for i in read.issues if i.rule is Rule.TYPE]
    assert issue.location == cell(schema, "m01", 2)
    assert "larger than Plansheet accepts" in issue.message
    assert not read.ok


def test_a_deleted_column_is_reported_once_not_on_every_line(plan_path: Path, schema: PlanSchema) -> None:
    fill(plan_path, schema, {r: line(schema) for r in range(2, 7)})
    book = openpyxl.load_workbook(plan_path)
    book["Plan"].delete_cols(schema["team"].index)
    book.save(plan_path)
    read = read_plan(plan_path, schema)
    assert [(i.rule, i.column) for i in read.errors] == [(Rule.COLUMN_MISSING, "team")]


def test_a_title_row_above_the_header_says_where_the_header_is(plan_path: Path, schema: PlanSchema) -> None:
    fill(plan_path, schema, {2: line(schema)})
    book = openpyxl.load_workbook(plan_path)
    book["Plan"].insert_rows(1, 2)
    book["Plan"]["A1"] = "EMEA plan FY2027"
    book.save(plan_path)
    read = read_plan(plan_path, schema)
    hints = [i for i in read.issues if "header row must be row 1" in i.message]
    assert [(h.location, h.rule) for h in hints] == [("Plan!A3", Rule.COLUMN_MISSING)]


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("Plan!$A$2:$A$301", (2, 301)),  # as the template writes it
        ("'Plan'!$A$2:$A$304", (2, 304)),  # as a spreadsheet app may save it after inserting rows
        ("=Plan!A2:A9", (2, 9)),
        ("Plan!#REF!", None),  # every row deleted: nothing left to check against
        ("Lists!$A$2:$A$5", None),
        ("", None),
    ],
)
def test_the_table_rows_come_from_the_ps_plan_rows_name(text: str, rows: tuple[int, int] | None) -> None:
    assert table_rows_from_names({"PS_PLAN_ROWS": text} if text else {}) == rows


def test_lines_inside_the_table_are_not_outside_it(plan_path: Path, schema: PlanSchema) -> None:
    fill(plan_path, schema, {2: line(schema), 301: line(schema, line_id="EMEA-0300")})
    read = read_plan(plan_path, schema)
    assert len(read.table) == 2
    assert not [i for i in read.issues if i.rule is Rule.OUTSIDE_TABLE]
    fill(plan_path, schema, {302: line(schema, line_id="EMEA-0301")})
    [issue] = [i for i in read_plan(plan_path, schema).issues if i.rule is Rule.OUTSIDE_TABLE]
    assert (issue.location, issue.severity) == ("Plan!A302", Severity.ERROR)
