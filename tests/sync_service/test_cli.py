"""The `plansheet` command line as a user runs it: what it prints, the files it writes and its exit codes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
import zipfile
from collections.abc import Callable
from pathlib import Path

import click
import openpyxl
import pytest

from sheet_templates import PlanSchema, build_schema, load_config
from sheet_templates.config import default_config_path
from sheet_templates.excel_template import build_template
from sheet_templates.samples import sample_lines
from sync_service import demo, demo_service
from sync_service.cli import cli, main
from tests.libreoffice import sheet_values

SCHEMA: PlanSchema = build_schema(load_config(default_config_path()))
N_LINES = 20
ISSUE_KEYS = {"rule", "severity", "sheet", "cell", "location", "message"}
BROKEN = ["truncated.xlsx", "export.xlsx", "empty.xlsx", "old.xlsx", "bitrot.xlsx", "cut-sheet.xlsx", "missing.xlsx"]


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """Run the command line in-process; nothing it prints may be a Python traceback."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def letter(name: str) -> str:
    return SCHEMA[name].letter


def rezip(package: bytes, part: str, change: Callable[[bytes], bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info.filename, change(data) if info.filename == part else data)
    return out.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A valid plan (with one warning), a plan with two errors, and files that are not plans at all."""
    folder = tmp_path_factory.mktemp("files")
    valid = build_template(SCHEMA, "EMEA", folder / "valid.xlsx", lines=sample_lines(SCHEMA, "EMEA", N_LINES, seed=1))
    book = openpyxl.load_workbook(valid)
    book["Plan"][f"{letter('committed')}4"] = "1,250.50"  # typed as text: read, with a warning
    book.save(valid)

    invalid = build_template(SCHEMA, "EMEA", folder / "invalid.xlsx", lines=sample_lines(SCHEMA, "EMEA", N_LINES))
    book = openpyxl.load_workbook(invalid)
    book["Plan"][f"{letter('channel')}3"] = "Billboards"
    book["Plan"][f"{letter('line_id')}7"] = book["Plan"][f"{letter('line_id')}2"].value
    book.save(invalid)

    good = valid.read_bytes()
    broken = {
        "truncated.xlsx": good[: len(good) // 2],  # a download cut off half-way
        "export.xlsx": b"Line ID,Region,Channel\r\nEMEA-0001,EMEA,Events\r\n",  # a CSV renamed to .xlsx
        "empty.xlsx": b"",
        "old.xlsx": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024),  # an Excel 97-2003 file
        "bitrot.xlsx": good[:3000] + bytes(b ^ 0xFF for b in good[3000:3300]) + good[3300:],
        "cut-sheet.xlsx": rezip(good, "xl/worksheets/sheet2.xml", lambda xml: xml[: len(xml) // 2]),
    }
    paths = {"valid": valid, "invalid": invalid}
    for name, data in broken.items():
        (folder / name).write_bytes(data)
        paths[name] = folder / name
    paths["missing.xlsx"] = folder / "missing.xlsx"
    assert set(BROKEN) == set(paths) - {"valid", "invalid"}
    return paths


# --- templates ------------------------------------------------------------------------------------------


def test_schema_json_lists_every_column_with_its_letter(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "templates", "schema", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["template_id"] == SCHEMA.template_id and info["template_version"] == SCHEMA.version
    assert info["fiscal_year"] == SCHEMA.calendar.year and info["sheet"] == "Plan" and info["header_row"] == 1
    assert [(c["name"], c["column"]) for c in info["columns"]] == [(c.name, c.letter) for c in SCHEMA.columns]
    by_name = {c["name"]: c for c in info["columns"]}
    assert by_name["m01"]["column"] == "O" and by_name["notes"]["column"] == "AG"
    assert by_name["m01"]["label"] == SCHEMA.calendar.months[0].label
    assert by_name["channel"]["allowed"] == list(SCHEMA.config.channels)
    assert by_name["owner"]["required"] is True and by_name["notes"]["required"] is False
    assert by_name["planned_total"]["input"] is False and by_name["planned_total"]["formula"].startswith("=SUM(")


def test_schema_as_text_shows_one_line_per_column(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "templates", "schema")
    assert code == 0
    lines = out.splitlines()
    assert SCHEMA.version in lines[0]
    assert len(lines) == 1 + len(SCHEMA.columns)
    for line, col in zip(lines[1:], SCHEMA.columns, strict=True):
        assert line.split()[:2] == [col.letter, col.name]


def test_templates_build_writes_one_template_per_region(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "templates", "build", "--out", tmp_path / "all")
    assert code == 0
    expected = {f"plan-{r}.xlsx" for r in SCHEMA.config.regions}
    assert {p.name for p in (tmp_path / "all").iterdir()} == expected
    assert {Path(line).name for line in out.splitlines()} == expected
    assert openpyxl.load_workbook(tmp_path / "all" / "plan-LATAM.xlsx")["Plan"]["B2"].value == "LATAM"


def test_templates_build_for_chosen_regions_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "templates", "build", "--out", tmp_path, "--region", "NA", "--region", "LATAM")
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan-LATAM.xlsx", "plan-NA.xlsx"]
    assert [Path(line).name for line in out.splitlines()] == ["plan-NA.xlsx", "plan-LATAM.xlsx"]


def test_templates_build_for_an_unknown_region_says_which_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "templates", "build", "--out", tmp_path / "t", "--region", "MARS")
    assert (code, out) == (2, "")
    assert err.strip() == "plansheet: unknown region MARS; the configured regions are NA, EMEA, APAC, LATAM"
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").iterdir())


# --- validate -------------------------------------------------------------------------------------------


def test_validate_a_valid_plan_exits_0_and_shows_its_warnings(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "validate", files["valid"])
    assert (code, err) == (0, "")
    first, *issues = out.splitlines()
    assert first == f"{files['valid']}: valid, {N_LINES} lines, 0 errors, 1 warning"
    assert len(issues) == 1
    assert issues[0].split()[:2] == [f"Plan!{letter('committed')}4", "warning"]
    assert '"1,250.50" is stored as text' in issues[0] and issues[0].endswith("[cell.number_as_text]")


def test_validate_a_plan_with_errors_exits_1_and_lists_them_by_cell(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "validate", files["invalid"])
    assert code == 1
    first, *issues = out.splitlines()
    assert first == f"{files['invalid']}: invalid, {N_LINES} lines, 2 errors, 0 warnings"
    assert [line.split()[:2] for line in issues] == [
        [f"Plan!{letter('channel')}3", "error"],
        [f"Plan!{letter('line_id')}7", "error"],
    ]
    assert 'Channel "Billboards" is not in the list' in issues[0] and issues[0].endswith("[cell.allowed_value]")
    assert "is used twice (also in row 2)" in issues[1] and issues[1].endswith("[line.duplicate_id]")


@pytest.mark.parametrize("name", BROKEN)
def test_a_file_that_cannot_be_read_exits_2_without_a_traceback(
    name: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "validate", files[name])
    assert (code, err) == (2, "")
    [line] = out.splitlines()
    assert line.startswith(f"{files[name]}: cannot be read: {files[name]} ")
    assert line.endswith(("[file.corrupt]", "[file.not_xlsx]", "[file.legacy_xls]"))


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["valid", "valid"], 0),
        (["valid", "invalid"], 1),
        (["invalid", "valid"], 1),
        (["valid", "invalid", "export.xlsx"], 2),
        (["export.xlsx", "invalid", "valid"], 2),  # a later plan with errors does not lower the code
        (["truncated.xlsx", "valid"], 2),
    ],
)
def test_validate_exit_code_is_the_worst_file(
    names: list[str], expected: int, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "validate", *(files[n] for n in names))
    assert code == expected
    reported = [line.split(": ")[0] for line in out.splitlines() if not line.startswith(" ")]
    assert reported == [str(files[n]) for n in names]  # every file is reported, in the order given


def test_validate_json_report(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", files["valid"], files["invalid"], files["export.xlsx"], "--json")
    assert code == 2
    report = json.loads(out)
    assert report["valid"] is False
    assert [set(f) for f in report["files"]] == [{"file", "status", "lines", "issues"}] * 3
    valid, invalid, export = report["files"]
    assert [(f["file"], f["status"], f["lines"]) for f in report["files"]] == [
        (str(files["valid"]), "valid", N_LINES),
        (str(files["invalid"]), "invalid", N_LINES),
        (str(files["export.xlsx"]), "unreadable", 0),
    ]
    for issue in (i for f in report["files"] for i in f["issues"]):
        assert set(issue) >= ISSUE_KEYS
        assert all(isinstance(issue[k], str) for k in ("rule", "severity", "location", "message"))
    assert [(i["rule"], i["severity"], i["sheet"], i["cell"], i["location"]) for i in invalid["issues"]] == [
        ("cell.allowed_value", "error", "Plan", f"{letter('channel')}3", f"Plan!{letter('channel')}3"),
        ("line.duplicate_id", "error", "Plan", f"{letter('line_id')}7", f"Plan!{letter('line_id')}7"),
    ]
    [csv] = export["issues"]
    assert [csv[k] for k in ("rule", "severity", "sheet", "cell", "location")] == [
        "file.not_xlsx",
        "error",
        None,
        None,
        "",
    ]
    assert "text or CSV file" in csv["message"]
    [warning] = valid["issues"]
    assert [warning[k] for k in ("rule", "severity", "location", "column")] == [
        "cell.number_as_text",
        "warning",
        f"Plan!{letter('committed')}4",
        "committed",
    ]


def test_validate_json_of_valid_files_says_valid(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--json", files["valid"])
    assert code == 0
    assert json.loads(out)["valid"] is True


def test_validate_json_row_numbers_are_numbers(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "validate", "--json", files["invalid"])
    assert [i["row"] for i in json.loads(out)["files"][0]["issues"]] == [3, 7]


def test_validate_for_another_region(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", files["valid"], "--region", "NA")
    assert code == 1
    assert "this is the EMEA template, but a plan for NA was expected [template.region]" in out
    assert run(capsys, "validate", files["valid"], "--region", "EMEA")[0] == 0


# --- consolidate and demo -----------------------------------------------------------------------------------


def test_consolidate_lists_the_rejected_files_and_exits_1(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    master = tmp_path / "master.xlsx"
    code, out, _ = run(
        capsys, "consolidate", files["valid"], files["invalid"], files["export.xlsx"], "--out", master, "--jobs", 1
    )
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(
        f"Master workbook of {SCHEMA.calendar.label}: {master} ({N_LINES} lines from 1 of 3 files"
    )
    assert lines[1] == "2 file(s) rejected; their lines are not in the master:"
    assert f"invalid.xlsx: rejected, {N_LINES} lines, 2 errors, 0 warnings" in lines
    assert any(line.startswith("export.xlsx: cannot be read:") and "[file.not_xlsx]" in line for line in lines)
    assert any(line.split()[:2] == [f"Plan!{letter('channel')}3", "error"] for line in lines)
    assert len(sheet_values(master, "Lines")) == N_LINES + 1


def test_consolidate_of_valid_plans_exits_0(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    master = tmp_path / "m.xlsx"
    code, out, _ = run(capsys, "consolidate", files["valid"], "--out", master, "--as-of", "2026-07-01")
    assert code == 0
    assert out.startswith(f"Master workbook of {SCHEMA.calendar.label}: {master} ({N_LINES} lines from 1 of 1 files")
    assert "rejected" not in out


def test_consolidate_takes_the_plans_of_the_year_it_is_told_and_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    following = SCHEMA.calendar.year + 1
    next_year = SCHEMA.for_year(following)
    plan = build_template(next_year, "EMEA", tmp_path / "next.xlsx", lines=sample_lines(next_year, "EMEA", N_LINES))
    code, out, _ = run(capsys, "--year", following, "consolidate", plan, "--out", tmp_path / "m.xlsx", "--jobs", 1)
    assert code == 0, out
    assert out.startswith(f"Master workbook of FY{following}: ")
    code, out, _ = run(capsys, "consolidate", plan, "--out", tmp_path / "this.xlsx", "--jobs", 1)
    assert code == 1 and f"this template is for FY{following}" in out and "[template.fiscal_year]" in out
    code, _, err = run(capsys, "--year", following + 3, "consolidate", plan, "--out", tmp_path / "x.xlsx")
    assert code != 0 and f"[years.{following + 3}]" in err


def test_consolidate_of_a_path_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "consolidate", tmp_path / "nowhere", "--out", tmp_path / "m.xlsx")
    assert (code, out) == (2, "")
    assert err.strip() == f"plansheet: {tmp_path / 'nowhere'} does not exist"
    assert not (tmp_path / "m.xlsx").exists()


def test_consolidate_in_which_every_file_is_rejected_exits_1(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "consolidate", files["invalid"], "--out", tmp_path / "m.xlsx", "--jobs", 1)
    assert (code, err) == (1, "")
    assert "1 file(s) rejected" in out


def amounts(text: str) -> list[float]:
    """The amounts of a printed table row ("1,234.50", "(25,000.00)", "$8.00") as numbers."""
    found = []
    for cell in text.split():
        negative = cell.startswith("(")
        cell = cell.strip("()$;,")
        if cell.replace(",", "").replace(".", "").isdigit():
            found.append(-float(cell.replace(",", "")) if negative else float(cell.replace(",", "")))
    return found


def table(text: str, header_end: str) -> list[str]:
    """The rows of a printed table: the indented lines after the header ending `header_end`, to the first other line."""
    rows = []
    for row in text.split(header_end + "\n", 1)[1].splitlines():
        if not row.startswith("  ") or not row.strip():
            break
        rows.append(row)
    return rows


def test_demo_builds_fills_and_consolidates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    as_of = SCHEMA.calendar.months[4].first_day + dt.timedelta(days=14)  # four months closed, the fifth under way
    closed = 4
    code, out, _ = run(capsys, "demo", "--out", tmp_path, "--no-serve", "--as-of", as_of)
    assert code == 0
    master = tmp_path / "master.xlsx"
    assert master.is_file()
    regions = SCHEMA.config.regions
    assert sorted(p.name for p in (tmp_path / "templates").iterdir()) == sorted(f"plan-{r}.xlsx" for r in regions)
    bad = f"plan-{demo.BAD_REGION}.xlsx"
    assert f"{bad} was rejected; what the marketer is told:" in out
    assert f"{len(regions) - 1} plans accepted, 1 rejected" in out
    # every mistake the demo made is shown to the marketer at its cell, and nothing else is
    made_part, told_part = out.split("Consolidated into")[0], out.split("what the marketer is told:")[1]
    made = {line.split(":")[0].strip() for line in made_part.splitlines() if line.startswith("  Plan!")}
    told = {line.split()[0] for line in told_part.split("\n\n")[0].splitlines() if line.startswith("  Plan!")}
    assert made and made <= told and len(told - made) == 1  # ... and the end date before the new start date
    assert len(sheet_values(master, "Lines")) == (len(regions) - 1) * demo.DEMO_LINES + 1

    # Then the service: the bad plan refused at its cells, corrected, every plan approved, actuals imported.
    service = out.split("The sync service:")[1]
    assert "-ENTERPRISE   refused (422)" in service and "corrected and sent again" in service
    with sqlite3.connect(tmp_path / "service.db") as db:
        # one approved plan per region's uploaded team, and one for the team planning in Google Sheets
        # ... and the reforecast one team made
        year = SCHEMA.calendar.year
        versions = dict(db.execute("SELECT fiscal_year, count(*) FROM master_versions GROUP BY fiscal_year").fetchall())
        # ... and next year's plan of each of those teams, planned while this year runs
        assert versions == {year: len(regions) + 2, year + 1: len(regions) + 1}
        approved = db.execute("SELECT count(*) FROM decisions WHERE action = 'approved'").fetchone()[0]
        assert approved == 2 * len(regions) + 3
        assert db.execute("SELECT count(*) FROM submissions WHERE cycle_id IS NOT NULL").fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM submissions WHERE source = 'gsheets'").fetchone()[0] == 1
        imported = db.execute("SELECT count(*) FROM actual_amounts").fetchone()[0]
        transfers = db.execute("SELECT from_region, from_quarter, to_region, to_quarter FROM transfers").fetchall()
        scenario = [json.loads(r[0]) for r in db.execute("SELECT lines FROM scenario_revisions ORDER BY number")]
    assert imported > 0 and "2 unmatched" in service
    # Next year planned beside this one, set against this year's plan, actual and estimate; this year closed.
    following = service.split(f"FY{year + 1} is planned while FY{year} runs")[1]
    rows = table(following, f"FY{year} estimate")
    assert sorted(row.split()[0] for row in rows) == sorted(regions)
    by_channel = table(following.split("by=channel")[1], f"FY{year} estimate")
    channels = SCHEMA["channel"].choices
    assert by_channel and all(any(row.strip().startswith(c) for c in channels) for row in by_channel), by_channel
    assert f"Finance closed FY{year}'s accruals (12 of 12 months)" in following
    first_day = SCHEMA.calendar.end + dt.timedelta(days=1)
    assert f"journal lines on {first_day:%b} {first_day.day}, {first_day.year} ({first_day:%b %Y} (FY{year + 1}))" in (
        following
    )
    # Results from the CRM: imported, the same file again changes nothing, and the cheapest pipeline named.
    crm = service.split("imported the CRM's campaign report")[1].split("Finance locked the master as the budget")[0]
    assert "Salesforce preset" in crm and "no plan line or campaign NOPLAN-01" in crm
    assert "the same file sent again: 200, unchanged" in crm
    per_one = {}
    for row in table(crm, "cost/lead")[:-1]:  # the last line names the cheapest
        channel = row.strip()[:12].strip()
        spend, pipeline, ratio, _, leads, per_lead = amounts(row.strip()[12:])
        assert ratio == pytest.approx(pipeline / spend, abs=0.006)  # the ratio is the row's own figures
        assert per_lead == pytest.approx(spend / leads, rel=0.01)
        per_one[channel] = ratio
    assert set(per_one) == set(SCHEMA.config.channels)  # the demo plans every channel
    cheapest = max(per_one, key=per_one.get)
    assert f"  {cheapest} buys pipeline cheapest: {per_one[cheapest]:,.2f} of pipeline" in crm
    # Leads are priced in the reporting currency: no region buys them at a fraction of another's cost.
    per_lead = {row.split()[0]: amounts(row)[-1] for row in table(crm.split("by=region")[1], "cost/lead")}
    assert set(per_lead) == set(regions)
    assert max(per_lead.values()) < 1.5 * min(per_lead.values()), per_lead
    # The budget locked, then budget moved out of an open quarter (never a closed one) by a transfer.
    budget = service.split("Finance locked the master as the budget")[1].split("GET /api/v1/rollup")[0]
    assert "waiting for finance" in budget and "finance approved it: allocation revision 1" in budget
    [(giving, source, receiving, target)] = transfers
    assert int(source[1]) * 3 > closed and (giving, source) != (receiving, target)  # a month of it is still open
    assert ((giving, source), (receiving, target)) == demo_service.transfer_cells(SCHEMA, "EMEA", closed)
    quarters = {}
    for row in table(budget, "allocation now"):
        region, quarter, fy, *cells = row.split()
        assert fy == f"FY{year}"
        quarters[region, quarter] = amounts(" ".join(cells))
    assert {q for _, q in quarters} == {"Q1", "Q2", "Q3", "Q4"}
    assert all(b == p for b, p, _, _ in quarters.values())  # nothing approved since the budget was locked
    moved = float(demo_service.TRANSFER)
    for key, (_, _, then, now) in quarters.items():
        assert now == pytest.approx(then - moved * (key == (giving, source)) + moved * (key == (receiving, target)))
    # Plans near their allocations: each region's plans take 85% to 105% of its allocation.
    shares = {row.split()[0]: float(row.split()[-1].rstrip("%")) for row in table(service, "allocation  share")}
    assert set(shares) == set(regions) and all(85 <= share <= 105 for share in shares.values()), shares
    # The reforecast: closed quarters' estimate is what was booked; the raised open month moves plan and estimate.
    reforecast = service.split("The reforecast: finance opened")[1]
    first, last = reforecast.split(": ")[1].split(" are closed")[0].split(" to ")
    labels = [m.label for m in SCHEMA.month_columns]
    assert labels.index(last) + 1 == closed
    assert first == labels[0] and "reforecast submission" in reforecast and "(cycle 1) approved" in reforecast
    rows = {}
    for row in table(reforecast.split("Budget against the latest estimate")[1], "actual"):
        quarter, fy, *cells = row.split()
        rows[quarter] = amounts(" ".join(cells))
    raised = f"Q{closed // 3 + 1}"  # the quarter of the first open month
    for q, (budget_, plan, estimate, actual) in rows.items():
        if int(q[1]) * 3 <= closed:
            assert estimate == actual, q  # every month of it is closed
        assert (plan != budget_) == (q == raised), q
    assert "the master untouched until it is promoted" in reforecast
    # The what-if changes the open months only: the closed ones keep what was booked.
    assert f"in the open months ({labels[closed]} to {labels[-1]})" in reforecast
    origin, changed = ({line["line_id"]: line for line in lines} for lines in scenario)
    closed_keys = [m.name for m in SCHEMA.month_columns[:closed]]
    assert all(changed[i][m] == origin[i][m] for i in origin for m in closed_keys)
    assert any(changed[i] != origin[i] for i in origin)
    # Month-end close: POs and invoices imported (again: nothing new), the accrual's journal, the month closed.
    spend = service.split("/purchase-orders.csv: ")[1].split("The reforecast")[0]
    assert "1 unmatched" in spend and "PO PO-9001 names no plan line (XX-0001)" in spend
    assert "the same file sent again: 200, 0 new" in spend and "1 unmatched, " in spend.split("invoices.csv: ")[1]
    with (tmp_path / f"accrual-{SCHEMA.calendar.months[0].name}.csv").open(newline="") as fh:
        journal = list(csv.DictReader(fh))
    rates = SCHEMA.config.plan_rates  # each PO's accrual is in its currency; the total in the reporting one
    debits = sum(
        float(r["Debit"] or 0) * float(rates[r["Currency"]]) for r in journal if not r["Journal"].endswith("-REV")
    )
    accrued = amounts(spend.split("accrual: ")[1].split(" PO(s), ")[1].split()[0])[0]
    assert journal and debits == pytest.approx(accrued, abs=0.005 * len(journal))
    variance = service.split("GET /api/v1/variance")[1]
    assert all(f"\n  {region} " in variance for region in regions)
    google_team = f"{regions[0]}-{SCHEMA.config.business_units[-1].replace('-', '').upper()}"
    assert json.loads((tmp_path / "tokens.json").read_text()).keys() == {*regions, "finance", google_team}
    # And a team planning in Google Sheets (the local fake): created, pulled, approved, master pushed and read back.
    google = out.split("Google Sheets, against a local fake")[1]
    assert f"finance created {google_team}'s plan sheet" in google and "pulled in one API call" in google
    pushed = google.split("read back: ")[1]
    assert pushed.split(" lines")[0] == pushed.split("master (")[1].split(")")[0]


def test_consolidate_into_a_folder_that_cannot_be_written_says_so(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "consolidate", files["valid"], "--out", tmp_path)  # a folder, not a file
    assert code == 2
    assert str(tmp_path) in err and "internal error" not in err


def test_the_master_is_readable_by_colleagues(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "master.xlsx"
    code, _, _ = run(capsys, "consolidate", files["valid"], "--out", out)
    assert code == 0
    assert out.stat().st_mode & 0o044 == 0o044  # group and others may read it, as any file saved there
    assert [p.name for p in tmp_path.iterdir()] == ["master.xlsx"]  # no temporary file left behind


# --- help and usage -------------------------------------------------------------------------------------------


def every_command(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += every_command(command, (*path, name))
        else:
            found.append((*path, name))
    return found


@pytest.mark.parametrize("path", every_command(), ids=lambda p: " ".join(p) or "plansheet")
def test_every_command_and_group_has_help_with_a_one_line_description(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *path, "--help")
    assert (code, err) == (0, "")
    assert out.startswith(f"Usage: plansheet {' '.join(path)}".rstrip())
    description = out.split("\n\n")[1].strip()
    assert description and "\n" not in description and description.endswith(".")


def test_a_group_without_its_action_shows_its_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "templates")
    assert (code, out) == (2, "")
    assert "Usage: plansheet templates" in err and "build" in err and "schema" in err


def test_a_usage_error_exits_2_and_says_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "consolidate", "plans/", "--out", "m.xlsx", "--as-of", "1 July")
    assert (code, out) == (2, "")
    assert "Invalid value for '--as-of'" in err
    code, _, err = run(capsys, "validate")
    assert code == 2 and "Missing argument 'FILE...'" in err
    code, _, err = run(capsys, "token", "create", "--name", "x", "--role", "owner")
    assert code == 2 and "'owner' is not one of 'marketer', 'finance', 'admin'" in err
