"""A plan template filled in as a planner would: values typed under the header labels, a valid line, a cell's name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl

from sheet_templates import PlanSchema


def fill(path: Path, schema: PlanSchema, rows: dict[int, dict[str, Any]]) -> Path:
    """Type values into the Plan sheet under the header labels a planner sees (keys are column names)."""
    book = openpyxl.load_workbook(path)
    plan = book["Plan"]
    where = {cell.value: cell.column for cell in plan[1] if cell.value}
    for row, values in rows.items():
        for name, value in values.items():
            cell = plan.cell(row, where[schema[name].label])
            cell.value = value
            if isinstance(value, str) and value.startswith("="):
                cell.data_type = "s"  # typed as text (Excel: a leading apostrophe), not as a formula
    book.save(path)
    return path


def line(schema: PlanSchema, **values: Any) -> dict[str, Any]:
    """A realistic, valid EMEA line running the whole fiscal year, with spend in its first three months."""
    cal = schema.calendar
    base: dict[str, Any] = {
        "business_unit": "Enterprise",
        "team": "Field Marketing",
        "campaign": f"Data Week {cal.label}",
        "campaign_code": "EM27-1042",
        "channel": "Events",
        "activity": "Booth",
        "owner": "jo.martin@example.com",
        "currency": "EUR",
        "status": "Planned",
        "start_date": cal.start,
        "end_date": cal.end,
        "m01": 12000,
        "m02": 2500.5,
        "m03": 800,
        "committed": 5000,
        "actual": 1200.25,
        "leads": 120,
        "mqls": 30,
        "pipeline": 150000,
        "revenue": 33000,
        "notes": "Booth and travel",
    }
    base.update(values)
    return base


def cell(schema: PlanSchema, name: str, row: int) -> str:
    """The location a user is shown for column `name` in sheet row `row` of the template."""
    return f"Plan!{schema[name].letter}{row}"
