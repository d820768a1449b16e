"""Consolidation as finance sees it: which plans went in, and the master workbook's numbers to the cent.

Four regional sample plans, a plan with mistakes and a CSV export renamed to .xlsx are
consolidated serially and in parallel. The master workbook is read back with openpyxl and
python-calamine and compared with the source lines (the values typed into the plans) and with
`addin.rollup.rollup`; LibreOffice recalculates the master and a filled template.
"""

from __future__ import annotations

import datetime as dt
import zipfile
import zlib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from addin.consolidate import ACCEPTED, REJECTED, UNREADABLE, Consolidation, consolidate, process_file
from addin.issues import Rule
from addin.reader import read_plan
from addin.rollup import rollup
from sheet_templates import PlanSchema, build_schema, load_config
from sheet_templates.config import QUARTERS, default_config_path
from sheet_templates.excel_template import build_template
from sheet_templates.master_workbook import LINES_SHEET, SHEETS, MasterContent, lines_segment, write_master
from sheet_templates.samples import sample_lines
from sheet_templates.schema import ColumnType
from sheet_templates.xlsx_stream import crc32_combine, deflate_segment, xml_text
from tests.libreoffice import cached_differences, formula_count, formula_problems, recalculate_many, sheet_values

SCHEMA: PlanSchema = build_schema(load_config(default_config_path()))
RATES = SCHEMA.config.plan_rates
AS_OF = dt.date(2026, 7, 1)
LINES_PER_PLAN = {"NA": 30, "EMEA": 25, "APAC": 20, "LATAM": 22}
BAD_PLAN, CSV_EXPORT = "plan-EMEA-v2.xlsx", "plan-APAC-export.xlsx"


def cents(value: Any) -> int:
    return 0 if value is None else int(Decimal(str(value)) * 100)


def half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def letter(name: str) -> str:
    return SCHEMA[name].letter


@dataclass
class Plans:
    folder: Path
    sources: dict[str, list[dict[str, Any]]]  # accepted file name -> the lines typed into it
    bad_cells: dict[str, Rule]  # Plan!cell -> rule, in the plan with mistakes


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> Plans:
    folder = tmp_path_factory.mktemp("plans")
    sources = {}
    for seed, (region, n) in enumerate(LINES_PER_PLAN.items()):
        lines = sample_lines(SCHEMA, region, n, seed=seed, today=AS_OF)
        build_template(SCHEMA, region, folder / f"plan-{region}.xlsx", lines=lines)
        sources[f"plan-{region}.xlsx"] = lines
    # A second EMEA plan, filled in a hurry; none of its lines may reach the master.
    path = build_template(SCHEMA, "EMEA", folder / BAD_PLAN, lines=sample_lines(SCHEMA, "EMEA", 12, id_prefix="EMX"))
    book = openpyxl.load_workbook(path)
    plan = book["Plan"]
    plan[f"{letter('channel')}4"] = "Billboards"
    plan[f"{letter('m03')}5"] = -1500
    plan[f"{letter('notes')}6"] = '=HYPERLINK("http://example.invalid","x")'
    plan[f"{letter('notes')}6"].data_type = "s"
    book.save(path)
    bad_cells = {
        f"Plan!{letter('channel')}4": Rule.ALLOWED_VALUE,
        f"Plan!{letter('m03')}5": Rule.NEGATIVE,
        f"Plan!{letter('notes')}6": Rule.FORMULA_TEXT,
    }
    # What a marketer sends after "Save as CSV" and renaming the file back.
    (folder / CSV_EXPORT).write_text("Line ID,Region,Channel\nAPAC-0001,APAC,Events\n", encoding="utf-8")
    return Plans(folder, sources, bad_cells)


@pytest.fixture(scope="module", params=[1, 2], ids=["jobs=1", "jobs=2"])
def consolidated(request: pytest.FixtureRequest, plans: Plans, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("out") / f"master-{request.param}.xlsx"
    return consolidate([plans.folder], SCHEMA, out, jobs=request.param, as_of=AS_OF)


def accepted_table(plans: Plans) -> pd.DataFrame:
    """The accepted plans' lines, read again on their own, the way finance would check them."""
    return pd.concat([read_plan(plans.folder / name, SCHEMA).table for name in sorted(plans.sources)])


# --- which plans went in ----------------------------------------------------------------------------


def test_rejected_and_unreadable_files_are_reported_and_left_out_whole(
    consolidated: Consolidation, plans: Plans
) -> None:
    status = {f.file: f.status for f in consolidated.files}
    assert status == {**dict.fromkeys(plans.sources, ACCEPTED), BAD_PLAN: REJECTED, CSV_EXPORT: UNREADABLE}
    assert [f.file for f in consolidated.files] == sorted(status)  # the order of the folder, even in parallel
    assert {f.file for f in consolidated.rejected} == {BAD_PLAN, CSV_EXPORT}

    bad = next(f for f in consolidated.files if f.file == BAD_PLAN)
    assert {i.location: i.rule for i in bad.issues if i.severity == "error"} == plans.bad_cells
    assert all(i.file == BAD_PLAN for i in bad.issues)
    [csv] = next(f for f in consolidated.files if f.file == CSV_EXPORT).issues
    assert csv.rule is Rule.NOT_XLSX
    assert "text or CSV file, not an Excel workbook" in csv.message

    ids = consolidated.table["line_id"].tolist()
    assert not any(i.startswith("EMX-") for i in ids)
    assert sorted(ids) == sorted(ln["line_id"] for lines in plans.sources.values() for ln in lines)
    assert {f.file: f.lines for f in consolidated.files if f.status == ACCEPTED} == {
        name: len(lines) for name, lines in plans.sources.items()
    }


def test_the_master_opens_in_openpyxl_and_calamine_and_is_a_sound_zip(consolidated: Consolidation) -> None:
    with zipfile.ZipFile(consolidated.out) as package:
        assert package.testzip() is None  # every part inflates and matches its CRC-32, the spliced sheet too
        assert "xl/worksheets/sheet2.xml" in package.namelist()
    book = openpyxl.load_workbook(consolidated.out)
    assert book.sheetnames == list(SHEETS)
    calamine = CalamineWorkbook.from_path(str(consolidated.out))
    assert calamine.sheet_names == list(SHEETS)
    assert book[LINES_SHEET].max_row == len(consolidated.table) + 1
    assert len(calamine.get_sheet_by_name(LINES_SHEET).to_python()) == len(consolidated.table) + 1


def test_every_sheet_of_the_master_prints_landscape_one_page_wide_with_a_footer(consolidated: Consolidation) -> None:
    book = openpyxl.load_workbook(consolidated.out)
    for sheet in book.worksheets:
        if sheet.title == "Chart":
            continue  # a chart sheet prints as one page of its own
        setup = sheet.page_setup
        width = 1 if setup.fitToWidth is None else setup.fitToWidth  # 1 is the file format's default
        assert (setup.orientation, width, setup.fitToHeight) == ("landscape", 1, 0), sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title
        assert (sheet.oddFooter.left.text, sheet.oddFooter.right.text) == ("&A", "Page &P of &N"), sheet.title
        assert SCHEMA.calendar.label in sheet.oddFooter.center.text, sheet.title
    assert book[LINES_SHEET].print_title_rows == "$1:$1"  # the column headers on every printed page


def test_the_lines_sheet_holds_exactly_the_accepted_lines_to_the_cent(
    consolidated: Consolidation, plans: Plans
) -> None:
    rows = sheet_values(consolidated.out, LINES_SHEET)
    header, body = rows[0], rows[1:]
    assert header[:2] == ["Source file", "Source row"]
    assert header[2 : 2 + len(SCHEMA.input_columns)] == [c.label for c in SCHEMA.input_columns]
    assert header[-5:] == ["Planned total", *(f"{q} planned (USD)" for q in QUARTERS)]
    expected = {
        (name, ln["line_id"]): (i + 2, ln) for name, lines in plans.sources.items() for i, ln in enumerate(lines)
    }
    assert len(body) == len(expected)
    seen = set()
    for row in body:
        values = dict(zip(header, row, strict=True))
        key = (values["Source file"], values["Line ID"])
        source_row, line = expected[key]
        seen.add(key)
        assert values["Source row"] == source_row
        for col in SCHEMA.input_columns:
            got = values[col.label]
            if col.type is ColumnType.MONEY:
                assert round(got * 100) == cents(line[col.name]), (key, col.name)
            elif col.type in (ColumnType.COUNT, ColumnType.DATE):
                assert got == line[col.name], (key, col.name)
            else:
                assert got == (line[col.name] or ""), (key, col.name)
        months = [cents(line[m.name]) for m in SCHEMA.month_columns]
        assert round(values["Planned total"] * 100) == sum(months)
        rate = RATES[line["currency"]]
        for q, quarter in enumerate(QUARTERS):
            in_usd = sum(half_up(Decimal(m) * rate) for m in months[3 * q : 3 * q + 3])  # per month, then summed
            assert round(values[f"{quarter} planned (USD)"] * 100) == in_usd, (key, quarter)
    assert seen == set(expected)


def test_the_rollup_sheet_equals_the_python_rollup_of_the_same_lines(consolidated: Consolidation, plans: Plans) -> None:
    long = rollup(accepted_table(plans), SCHEMA, by=["region", "channel"], period="quarter")
    expected = long.pivot_table(index=["region", "channel"], columns="period", values="cents", aggfunc="sum")

    rows = sheet_values(consolidated.out, "Rollup")
    assert rows[2] == ["Region", "Channel", *QUARTERS, "Total"]
    body = [r for r in rows[3:] if r[0] and r[0] != "Total"]
    got = {(r[0], r[1]): [round(v * 100) for v in r[2:7]] for r in body}
    want = {key: [int(v) for v in expected.loc[key, list(QUARTERS)]] for key in expected.index}
    assert got == {key: [*v, sum(v)] for key, v in want.items()}
    total = next(r for r in rows if r[0] == "Total")
    assert [round(v * 100) for v in total[2:7]] == [
        *(int(long.loc[long["period"] == q, "cents"].sum()) for q in QUARTERS),
        int(long["cents"].sum()),
    ]
    assert int(long["cents"].sum()) > 0


def test_the_summary_and_issues_sheets_tell_finance_what_was_left_out(
    consolidated: Consolidation, plans: Plans
) -> None:
    summary = sheet_values(consolidated.out, "Summary")
    head = summary.index(["File", "Status", "Lines", "Errors", "Warnings"])
    files = {r[0]: r[1:] for r in summary[head + 1 :] if r[0]}
    assert files[BAD_PLAN][:1] == [REJECTED] and files[BAD_PLAN][2] == len(plans.bad_cells)
    assert files[CSV_EXPORT][:3] == [UNREADABLE, 0, 1]
    for name, lines in plans.sources.items():
        assert files[name] == [ACCEPTED, len(lines), 0, 0]

    issues = sheet_values(consolidated.out, "Issues")
    assert issues[0] == ["File", "Severity", "Rule", "Location", "Message"]
    listed = {(r[0], r[2], r[3]) for r in issues[1:]}
    assert {(BAD_PLAN, str(rule), where) for where, rule in plans.bad_cells.items()} <= listed
    assert (CSV_EXPORT, "file.not_xlsx", "") in listed


def test_a_consolidation_in_which_every_plan_is_rejected_still_reports(plans: Plans, tmp_path: Path) -> None:
    folder = tmp_path / "plans"
    folder.mkdir()
    for name in (BAD_PLAN, CSV_EXPORT):
        (folder / name).write_bytes((plans.folder / name).read_bytes())

    result = consolidate([folder], SCHEMA, tmp_path / "master.xlsx", jobs=1, as_of=AS_OF)

    assert {f.file: f.status for f in result.files} == {BAD_PLAN: REJECTED, CSV_EXPORT: UNREADABLE}
    assert len(result.table) == 0
    assert len(sheet_values(result.out, LINES_SHEET)) == 1
    assert {r[0] for r in sheet_values(result.out, "Issues")[1:]} == {BAD_PLAN, CSV_EXPORT}


# --- the streamed Lines sheet ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(first=st.binary(max_size=3000), second=st.binary(max_size=3000))
def test_crc32_combine_is_the_crc_of_the_concatenation(first: bytes, second: bytes) -> None:
    assert crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) == zlib.crc32(first + second)


@settings(max_examples=50, deadline=None)
@given(parts=st.lists(st.text(max_size=400).map(str.encode), min_size=1, max_size=6))
def test_deflate_segments_concatenate_into_one_stream(parts: list[bytes]) -> None:
    segments = [deflate_segment(p) for p in parts]
    last = zlib.compressobj(1, zlib.DEFLATED, -15)
    data = b"".join(s.data for s in segments) + last.compress(b"</end>") + last.flush()
    assert zlib.decompress(data, -15) == b"".join(parts) + b"</end>"
    crc = segments[0].crc
    for seg in segments[1:]:
        crc = crc32_combine(crc, seg.crc, seg.size)
    assert crc == zlib.crc32(b"".join(parts))


def test_xml_text_escapes_what_xml_cannot_hold() -> None:
    assert xml_text('R&D <"team"> ') == 'R&amp;D &lt;"team"&gt; '
    assert xml_text("tab\there\x01") == "tab\there_x0001_"
    assert xml_text("_x0041_") == "_x005F_x0041_"  # a literal escape-like text stays literal


def test_text_that_looks_like_a_formula_is_a_text_cell_in_the_master(plans: Plans, tmp_path: Path) -> None:
    """Whatever reaches the master (a note sent through another channel, a file name) is text, never run."""
    outcome = process_file(plans.folder / "plan-NA.xlsx", "=cmd|' /C calc'!A0.xlsx", SCHEMA)
    assert outcome.status == ACCEPTED
    table = outcome.table.copy()
    table.loc[0, "notes"] = '=HYPERLINK("http://example.invalid","click")'
    table.loc[1, "campaign"] = "+44 20 7946 0000"
    table.loc[2, "notes"] = "@SUM(1,2)"
    empty = pd.DataFrame({"region": [], "channel": [], **{q: [] for q in QUARTERS}})
    content = MasterContent(
        schema=SCHEMA,
        segments=[lines_segment(table, SCHEMA)],
        rollup=empty,
        by_region=pd.DataFrame(
            {"region": ["NA"], **{q: [0] for q in QUARTERS}, "planned_to_date": [0], "committed": [0], "actual": [0]}
        ),
        files=[{"file": "=1+1.xlsx", "status": ACCEPTED, "lines": len(table), "errors": 0, "warnings": 0}],
        issues=[{"file": "=2+2", "severity": "warning", "rule": "x", "location": "=A1", "message": "=3+3"}],
        as_of=AS_OF,
    )
    out = write_master(tmp_path / "master.xlsx", content)

    book = openpyxl.load_workbook(out)
    lines = book[LINES_SHEET]
    header = [c.value for c in lines[1]]
    notes, campaign = header.index("Notes") + 1, header.index("Campaign") + 1
    for row, col, text in (
        (2, notes, '=HYPERLINK("http://example.invalid","click")'),
        (3, campaign, "+44 20 7946 0000"),
        (4, notes, "@SUM(1,2)"),
        (2, 1, "=cmd|' /C calc'!A0.xlsx"),
    ):
        assert (lines.cell(row, col).value, lines.cell(row, col).data_type) == (text, "s")
    assert sheet_values(out, LINES_SHEET)[1][notes - 1] == '=HYPERLINK("http://example.invalid","click")'
    summary_file = book["Summary"]["A5"]
    assert (summary_file.value, summary_file.data_type) == ("=1+1.xlsx", "s")
    assert [(c.value, c.data_type) for c in book["Issues"][2]] == [
        ("=2+2", "s"),
        ("warning", "s"),
        ("x", "s"),
        ("=A1", "s"),
        ("=3+3", "s"),
    ]
    assert not [c.coordinate for row in lines.iter_rows() for c in row if c.data_type == "f"]


# --- LibreOffice ------------------------------------------------------------------------------------------


def marketer_lines() -> dict[int, dict[str, Any]]:
    """Lines typed into an EMEA template, by sheet row: several currencies, half-cent conversions, blank rows."""
    base = {"business_unit": "Enterprise", "team": "Field Marketing", "owner": "kim@example.com", "status": "Planned"}
    return {
        2: base | {"campaign": "Data Week", "channel": "Events", "currency": "EUR", "m01": 10000, "m02": 2500.5,
                   "m05": 1234.56, "m12": 999.99},
        3: base | {"campaign": "Search", "channel": "paid search", "currency": "GBP", "m01": 1000.5, "m04": 333.33,
                   "m05": 333.33, "m06": 333.33},  # GBP 1,000.50 x 1.27 = 1,270.635: half a cent
        5: base | {"campaign": "Booth", "channel": "Events", "currency": "usd", "m07": 5000, "m10": 100.1},
        6: base | {"campaign": "Webinar", "channel": "Webinars", "currency": "JPY", "m03": 1500000, "m11": 123457},
        9: base | {"campaign": "Nurture", "channel": "Email", "currency": "BRL", "m09": 0.05, "m12": 12345.67},
        10: base | {"campaign": "LinkedIn", "channel": "Paid Social", "currency": "EUR", "m02": 0.5, "m03": 0.5,
                    "m04": 0.05},  # EUR 1.00 x 1.08 and 0.05 x 1.08 = 0.054
    }  # fmt: skip


@pytest.fixture(scope="module")
def recalculated(plans: Plans, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The master (consolidated serially) and a filled template, recalculated by one LibreOffice run."""
    work = tmp_path_factory.mktemp("lo")
    master = consolidate([plans.folder], SCHEMA, work / "master.xlsx", jobs=1, as_of=AS_OF).out
    template = build_template(SCHEMA, "EMEA", work / "plan-EMEA.xlsx")
    book = openpyxl.load_workbook(template)
    plan = book["Plan"]
    where = {c.value: c.column for c in plan[1]}
    for row, values in marketer_lines().items():
        for name, value in values.items():
            plan.cell(row, where[SCHEMA[name].label], value)
    book.save(template)
    out_master, out_template = recalculate_many([master, template], work / "recalculated")
    return {"master": out_master, "template": out_template, "filled": template, "written": master}


@pytest.mark.libreoffice
def test_every_formula_of_the_master_is_written_with_the_value_libreoffice_computes(
    recalculated: dict[str, Path],
) -> None:
    assert formula_count(recalculated["written"]) > 50
    assert cached_differences(recalculated["written"], recalculated["master"]) == []


@pytest.mark.libreoffice
def test_libreoffice_recalculates_the_master_without_errors(recalculated: dict[str, Path], plans: Plans) -> None:
    path = recalculated["master"]
    assert formula_problems(path) == []
    n = sum(len(lines) for lines in plans.sources.values())
    assert len(sheet_values(path, LINES_SHEET)) == n + 1
    rows = sheet_values(path, "Rollup")
    long = rollup(accepted_table(plans), SCHEMA, by=["region", "channel"], period="quarter")
    total = next(r for r in rows if r[0] == "Total")
    assert round(total[6] * 100) == int(long["cents"].sum())  # LibreOffice's own SUM of the rollup
    for r in rows[3:]:
        if r[0] and r[0] != "Total":
            assert round(r[6] * 100) == sum(round(v * 100) for v in r[2:6])


@pytest.mark.libreoffice
def test_template_summary_recalculated_by_libreoffice_equals_the_python_rollup(
    recalculated: dict[str, Path],
) -> None:
    read = read_plan(recalculated["filled"], SCHEMA, expected_region="EMEA")
    assert read.ok and len(read.table) == len(marketer_lines())
    assert "Paid Search" in set(read.table["channel"])  # typed "paid search"
    long = rollup(read.table, SCHEMA, by=["channel"], period="quarter")
    python = {(r.channel, r.period): int(r.cents) for r in long.itertuples()}

    summary = {r[0]: r[1:6] for r in sheet_values(recalculated["template"], "Summary") if r and r[0]}
    assert formula_problems(recalculated["template"]) == []
    for channel in SCHEMA.config.channels:
        spreadsheet = [round(v * 100) for v in summary[channel][:4]]
        assert spreadsheet == [python.get((channel, q), 0) for q in QUARTERS], channel
    assert [round(v * 100) for v in summary["Total planned"][:4]] == [
        sum(c for (_, q), c in python.items() if q == quarter) for quarter in QUARTERS
    ]
    # hand-checked: GBP 1,000.50 x 1.27 = 1,270.635, which both round to 1,270.64
    assert python[("Paid Search", "Q1")] == 127064
    assert python[("Paid Social", "Q1")] == 108  # EUR 0.50 + 0.50 = 1.00 x 1.08
    assert python[("Paid Social", "Q2")] == 5  # EUR 0.05 x 1.08 = 0.054


# --- found in review: a plan sent twice, re-runs into the inbox, every region in Variance -------------------------


def test_the_same_plan_in_two_files_is_counted_once(plans: Plans, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    original = plans.folder / "plan-EMEA.xlsx"
    (inbox / "plan-EMEA.xlsx").write_bytes(original.read_bytes())
    (inbox / "plan-EMEA (1).xlsx").write_bytes(original.read_bytes())  # the same attachment saved twice

    result = consolidate([inbox], SCHEMA, inbox / "master.xlsx", jobs=1, as_of=AS_OF)

    statuses = {f.file: f.status for f in result.files}
    assert statuses == {"plan-EMEA (1).xlsx": ACCEPTED, "plan-EMEA.xlsx": REJECTED}  # name order: "(1)" first
    assert len(result.table) == len(plans.sources["plan-EMEA.xlsx"])
    [rejected] = result.rejected
    assert {i.rule for i in rejected.errors} == {Rule.DUPLICATE_ID}
    assert "plan-EMEA (1).xlsx" in rejected.errors[0].message
    assert rejected.errors[0].location == f"Plan!{letter('line_id')}2"

    again = consolidate([inbox], SCHEMA, inbox / "master.xlsx", jobs=1, as_of=AS_OF)  # the master is not a plan
    assert sorted(f.file for f in again.files) == ["plan-EMEA (1).xlsx", "plan-EMEA.xlsx"]

    # Regions without an accepted plan still show their allocation in the Variance sheet.
    rows = sheet_values(again.out, "Variance")
    regions = {r[0]: r for r in rows[3:] if r and r[0]}
    assert set(SCHEMA.config.regions) | {"Total"} == set(regions)
    assert regions["NA"][19] == "no accepted plan"
    assert regions["NA"][9] == float(sum(SCHEMA.config.allocations["NA"].values()))
    assert regions["EMEA"][19] == len(plans.sources["plan-EMEA.xlsx"])
