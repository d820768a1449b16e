"""The plan rules: everything the schema implies about a typed plan table, checked at once.

`validate_lines` works on the typed table (see `addin.coerce`) and returns issues with cell
references; `check_meta` compares a template's identity with the schema. Rules are
vectorised over columns: the cost is a few array operations per rule, whatever the size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from addin.coerce import ROW, Located
from addin.issues import Issue, Rule, Severity
from addin.text_rule import MULTI_LINE_ILLEGAL, SINGLE_LINE_ILLEGAL, character_message
from sheet_templates.schema import MAX_TEXT, Column, ColumnType, PlanSchema, TemplateMeta

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MULTI_LINE = frozenset({"notes"})  # text columns where tab and line breaks are part of the text


def validate_lines(
    table: pd.DataFrame,
    schema: PlanSchema,
    where: Located,
    *,
    region: str | None = None,
    missing: frozenset[str] = frozenset(),
) -> None:
    """Check every line of `table`; add issues to `where`. `region` is the template's region.

    Columns in `missing` (not found in the header) were reported once already; their empty
    cells are not reported again line by line.
    """
    rows = table[ROW].to_numpy()
    text_cols = [c for c in schema.of_type(ColumnType.ID, ColumnType.TEXT, ColumnType.CHOICE) if c.name not in missing]

    for col in text_cols:
        # Plan text columns repeat a few values: check each distinct value once, then report its cells.
        codes, uniques = pd.factorize(table[col.name].to_numpy(dtype=object))
        illegal = MULTI_LINE_ILLEGAL if col.name in MULTI_LINE else SINGLE_LINE_ILLEGAL
        # One scan of all distinct values together; only a column with a hit is searched value by value.
        scan = illegal.search("".join(uniques)) is not None
        for k, value in enumerate(uniques):
            found = _text_problems(col, value)
            if scan and (hit := illegal.search(value)) is not None:
                found.append((Rule.CONTROL_CHARACTER, _control_message(col, hit.group())))
            for rule, message in found:
                for i in np.flatnonzero(codes == k):
                    where.add(rule, Severity.ERROR, col.name, rows[i], message)

    for col in schema.of_type(ColumnType.MONEY, ColumnType.COUNT):
        values = table[col.name].to_numpy()
        for i in np.flatnonzero(values < 0):
            shown = f"{values[i] / 100:,.2f}" if col.type is ColumnType.MONEY else str(values[i])
            where.add(
                Rule.NEGATIVE,
                Severity.ERROR,
                col.name,
                rows[i],
                f"{col.label} is {shown}; amounts cannot be negative (enter refunds as notes to finance)",
            )

    _dates(table, schema, where, rows)
    _duplicates(table, where, rows)
    if region is not None:
        values = table["region"].to_numpy(dtype=object)
        for i in np.flatnonzero((values != region) & (values != "")):
            where.add(
                Rule.REGION_MISMATCH,
                Severity.ERROR,
                "region",
                rows[i],
                f'Region "{values[i]}" does not match this template\'s region {region}',
            )
    if len(table) > schema.config.max_lines:
        where.add(
            Rule.TOO_MANY_LINES,
            Severity.ERROR,
            None,
            None,
            f"the plan has {len(table):,} lines; the limit is {schema.config.max_lines:,}",
        )


def _text_problems(col: Column, value: str) -> list[tuple[Rule, str]]:
    if not value:
        return [(Rule.REQUIRED, f"{col.label} is required")] if col.required else []
    found = []
    if col.choices is not None and value not in col.choices:
        found.append(
            (Rule.ALLOWED_VALUE, f'{col.label} "{value}" is not in the list; choose one of {", ".join(col.choices)}')
        )
    if len(value) > MAX_TEXT:
        found.append((Rule.TOO_LONG, f"{col.label} is {len(value)} characters long; keep it to {MAX_TEXT}"))
    if value.startswith(FORMULA_STARTS):
        found.append(
            (
                Rule.FORMULA_TEXT,
                f'{col.label} starts with "{value[0]}", so a spreadsheet would run it as a formula; '
                "start it with a letter or digit",
            )
        )
    return found


def _control_message(col: Column, char: str) -> str:
    return character_message(col.label, char, multiline_hint=" (line breaks are allowed in Notes)")


def _dates(table: pd.DataFrame, schema: PlanSchema, where: Located, rows: np.ndarray) -> None:
    cal = schema.calendar
    start_fy, end_fy = np.datetime64(cal.start, "s"), np.datetime64(cal.end, "s")
    for col in schema.of_type(ColumnType.DATE):
        values = table[col.name].to_numpy(dtype="datetime64[s]")
        outside = ~np.isnat(values) & ((values < start_fy) | (values > end_fy))
        for i in np.flatnonzero(outside):
            where.add(
                Rule.DATE_OUTSIDE_YEAR,
                Severity.ERROR,
                col.name,
                rows[i],
                f"{col.label} {str(values[i])[:10]} is outside {cal.label} "
                f"({cal.start:%Y-%m-%d} to {cal.end:%Y-%m-%d})",
            )
    start = table["start_date"].to_numpy(dtype="datetime64[s]")
    end = table["end_date"].to_numpy(dtype="datetime64[s]")
    inverted = ~np.isnat(start) & ~np.isnat(end) & (end < start)
    for i in np.flatnonzero(inverted):
        where.add(
            Rule.END_BEFORE_START,
            Severity.ERROR,
            "end_date",
            rows[i],
            f"End date {str(end[i])[:10]} is before start date {str(start[i])[:10]}",
        )
    # Spend planned in months before the line starts or after it ends: one warning per line,
    # at its first such month; lines whose dates are already wrong are not warned twice.
    months = schema.month_columns
    first_day = np.array([np.datetime64(m.first_day, "s") for m in cal.months])
    last_day = np.array([np.datetime64(m.last_day, "s") for m in cal.months])
    spend = np.column_stack([table[c.name].to_numpy() for c in months]) > 0 if len(table) else np.zeros((0, 12), bool)
    dates_ok = ~inverted
    for values in (start, end):
        dates_ok &= np.isnat(values) | ((values >= start_fy) & (values <= end_fy))
    before = ~np.isnat(start)[:, None] & (last_day[None, :] < start[:, None])
    after = ~np.isnat(end)[:, None] & (first_day[None, :] > end[:, None])
    outside = spend & (before | after) & dates_ok[:, None]
    for i in np.flatnonzero(outside.any(axis=1)):
        cols = [months[m] for m in np.flatnonzero(outside[i])]
        shown = cols[0].label if len(cols) == 1 else f"{len(cols)} months ({cols[0].label} to {cols[-1].label})"
        where.add(
            Rule.SPEND_OUTSIDE_DATES,
            Severity.WARNING,
            cols[0].name,
            rows[i],
            f"Spend is planned in {shown}, outside the line's dates {_day(start[i])} to {_day(end[i])}",
        )


def _day(value: np.datetime64) -> str:
    return "…" if np.isnat(value) else str(value)[:10]


def _duplicates(table: pd.DataFrame, where: Located, rows: np.ndarray) -> None:
    ids = table["line_id"]
    dup = ids.duplicated(keep="first").to_numpy() & (ids.to_numpy(dtype=object) != "")
    if not dup.any():
        return
    first_row = dict(
        zip(ids[~ids.duplicated(keep="first")], rows[~ids.duplicated(keep="first").to_numpy()], strict=True)
    )
    for i in np.flatnonzero(dup):
        where.add(
            Rule.DUPLICATE_ID,
            Severity.ERROR,
            "line_id",
            rows[i],
            f"Line ID {ids.iloc[i]} is used twice (also in row {first_row[ids.iloc[i]]}); each line needs its own ID",
        )


def check_meta(
    meta: TemplateMeta | None, schema: PlanSchema, *, expected_region: str | None = None, file: str | None = None
) -> list[Issue]:
    """Compare the template's identity (its defined names) with the current schema."""

    def issue(rule: Rule, message: str) -> Issue:
        return Issue(rule, Severity.ERROR, message, file=file)

    if meta is None:
        return [
            issue(
                Rule.TEMPLATE_MISSING,
                "this workbook is not a Plansheet template (its template id, version, region and fiscal year "
                "are missing); download a fresh template and copy your lines into it",
            )
        ]
    out = []
    if meta.template_id != schema.template_id:
        out.append(
            issue(
                Rule.TEMPLATE_FOREIGN,
                f"this template ({meta.template_id}) belongs to another organisation or tool; "
                f"use a {schema.config.org_name} template ({schema.template_id})",
            )
        )
    elif meta.version != schema.version:
        out.append(
            issue(
                Rule.TEMPLATE_STALE,
                f"this template is version {meta.version}, but the current version is {schema.version}; "
                "download a fresh template and copy your lines into it",
            )
        )
    if meta.fiscal_year != schema.calendar.year:
        fresh = f"download a {schema.calendar.label} template and copy your lines into it"
        planned = meta.fiscal_year in schema.config.years  # a year the organisation plans too: send it as that year's
        out.append(
            issue(
                Rule.TEMPLATE_FISCAL_YEAR,
                f"this template is for FY{meta.fiscal_year}, but plans are being collected for "
                f"{schema.calendar.label}; "
                + (
                    f"send it as FY{meta.fiscal_year}'s plan (year={meta.fiscal_year}), or {fresh}"
                    if planned
                    else fresh
                ),
            )
        )
    if meta.region not in schema.config.regions:
        out.append(
            issue(
                Rule.TEMPLATE_REGION,
                f'this template is for region "{meta.region}", which is not one of {", ".join(schema.config.regions)}',
            )
        )
    elif expected_region is not None and meta.region != expected_region:
        out.append(
            issue(
                Rule.TEMPLATE_REGION,
                f"this is the {meta.region} template, but a plan for {expected_region} was expected",
            )
        )
    return out
