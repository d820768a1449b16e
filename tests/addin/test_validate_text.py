"""Text a spreadsheet cannot store is refused at its cell: control characters and unpaired surrogates.

Plans arrive as JSON (any code point, lone surrogates included), as Google grids and as xlsx
files (where Excel writes a control character as `_x0007_`). Each way, the issue names the
cell and the character, and the plan is not accepted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from addin.issues import Rule, Severity
from addin.reader import PlanRead, plan_from_rows, read_plan
from sheet_templates.excel_template import build_template
from sheet_templates.schema import PlanSchema
from tests.addin.reader_helpers import cell, fill, line


def grid_of(schema: PlanSchema, lines: list[dict[str, Any]]) -> list[list[Any]]:
    """A JSON client's plan: a header of column names, then one row per line."""
    names = [c.name for c in schema.input_columns]
    return [names, *([values.get(n) for n in names] for values in lines)]


def json_line(schema: PlanSchema, n: int, **values: Any) -> dict[str, Any]:
    cal = schema.calendar
    return {"line_id": f"EMEA-{n:04d}", "region": "EMEA", **line(schema, start_date=cal.start, **values)}


def control_issues(read: PlanRead) -> list[tuple[Severity, str, str]]:
    return [(i.severity, i.location, i.message) for i in read.issues if i.rule is Rule.CONTROL_CHARACTER]


def test_control_characters_and_surrogates_in_a_json_plan_are_refused_at_their_cells(schema: PlanSchema) -> None:
    lines = [
        json_line(schema, 1),
        json_line(schema, 2, campaign="Data\x07Week"),  # BEL
        json_line(schema, 3, owner="jo\ud83d@example.com"),  # half an emoji
        json_line(schema, 4, activity="Booth\nand travel"),  # a line break in a one-line field
        json_line(schema, 5, notes="Booth\nand\ttravel\r\nconfirmed"),  # allowed in Notes
        json_line(schema, 6, notes="Booth\x0bspace"),  # a vertical tab is not, even in Notes
        json_line(schema, 7, campaign_code="EM\x9b27"),  # C1
        json_line(schema, 8, team="Field\x7fMarketing"),  # DEL
        json_line(schema, 9, line_id="EMEA-\x000009"),  # NUL in an ID
        json_line(schema, 10, channel="Events\x01"),  # a list value: not in the list, and a control character
        json_line(schema, 11, notes="All fine \U0001f600"),  # a whole emoji is text like any other
    ]
    read = plan_from_rows(grid_of(schema, lines), schema, sheet="lines", region="EMEA")

    assert not read.ok
    assert [(sev, loc) for sev, loc, _ in control_issues(read)] == [
        (Severity.ERROR, f"lines!{schema['campaign'].letter}3"),
        (Severity.ERROR, f"lines!{schema['owner'].letter}4"),
        (Severity.ERROR, f"lines!{schema['activity'].letter}5"),
        (Severity.ERROR, f"lines!{schema['notes'].letter}7"),
        (Severity.ERROR, f"lines!{schema['campaign_code'].letter}8"),
        (Severity.ERROR, f"lines!{schema['team'].letter}9"),
        (Severity.ERROR, f"lines!{schema['line_id'].letter}10"),
        (Severity.ERROR, f"lines!{schema['channel'].letter}11"),
    ]
    messages = {loc: msg for _, loc, msg in control_issues(read)}
    assert messages[f"lines!{schema['campaign'].letter}3"] == (
        "Campaign contains the control character U+0007, which no spreadsheet can store; "
        "retype the text, or paste it as plain text"
    )
    assert messages[f"lines!{schema['owner'].letter}4"].startswith(
        "Owner contains U+D83D, half of a character pair (an unpaired surrogate)"
    )
    assert messages[f"lines!{schema['activity'].letter}5"] == (
        "Activity contains a line break (U+000A), but it must be one line of text; "
        "retype it on one line (line breaks are allowed in Notes)"
    )
    assert "U+000B" in messages[f"lines!{schema['notes'].letter}7"]
    assert "U+009B" in messages[f"lines!{schema['campaign_code'].letter}8"]
    assert "U+007F" in messages[f"lines!{schema['team'].letter}9"]
    assert "U+0000" in messages[f"lines!{schema['line_id'].letter}10"]
    assert "U+0001" in messages[f"lines!{schema['channel'].letter}11"]
    assert (Rule.ALLOWED_VALUE, f"lines!{schema['channel'].letter}11") in [(i.rule, i.location) for i in read.issues]
    # Lines 2, 6 and 12 are clean: nothing reported there.
    assert not [i for i in read.issues if i.row in (2, 6, 12)]


def test_every_cell_holding_a_repeated_bad_value_is_named(schema: PlanSchema) -> None:
    lines = [json_line(schema, n, team="Field\x1bMarketing") for n in range(1, 4)]
    read = plan_from_rows(grid_of(schema, lines), schema, sheet="lines", region="EMEA")
    assert [loc for _, loc, _ in control_issues(read)] == [f"lines!{schema['team'].letter}{r}" for r in (2, 3, 4)]


def test_a_control_character_typed_into_the_template_is_refused_at_its_cell(
    template_path: Path, schema: PlanSchema
) -> None:
    # Excel stores a control character in a cell as the escape _x0007_; a reader turns it back into U+0007.
    fill(
        template_path,
        schema,
        {
            2: line(schema),
            3: line(schema, campaign="Data_x0007_Week"),
            4: line(schema, owner="jo_x000A_martin@example.com"),
            5: line(schema, notes="Booth_x000A_and travel"),
        },
    )
    read = read_plan(template_path, schema, expected_region="EMEA")

    assert not read.ok
    assert [(sev, loc) for sev, loc, _ in control_issues(read)] == [
        (Severity.ERROR, cell(schema, "campaign", 3)),
        (Severity.ERROR, cell(schema, "owner", 4)),
    ]
    assert "U+0007" in control_issues(read)[0][2] and "U+000A" in control_issues(read)[1][2]
    assert read.table.loc[read.table["_row"] == 5, "notes"].tolist() == ["Booth\nand travel"]


def test_a_plan_of_clean_text_built_by_the_template_builder_has_no_such_issue(
    tmp_path: Path, schema: PlanSchema
) -> None:
    from sheet_templates.samples import sample_lines

    path = build_template(schema, "EMEA", tmp_path / "plan.xlsx", lines=sample_lines(schema, "EMEA", 30, seed=3))
    assert control_issues(read_plan(path, schema, expected_region="EMEA")) == []


@pytest.mark.parametrize("bad", [False, True])
def test_the_rule_costs_milliseconds_on_a_50_000_line_plan(schema: PlanSchema, bad: bool) -> None:
    """Distinct values are scanned together once; a column with a hit is searched value by value."""
    from addin.coerce import Located
    from addin.validate import validate_lines

    lines = [json_line(schema, n % 9999 + 1, campaign=f"Campaign {n}", notes=f"note {n}") for n in range(50_000)]
    if bad:
        lines[-1]["campaign"] += "\x07"
    read = plan_from_rows(grid_of(schema, lines), schema, sheet="lines", region="EMEA")
    table = read.table
    where = Located("lines", None, dict(read.letters))
    start = time.perf_counter()
    validate_lines(table, schema, where, region="EMEA")
    elapsed = time.perf_counter() - start
    assert [i.row for i in where.issues if i.rule is Rule.CONTROL_CHARACTER] == ([50_001] if bad else [])
    assert elapsed < 5  # the whole validator; the text rule itself adds a few milliseconds (docs/benchmarks.md)
