"""Typing plan lines into a team's Google sheet as a marketer would, through the Sheets API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import gspread

from sheet_templates import build_schema, load_config
from sheet_templates.cells import column_letter

SCHEMA = build_schema(load_config())
INPUTS = [c.name for c in SCHEMA.input_columns]


def fill(gc: gspread.Client, spreadsheet_id: str, lines: list[dict[str, Any]]) -> None:
    """Type the lines into the Plan sheet as a marketer would (USER_ENTERED: numbers as numbers, dates as text)."""
    rows = []
    for line in lines:
        row = []
        for name in INPUTS:
            value = line.get(name)
            row.append("" if value is None else str(value) if not isinstance(value, Decimal) else float(value))
        rows.append(row)
    last = column_letter(len(INPUTS))
    plan = gc.open_by_key(spreadsheet_id).worksheet("Plan")
    plan.batch_clear([f"A2:{last}{SCHEMA.config.template_rows + 1}"])  # the previous plan's lines go
    plan.update(values=rows, range_name=f"A2:{last}{len(rows) + 1}", value_input_option="USER_ENTERED")
