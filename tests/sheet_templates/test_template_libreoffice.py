"""The templates as a user sees them: filled in, opened in a real spreadsheet app, recalculated.

The expected numbers are computed here, by hand, from the values written and the plan rates
in the configuration, never by reading the template's own formulas.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from sheet_templates import OrgConfig, PlanSchema, build_schema, load_config
from sheet_templates.config import QUARTERS, default_config_path
from sheet_templates.excel_template import build_template, build_templates
from tests.libreoffice import LibreOfficeError, formula_problems, recalculate, recalculate_many, sheet_values
from tests.system_deps import require_binary

SCHEMA: PlanSchema = build_schema(load_config(default_config_path()))  # the bundled sample organisation
CENT = Decimal("0.01")
NO_CHANNEL = "No listed channel"


@dataclass
class Line:
    """One plan line as a marketer types it (amounts in the line's currency)."""

    channel: str | None
    currency: str | None
    months: dict[int, Decimal]  # fiscal month 1..12 -> amount in the line's currency
    actual: Decimal = Decimal(0)
    extra: dict[str, Any] = field(default_factory=dict)


def marketer_lines(scale: int) -> list[Line]:
    """A realistic mix: several currencies, a half-cent conversion, a line without channel or currency."""
    s = Decimal(scale)
    return [
        Line("Events", "EUR", {1: 10_000 * s, 2: Decimal("2500.50") * s, 5: Decimal("1234.56"), 12: Decimal("999.99")},
             actual=Decimal(3000), extra={"Campaign": "Spring summit", "Start date": dt.date(2026, 2, 10)}),
        # GBP 1000.50 x 1.27 = 1270.635: a half cent, which a spreadsheet rounds up to 1270.64.
        Line("Paid Search", "GBP", {1: Decimal("1000.50"), 4: Decimal("333.33"), 5: Decimal("333.33"),
                                    6: Decimal("333.33") * s}, actual=Decimal(20_000)),  # over-spent
        Line("Events", "USD", {7: 5000 * s, 10: Decimal("100.10")}, extra={"Notes": "Booth + travel"}),
        Line(None, "EUR", {2: 100 * s}),  # no channel chosen yet
        Line("Webinars", "JPY", {3: 1_500_000 * s, 11: Decimal(123_457)}),
        Line("Email", None, {1: Decimal(500)}),  # no currency: no plan rate, so nothing in the reporting currency
        Line("Content", "BRL", {9: Decimal("0.05"), 12: Decimal("12345.67")}, actual=Decimal("12345.67")),
    ]  # fmt: skip


def fill_like_a_marketer(path: Path, lines: list[Line]) -> None:
    """Open the template, type the lines into the Plan sheet under the right headers, save."""
    book = openpyxl.load_workbook(path)
    plan = book["Plan"]
    column = {cell.value: cell.column for cell in plan[1]}
    for row, line in enumerate(lines, start=2):
        values = {"Business unit": "Enterprise", "Team": "Demand", "Campaign": f"Campaign {row}", "Owner": "Kim"}
        values |= {"Channel": line.channel, "Currency": line.currency, "Status": "Planned", "Actual spend": line.actual}
        values |= line.extra
        for label, value in values.items():
            plan.cell(row, column[label], value)
        for month, amount in line.months.items():
            plan.cell(row, column[plan_month_label(month)], amount)
    book.save(path)


def plan_month_label(month: int) -> str:
    return SCHEMA.calendar.months[month - 1].label


def quarter_in_reporting(config: OrgConfig, line: Line, quarter: int) -> Decimal:
    rate = config.plan_rates.get(line.currency or "")
    if rate is None:
        return Decimal(0)
    # The money grain: each month converted and rounded to the cent, then summed.
    months = (a for m, a in line.months.items() if (m - 1) // 3 + 1 == quarter)
    return sum(((a * rate).quantize(CENT, rounding=ROUND_HALF_UP) for a in months), Decimal(0))


def assert_money(actual: Any, expected: Decimal, where: str) -> None:
    assert isinstance(actual, int | float), f"{where}: {actual!r} is not a number"
    assert abs(Decimal(repr(float(actual))) - expected) < Decimal("0.000001"), f"{where}: {actual} != {expected}"


@pytest.fixture(scope="module")
def recalculated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[Line], Path]]:
    """Every region's template, filled with that region's lines and recalculated by LibreOffice in one run."""
    work = tmp_path_factory.mktemp("regions")
    filled = {}
    for scale, path in enumerate(build_templates(SCHEMA, work / "filled"), start=1):
        region = path.stem.removeprefix("plan-")
        lines = marketer_lines(scale)
        fill_like_a_marketer(path, lines)
        filled[region] = (lines, path)
    outputs = recalculate_many([path for _, path in filled.values()], work / "recalculated")
    return {region: (lines, out) for (region, (lines, _)), out in zip(filled.items(), outputs, strict=True)}


@pytest.mark.libreoffice
def test_no_formula_evaluates_to_an_error_in_any_region(recalculated) -> None:
    assert sorted(recalculated) == sorted(SCHEMA.config.regions)
    for region, (_, path) in recalculated.items():
        assert formula_problems(path) == [], region


@pytest.mark.libreoffice
def test_plan_totals_variance_and_quarters_in_the_reporting_currency(recalculated) -> None:
    config = SCHEMA.config
    total, variance = SCHEMA["planned_total"].index - 1, SCHEMA["variance"].index - 1
    quarter_cols = {q: SCHEMA[f"q{q}_reporting"].index - 1 for q in range(1, 5)}
    for region, (lines, path) in recalculated.items():
        rows = sheet_values(path, "Plan")
        assert rows[0][total] == "Planned total"
        for i, line in enumerate(lines):
            row, where = rows[i + 1], f"{region} Plan row {i + 2}"
            planned = sum(line.months.values(), Decimal(0))
            assert_money(row[total], planned, f"{where} planned total")
            assert_money(row[variance], planned - line.actual, f"{where} variance")
            for q, col in quarter_cols.items():
                assert_money(
                    row[col], quarter_in_reporting(config, line, q), f"{where} Q{q} in {config.reporting_currency}"
                )
        # Empty pre-numbered rows compute to zero, not to an error or a blank.
        empty = rows[len(lines) + 1]
        assert empty[0] == f"{region}-{len(lines) + 1:04d}"
        assert [empty[total], empty[variance], *(empty[c] for c in quarter_cols.values())] == [0] * 6
        assert len(rows) == 1 + config.template_rows


@pytest.mark.libreoffice
def test_hand_checked_values_for_emea(recalculated) -> None:
    """A few numbers worked out on paper, so the test's own arithmetic is checked too."""
    _, path = recalculated["EMEA"]  # scale 2
    rows = sheet_values(path, "Plan")
    q1, q4 = SCHEMA["q1_reporting"].index - 1, SCHEMA["q4_reporting"].index - 1
    # EUR (20,000 + 5,001) x 1.08 = 27,001.08
    assert_money(rows[1][q1], Decimal("27001.08"), "EUR line Q1")
    # EUR 999.99 x 1.08 = 1,079.9892 -> 1,079.99
    assert_money(rows[1][q4], Decimal("1079.99"), "EUR line Q4")
    # GBP 1,000.50 x 1.27 = 1,270.635 -> 1,270.64 (half a cent rounds up)
    assert_money(rows[2][q1], Decimal("1270.64"), "GBP line Q1")
    # Over-spent: 1,000.50 + 333.33 + 333.33 + 666.66 - 20,000 = -17,666.18
    assert_money(rows[2][SCHEMA["variance"].index - 1], Decimal("-17666.18"), "GBP line variance")
    assert rows[3][SCHEMA["notes"].index - 1] == "Booth + travel"
    assert rows[1][SCHEMA["start_date"].index - 1] == dt.date(2026, 2, 10)


@pytest.mark.libreoffice
def test_summary_by_channel_and_quarter_against_the_allocation(recalculated) -> None:
    config = SCHEMA.config
    for region, (lines, path) in recalculated.items():
        rows = {row[0]: row[1:6] for row in sheet_values(path, "Summary") if row and row[0]}
        expected: dict[str, list[Decimal]] = {}
        for name in (*config.channels, NO_CHANNEL):
            members = [ln for ln in lines if (ln.channel if ln.channel in config.channels else NO_CHANNEL) == name]
            expected[name] = [
                sum((quarter_in_reporting(config, ln, q) for ln in members), Decimal(0)) for q in range(1, 5)
            ]
        planned = [sum((expected[name][q] for name in expected), Decimal(0)) for q in range(4)]
        allocation = [config.allocation(region, q) for q in QUARTERS]
        for name, quarters in expected.items():
            for q, amount in enumerate(quarters):
                assert_money(rows[name][q], amount, f"{region} Summary {name} Q{q + 1}")
            assert_money(rows[name][4], sum(quarters, Decimal(0)), f"{region} Summary {name} total")
        for q in range(4):
            assert_money(rows["Total planned"][q], planned[q], f"{region} total planned Q{q + 1}")
            assert_money(rows["Allocation"][q], allocation[q], f"{region} allocation Q{q + 1}")
            assert_money(rows["Remaining (allocation - planned)"][q], allocation[q] - planned[q], f"{region} remaining")
            assert rows["Share of allocation planned"][q] == pytest.approx(float(planned[q] / allocation[q]), abs=1e-12)
        assert_money(rows["Total planned"][4], sum(planned, Decimal(0)), f"{region} total planned")
        assert_money(rows["Allocation"][4], sum(allocation, Decimal(0)), f"{region} allocation total")
        assert sum(planned) > 0 and any(expected[NO_CHANNEL])  # the fixture really exercises these rows


@pytest.mark.libreoffice
def test_recalculation_replaces_stale_cached_values(tmp_path: Path) -> None:
    """A file saved elsewhere may carry stale results; the numbers we read must be LibreOffice's own."""
    lines = [{"channel": "Events", "currency": "EUR", "m01": 100, "notes": "=1+1"}]
    source = build_template(SCHEMA, "EMEA", tmp_path / "plan-EMEA.xlsx", lines=lines, spare_rows=1)
    fresh = recalculate(source, tmp_path / "first")
    # Pre-filled text that starts with "=" is still text after a spreadsheet app opened and saved it.
    notes = SCHEMA["notes"].letter
    assert openpyxl.load_workbook(fresh)["Plan"][f"{notes}2"].value == "=1+1"
    assert sheet_values(fresh, "Plan")[1][SCHEMA["notes"].index - 1] == "=1+1"
    stale = tmp_path / "stale" / "plan-EMEA.xlsx"
    stale.parent.mkdir()
    total = f"{SCHEMA['planned_total'].letter}2"
    _rewrite_cached_value(fresh, stale, "Plan", total, "999999")
    assert openpyxl.load_workbook(stale, data_only=True)["Plan"][total].value == 999999

    again = recalculate(stale, tmp_path / "second")
    assert openpyxl.load_workbook(again, data_only=True)["Plan"][total].value == 100


@pytest.mark.libreoffice
def test_a_hung_libreoffice_is_stopped_with_a_clear_error(template_path: Path, tmp_path: Path) -> None:
    with pytest.raises(LibreOfficeError, match=r"did not finish within 0\.01 s"):
        recalculate(template_path, tmp_path / "out", timeout=0.01)
    assert not (tmp_path / "out" / "plan-EMEA.xlsx").exists()


def test_recalculate_refuses_to_overwrite_its_input(template_path: Path) -> None:
    with pytest.raises(LibreOfficeError, match="would be overwritten"):
        recalculate(template_path, template_path.parent)


def test_missing_system_dependency_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    hint = "sudo apt-get install plansheet-nothing"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(
        pytest.skip.Exception, match="plansheet-no-such-program is not installed; install it with: sudo"
    ):
        require_binary("plansheet-no-such-program", hint)
    for value in ("true", "1", "yes", "TRUE"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.fail.Exception, match="CI is set, so a missing system dependency fails"):
            require_binary("plansheet-no-such-program", hint)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require_binary("plansheet-no-such-program", hint)
    assert require_binary("sh", hint).endswith("/sh")


def _rewrite_cached_value(source: Path, target: Path, sheet: str, cell: str, value: str) -> None:
    """Copy an xlsx, replacing the cached result of one formula cell in the sheet's XML."""
    with zipfile.ZipFile(source) as zin:
        workbook = zin.read("xl/workbook.xml").decode()
        rels = zin.read("xl/_rels/workbook.xml.rels").decode()
        rel_id = re.search(rf'<sheet [^>]*name="{sheet}"[^>]*r:id="([^"]+)"', workbook).group(1)
        part = re.search(rf'<Relationship [^>]*Id="{rel_id}"[^>]*Target="([^"]+)"', rels) or re.search(
            rf'<Relationship [^>]*Target="([^"]+)"[^>]*Id="{rel_id}"', rels
        )
        name = "xl/" + part.group(1).removeprefix("/xl/")
        xml = zin.read(name).decode()
        patched, count = re.subn(rf'(<c r="{cell}"[^>]*><f[^>]*>[^<]*</f><v>)[^<]*(</v>)', rf"\g<1>{value}\g<2>", xml)
        assert count == 1, f"no cached value for {sheet}!{cell} in {name}"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
            for item in zin.infolist():
                zout.writestr(item, patched if item.filename == name else zin.read(item.filename))
