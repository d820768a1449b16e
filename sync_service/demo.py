"""The end-to-end demo: templates, sample plans (one with mistakes), the master workbook, then the sync service."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import TextIO

from openpyxl import load_workbook

from addin.consolidate import ACCEPTED, consolidate
from addin.forecast import closed_months
from sheet_templates.calendar import QUARTERS
from sheet_templates.excel_template import build_template, build_templates, template_filename
from sheet_templates.samples import sample_lines
from sheet_templates.schema import PlanSchema
from sync_service.demo_service import FORMATS, plan_fill, run_service_demo, serve_dashboard

DEMO_LINES = 120
BAD_REGION = "LATAM"


def fill_with_mistakes(path: Path, schema: PlanSchema) -> list[str]:
    """Edit a filled plan as a hurried marketer might; returns what was done, cell by cell."""
    wb = load_workbook(path)
    ws = wb["Plan"]
    col = {c.name: c.letter for c in schema.columns}

    def planned_month(row: int) -> str:  # the cell of the row's first month with spend: inside the line's dates
        letters = [col[m.name] for m in schema.calendar.months]
        return next((f"{x}{row}" for x in letters if ws[f"{x}{row}"].value), f"{letters[0]}{row}")

    edits = [
        (f"{col['channel']}4", "Billboards", "a channel that is not in the list"),
        (planned_month(5), -1500, "a negative amount"),
        (planned_month(6), "12,500.00", "a number typed as text (accepted, with a warning)"),
        (f"{col['start_date']}7", dt.date(schema.calendar.year + 2, 1, 15), "a start date outside the fiscal year"),
        (f"{col['line_id']}8", ws[f"{col['line_id']}3"].value, "a line ID used twice"),
        (f"{col['owner']}9", None, "a required owner left empty"),
        (f"{col['notes']}10", '=HYPERLINK("http://example.invalid")', "a note a spreadsheet would run as a formula"),
    ]
    for ref, value, _ in edits:
        ws[ref].value = value
        if isinstance(value, str) and value.startswith("="):
            ws[ref].data_type = "s"
    wb.save(path)
    return [f"Plan!{ref}: {what}" for ref, _, what in edits]


def run_demo(
    schema: PlanSchema, out: Path, stdout: TextIO, *, serve: bool = False, as_of: dt.date | None = None
) -> int:
    """The whole demo, told as of `as_of` (default today; brought inside the fiscal year); 0 when it ran through.

    The same `as_of` tells the same story to the cent: the README's sample output is one.
    """
    started = time.perf_counter()
    formats, count = FORMATS, FORMATS.count
    templates = build_templates(schema, out / "templates")
    print(f"Built {count(len(templates))} regional templates in {out / 'templates'}", file=stdout)
    plans = out / "plans"
    plans.mkdir(parents=True, exist_ok=True)
    cal = schema.calendar
    as_of = min(max(as_of or dt.date.today(), cal.start), cal.end)  # the demo's "today", inside the fiscal year
    for region in schema.config.regions:
        path = plans / template_filename(region)
        lines = sample_lines(
            schema,
            region,
            DEMO_LINES,
            seed=2027,
            today=as_of,
            fill=plan_fill(schema, region),
            results_at_plan_rates=True,  # leads priced in the reporting currency, as a region's results are
            phased_to_allocation=True,  # each quarter near its allocation, as a planner plans
        )
        build_template(schema, region, path, lines=lines)
    corrected = out / "corrected" / template_filename(BAD_REGION)
    corrected.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(plans / template_filename(BAD_REGION), corrected)
    mistakes = fill_with_mistakes(plans / template_filename(BAD_REGION), schema)
    print(
        f"Filled {count(len(schema.config.regions))} sample plans of {count(DEMO_LINES)} lines in {plans}; "
        f"{template_filename(BAD_REGION)} has mistakes:",
        file=stdout,
    )
    for m in mistakes:
        print(f"  {m}", file=stdout)

    master = out / "master.xlsx"
    result = consolidate([plans], schema, master, as_of=as_of)
    print(f"\nConsolidated into {master}:", file=stdout)
    for f in result.files:
        summary = f.summary()
        print(
            f"  {f.file:<18} {f.status:<10} {count(f.lines):>5} lines  {count(summary['errors'])} errors  "
            f"{count(summary['warnings'])} warnings",
            file=stdout,
        )
    for f in result.rejected:
        print(f"\n{f.file} was rejected; what the marketer is told:", file=stdout)
        for issue in f.issues:
            print(f"  {issue.location:<10} {issue.severity:<8} {issue.message}", file=stdout)
    cur = schema.config.reporting_currency
    print(f"\nPlanned spend by region and quarter ({cur}, plan rates):", file=stdout)
    header = " ".join(f"{formats.quarter(q, cal.year):>14}" for q in QUARTERS)
    print(f"  {'region':<6} {header} {'year':>15}", file=stdout)
    pivot = result.rollup.groupby("region")[list(QUARTERS)].sum()
    for region, row in pivot.iterrows():
        total = sum(int(v) for v in row)
        cells = " ".join(f"{formats.amount(int(v), cur):>14}" for v in row)
        print(f"  {region:<6} {cells} {formats.amount(total, cur):>15}", file=stdout)
    accepted = sum(f.status == ACCEPTED for f in result.files)
    print(
        f"\n{count(accepted)} plans accepted, {count(len(result.rejected))} rejected, in "
        f"{formats.ratio(time.perf_counter() - started, 1)} s.",
        file=stdout,
    )
    print(f"Open {master} (sheets Summary, Lines, Rollup, Variance, Chart, Issues).", file=stdout)
    closed = closed_months(cal, as_of)
    run_service_demo(schema, out, plans, corrected, BAD_REGION, closed, as_of.isoformat(), stdout)
    print(f"\nThe whole demo took {formats.ratio(time.perf_counter() - started, 1)} s.", file=stdout)
    if serve:
        serve_dashboard(schema, out, stdout)
    return 0
