"""Read filled plan templates into the typed plan table, with every issue located to its cell.

The fast path: `addin.safety` checks the package (size, zip bombs, macros, DTDs, sheet
limits) and reads the workbook's defined names from its XML; python-calamine then parses
only the Plan sheet. `plan_from_rows` is the host-independent half: any 2-D grid of cell
values (from calamine, a Google Sheet or a JSON client) becomes the same `PlanRead`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from addin.coerce import ROW, Located, blank_lines, coerce
from addin.issues import Issue, Rule, Severity, has_errors
from addin.safety import Limits
from addin.untrusted import open_untrusted
from addin.validate import check_meta, validate_lines
from sheet_templates.cells import column_letter
from sheet_templates.excel_template import NAME_CLOSED, NAME_CYCLE, NAME_PLAN_ROWS
from sheet_templates.schema import (
    HEADER_ROW,
    NAME_BASED_ON,
    NAME_FISCAL_YEAR,
    NAME_REGION,
    NAME_TEMPLATE_ID,
    NAME_TEMPLATE_VERSION,
    PLAN_SHEET,
    PlanSchema,
    TemplateMeta,
)


@dataclass(slots=True)
class PlanRead:
    """One plan as read: its identity, its non-blank lines as a typed table, and every issue."""

    file: str
    meta: TemplateMeta | None
    table: pd.DataFrame
    issues: list[Issue] = field(default_factory=list)
    letters: dict[str, str] = field(default_factory=dict)
    based_on: int | None = None  # the approved submission a service-made template was filled from (0: none)
    closed: tuple[str, ...] = ()  # a reforecast template's closed months: shown, never read as plan
    cycle: int | None = None  # the reforecast cycle a template was made for

    @property
    def ok(self) -> bool:
        return not has_errors(self.issues)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity is Severity.ERROR]


def read_plan(
    path: bytes | str | os.PathLike[str],
    schema: PlanSchema,
    *,
    expected_region: str | None = None,
    display_name: str | None = None,
) -> PlanRead:
    """Read and validate one filled template (a path, or the uploaded bytes).

    Raises `UnreadableWorkbook` for input that is not a plan file.
    """
    name = display_name or (Path(path).name if not isinstance(path, bytes) else "upload.xlsx")
    limits = Limits(max_rows=max(schema.config.max_lines, schema.config.template_rows) + HEADER_ROW + 1_000)
    opened = open_untrusted(path, sheet=PLAN_SHEET, limits=limits, display_name=name)
    package, grid = opened.package, opened.grid
    meta = meta_from_names(package.defined_names)
    issues = check_meta(meta, schema, expected_region=expected_region, file=name)
    for row, column, error in package.plan_error_cells:  # calamine reads a cell showing an error as blank
        if row <= len(grid) and column <= len(grid[row - 1]) and grid[row - 1][column - 1] == "":
            grid[row - 1][column - 1] = error
    region = meta.region if meta is not None and meta.region in schema.config.regions else None
    read = plan_from_rows(
        grid,
        schema,
        file=name,
        meta=meta,
        region=region,
        date1904=package.date1904,
        issues=issues,
        table_rows=table_rows_from_names(package.defined_names),
    )
    read.based_on = based_on_from_names(package.defined_names)
    read.closed, read.cycle = reforecast_from_names(package.defined_names, schema)
    return read


def reforecast_from_names(names: dict[str, str], schema: PlanSchema) -> tuple[tuple[str, ...], int | None]:
    """A reforecast template's closed months (PS_CLOSED) and cycle (PS_CYCLE); ((), None) for a plan template."""
    raw = names.get(NAME_CLOSED, "").strip().removeprefix("=").strip('"')
    keys = [c.name for c in schema.month_columns]
    closed = tuple(m for m in keys if m in {part.strip().lower() for part in raw.split(",")})
    cycle = names.get(NAME_CYCLE, "").strip().removeprefix("=").strip('"')
    return closed, int(cycle) if cycle.isdigit() else None


def based_on_from_names(names: dict[str, str]) -> int | None:
    """The PS_BASED_ON submission number of a template the service pre-filled, or None."""
    raw = names.get(NAME_BASED_ON, "").strip().removeprefix("=").strip('"')
    return int(raw) if raw.isdigit() else None


_ROWS_REF = re.compile(rf"^=?'?{PLAN_SHEET}'?!\$?[A-Z]+\$?(\d+):\$?[A-Z]+\$?(\d+)$", re.IGNORECASE)


def table_rows_from_names(names: dict[str, str]) -> tuple[int, int] | None:
    """The first and last Plan row of the template's table (PS_PLAN_ROWS), or None if the workbook has none."""
    match = _ROWS_REF.match(names.get(NAME_PLAN_ROWS, "").strip())
    if match is None:  # not a Plansheet template of this kind, or the name no longer refers to rows
        return None
    first, last = sorted((int(match[1]), int(match[2])))
    return first, last


def meta_from_names(names: dict[str, str]) -> TemplateMeta | None:
    """The template identity kept in the workbook's defined names, or None if any is missing."""
    values = {}
    for key in (NAME_TEMPLATE_ID, NAME_TEMPLATE_VERSION, NAME_REGION, NAME_FISCAL_YEAR):
        raw = names.get(key)
        if raw is None:
            return None
        raw = raw.strip().removeprefix("=")
        values[key] = raw[1:-1].replace('""', '"') if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    try:
        year = int(float(values[NAME_FISCAL_YEAR]))
    except (ValueError, OverflowError):
        return None
    return TemplateMeta(values[NAME_TEMPLATE_ID], values[NAME_TEMPLATE_VERSION], values[NAME_REGION], year)


def plan_from_rows(
    grid: Sequence[Sequence[object]],
    schema: PlanSchema,
    *,
    file: str | None = None,
    sheet: str = PLAN_SHEET,
    meta: TemplateMeta | None = None,
    region: str | None = None,
    date1904: bool = False,
    issues: list[Issue] | None = None,
    header_row: int = HEADER_ROW,
    table_rows: tuple[int, int] | None = None,
) -> PlanRead:
    """Map the header, drop blank rows, convert and validate a grid whose row 0 is sheet row 1.

    `table_rows` (first, last) are the rows the template's table spans; a line outside them is an error.
    """
    header = list(grid[header_row - 1]) if len(grid) >= header_row else []
    where = Located(sheet=sheet, file=file, letters={}, issues=list(issues or []))
    positions = _map_header(header, schema, where, header_row)
    where.letters = {name: column_letter(pos + 1) for name, pos in positions.items()}
    for col in schema.input_columns:  # a missing column is reported where the template has it
        where.letters.setdefault(col.name, col.letter)

    data = grid[header_row:]
    width = max((len(r) for r in data), default=0)
    if any(len(r) != width for r in data):  # ragged rows (hand-made grids): pad with blanks
        data = [tuple(r) + ("",) * (width - len(r)) for r in data]
    columns = list(zip(*data, strict=True)) if data else []
    raw: dict[str, np.ndarray] = {}
    for name, pos in positions.items():
        values = np.empty(len(data), dtype=object)
        values[:] = columns[pos] if pos < len(columns) else ""
        raw[name] = values
    raw[ROW] = np.arange(header_row + 1, header_row + 1 + len(data), dtype=np.int64)
    before = len(where.issues)
    table = coerce(raw, schema, where, date1904=date1904)
    # Pre-numbered rows the planner left empty are not lines: nothing but the line ID and region,
    # or zeros, and nothing that could not be read.
    content = [c for c in schema.input_columns if c.name not in ("line_id", "region")]
    troubled = np.isin(table[ROW].to_numpy(), [i.row for i in where.issues[before:]])
    table = table.loc[~(blank_lines(table, content) & ~troubled)].reset_index(drop=True)
    missing = frozenset(c.name for c in schema.input_columns if c.name not in positions)
    if len(missing) > len(schema.input_columns) // 2:
        _find_misplaced_header(grid, schema, where, header_row)
    validate_lines(table, schema, where, region=region, missing=missing)
    if table_rows is not None:
        _check_inside_table(table, table_rows, where, schema)
    where.issues.sort(key=_issue_order)
    return PlanRead(file or "", meta, table, where.issues, where.letters)


def _check_inside_table(table: pd.DataFrame, table_rows: tuple[int, int], where: Located, schema: PlanSchema) -> None:
    """Each line outside the template's table is an error: the template's Summary does not count it."""
    first, last = table_rows
    letter = where.letters.get("line_id", schema["line_id"].letter)
    for row in table[ROW].to_numpy():
        if first <= row <= last:
            continue
        side = "below" if row > last else "above"
        where.issues.append(
            Issue(
                Rule.OUTSIDE_TABLE,
                Severity.ERROR,
                f"This line is {side} the plan table (rows {first} to {last}), so the template's Summary does not "
                "count it; insert rows inside the table (select a numbered row, Insert rows above) and move the "
                "line there, or download a template with more rows",
                where.file,
                where.sheet,
                f"{letter}{row}",
                None,
                int(row),
            )
        )


def _map_header(header: list[object], schema: PlanSchema, where: Located, header_row: int) -> dict[str, int]:
    """Find each schema column in the header row by label (or machine name), ignoring case and spacing."""
    wanted = {}
    for col in schema.columns:
        wanted[_norm(col.label)] = col
        wanted[_norm(col.name)] = col
    found: dict[str, int] = {}
    for pos, value in enumerate(header):
        text = _norm(value)
        if not text:
            continue
        col = wanted.get(text)
        cell = f"{column_letter(pos + 1)}{header_row}"
        if col is None:
            where.issues.append(
                Issue(
                    Rule.COLUMN_UNKNOWN,
                    Severity.WARNING,
                    f'Column "{value}" is not part of the template; its values were ignored',
                    where.file,
                    where.sheet,
                    cell,
                    None,
                    header_row,
                )
            )
        elif col.name in found:
            where.issues.append(
                Issue(
                    Rule.COLUMN_DUPLICATE,
                    Severity.ERROR,
                    f'Column "{col.label}" appears twice (first in column '
                    f"{column_letter(found[col.name] + 1)}); delete one of them",
                    where.file,
                    where.sheet,
                    cell,
                    col.name,
                    header_row,
                )
            )
        else:
            found[col.name] = pos
    for col in schema.input_columns:
        if col.name not in found:
            where.issues.append(
                Issue(
                    Rule.COLUMN_MISSING,
                    Severity.ERROR,
                    f'Column "{col.label}" is missing from the header row; it belongs in column {col.letter}',
                    where.file,
                    where.sheet,
                    f"{col.letter}{header_row}",
                    col.name,
                    header_row,
                )
            )
    return {name: pos for name, pos in found.items() if schema[name].is_input}


def _find_misplaced_header(
    grid: Sequence[Sequence[object]], schema: PlanSchema, where: Located, header_row: int
) -> None:
    """Most columns are missing: if the header sits lower down (a title row inserted above it), say so."""
    labels = {_norm(c.label) for c in schema.columns}
    for offset, row in enumerate(grid[header_row : header_row + 10], start=header_row + 1):
        if sum(_norm(v) in labels for v in row) > len(schema.input_columns) // 2:
            where.issues.append(
                Issue(
                    Rule.COLUMN_MISSING,
                    Severity.ERROR,
                    f"The header row must be row {header_row}, but it is in row {offset}; delete the rows above it",
                    where.file,
                    where.sheet,
                    f"A{offset}",
                    None,
                    offset,
                )
            )
            return


def _norm(value: object) -> str:
    return " ".join(str(value).split()).casefold() if value is not None else ""


def _issue_order(issue: Issue) -> tuple[int, int, str]:
    col = issue.cell.rstrip("0123456789") if issue.cell else ""
    return (issue.row or 0, len(col), col)
