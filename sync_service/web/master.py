"""The master's pages: the master against allocations, plan against actual, performance, the workbook."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import numpy as np
from flask import (
    abort,
    g,
    render_template,
    request,
    send_file,
)
from flask.typing import ResponseReturnValue

from addin.forecast import closed_months, elapsed_fraction, pacing
from addin.rollup import rollup
from sheet_templates.calendar import QUARTERS
from sync_service.documents.master_workbook import master_workbook_bytes
from sync_service.master import model as master_model
from sync_service.master import performance, reports
from sync_service.master.allocations import allocation_of
from sync_service.master.grouping import groups
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.context import year_schema
from sync_service.platform.errors import NotFound
from sync_service.web.base import XLSX, bp, formats, login_required
from sync_service.web.charts import Row, bar_chart, cents
from sync_service.web.refusals import refused_as_http


@bp.get("/master")
@login_required
def master() -> ResponseReturnValue:
    """The master budget by region x fiscal quarter against allocations, with a chart; filter by channel or BU."""
    user, schema = g.web_user, app_schema()
    channel, unit = request.args.get("channel", ""), request.args.get("business_unit", "")
    view = master_model.load(app_store(), schema, user)
    table, months = view.table, view.months
    chosen = np.ones(len(table), dtype=bool)
    if channel:
        chosen &= (table["channel"] == channel).to_numpy()
    if unit:
        chosen &= (table["business_unit"] == unit).to_numpy()
    if not chosen.all():
        table, months = table[chosen], months[chosen]
    long = rollup(table, schema, by=["region"], period="quarter", months=months) if len(table) else None
    regions = list(view.allocation_regions)
    grid = {r: dict.fromkeys(QUARTERS, 0) for r in regions}
    if long is not None:
        for row in long.itertuples():
            if row.region in grid:
                grid[row.region][row.period] = int(row.cents)
    rows = []
    for region in regions:
        allocation = {q: allocation_of(view.allocations, region, q, channel or None) for q in QUARTERS}
        planned = grid[region]
        year = allocation_of(view.allocations, region, QUARTERS, channel or None)
        total = sum(planned.values())
        over = [q for q in QUARTERS if allocation[q] is not None and planned[q] > allocation[q]]
        rows.append(
            {
                "region": region,
                "planned": planned,
                "allocation": allocation,
                "total": total,
                "year_allocation": year,
                "over": over,
                "over_year": year is not None and total > year,
            }
        )
    totals = {
        "planned": {q: sum(r["planned"][q] for r in rows) for q in QUARTERS},
        "allocation": {q: _sum_of_all([r["allocation"][q] for r in rows]) for q in QUARTERS},
        "total": sum(r["total"] for r in rows),
        "year_allocation": _sum_of_all([r["year_allocation"] for r in rows]),
    }
    cur = schema.config.reporting_currency
    scope = " and ".join(x for x in (channel, unit) if x)
    chart = bar_chart(
        chart_id="master-chart",
        title=f"Planned spend by region against allocation, {schema.calendar.label}"
        + (f", {scope} only" if scope else "")
        + f" ({cur})",
        axis=f"Planned spend ({cur})",
        series=[("Planned", "#1f6fb2")],
        rows=[Row(r["region"], (cents(r["total"]),), cents(r["year_allocation"])) for r in rows],
        label=formats().compact,
        target="Allocation",
        flag="Over allocation",
        key_name="region",
    )
    teams = sorted(set(table["team_id"])) if len(table) else []
    return render_template(
        "master.html",
        rows=rows,
        totals=totals,
        total=totals["total"],
        chart=chart,
        version=view.version,
        channels=schema["channel"].choices,
        units=schema["business_unit"].choices,
        channel=channel,
        unit=unit,
        teams=teams,
        quarters=QUARTERS,
        allocation_notes=_allocation_notes(view, channel, unit, rows),
        currency=cur,
    )


def _sum_of_all(values: list[int | None]) -> int | None:
    """The sum of amounts when every one is known; None when any is missing (a partial total would mislead)."""
    return None if not values or any(v is None for v in values) else sum(v for v in values if v is not None)


def _allocation_notes(view: Any, channel: str, unit: str, rows: list[dict[str, Any]]) -> list[str]:
    """What the allocation columns compare with, in words, when the page is filtered or shows a marketer's teams.

    Allocations are set by region and quarter, for all channels together or for a channel
    (`allocation_of`); never by business unit.
    """
    notes = []
    if channel:
        cells = [r["allocation"][q] for r in rows for q in QUARTERS]
        if all(c is None for c in cells):
            notes.append(
                f"Allocations are set by region and quarter for all channels together; none is set for {channel} "
                "alone, so the allocation columns are empty while the channel filter is on. Choose All channels "
                "to compare the plans with the allocations."
            )
        else:
            notes.append(
                f"The allocations shown are {channel}'s own, where finance set one for the channel; "
                "where none is set, the region's allocation covers all channels together and is not shown."
            )
    if unit:
        notes.append(
            "Allocations are not set by business unit: the allocation shown is the whole region's"
            + (f" for {channel}" if channel else "")
            + f", against the plans of {unit} alone."
        )
    if view.visible is not None:
        notes.append("Planned is your teams' plans; the allocation is the whole region's.")
    return notes


@bp.get("/actuals")
@login_required
def actuals() -> ResponseReturnValue:
    """Plan vs actual: spend to date, pacing and year-end forecast by region (and channel), as charts."""
    user, schema = g.web_user, app_schema()
    by = "channel" if request.args.get("by") == "channel" else "region"
    method = request.args.get("method", "run_rate")
    if method not in ("run_rate", "phasing"):
        abort(400, "method is run_rate or phasing")
    day = dt.date.today()
    view = master_model.load(app_store(), schema, user)
    closed = closed_months(schema.calendar, day)
    frame = reports.reporting_measures(view, [by], closed, method)
    sums = frame.groupby(by, sort=True)[["planned", "planned_to_date", "actual", "forecast"]].sum()
    fraction = elapsed_fraction(schema.calendar, day)
    rows = []
    for key, row in sums.iterrows():
        rows.append(_pace_row(str(key), row, fraction))
    totals = _pace_row("total", sums.sum(), fraction) if rows else None
    cur = schema.config.reporting_currency
    label = formats().compact
    spend = bar_chart(
        chart_id="spend-to-date",
        title=f"Actual spend to date against the plan to date, by {by} ({cur})",
        axis=f"Spend to date ({cur})",
        series=[("Actual", "#1f6fb2")],
        rows=[Row(r["key"], (cents(r["actual"]),), cents(r["to_date"])) for r in rows],
        label=label,
        target="Planned to date",
        flag="Ahead of plan",
        key_name=by,
    )
    words = "run rate" if method == "run_rate" else "remaining plan"
    year = bar_chart(
        chart_id="year-end",
        title=f"Year-end forecast ({words}) against the year's plan, by {by} ({cur})",
        axis=f"Spend in the year ({cur})",
        series=[("Forecast", "#c77c1f")],
        rows=[Row(r["key"], (cents(r["forecast"]),), cents(r["planned"])) for r in rows],
        label=label,
        target="Planned (year)",
        flag="Forecast over plan",
        key_name=by,
    )
    return render_template(
        "actuals.html",
        rows=rows,
        totals=totals,
        by=by,
        method=method,
        spend=spend,
        year=year,
        closed=closed,
        day=day,
        source="the finance system's import" if view.actuals_import else "the plans",
        currency=cur,
        pace_ahead=PACE_AHEAD,
    )


PACE_AHEAD = 1.1  # pacing above this is flagged: spend runs more than a tenth ahead of the year gone


def _pace_row(key: str, row: Any, fraction: float) -> dict[str, Any]:
    """One row of plan vs actual in reporting cents, with its pacing and what to flag in words."""
    pace = float(pacing(np.array([row["actual"]]), np.array([row["planned"]]), fraction)[0])
    out = {
        "key": key,
        "planned": int(row["planned"]),
        "to_date": int(row["planned_to_date"]),
        "actual": int(row["actual"]),
        "forecast": int(row["forecast"]),
        "pacing": None if np.isnan(pace) else pace,
    }
    flags = []
    if out["pacing"] is not None and out["pacing"] > PACE_AHEAD:
        flags.append("ahead of pace")
    if out["forecast"] > out["planned"]:
        flags.append(f"forecast over plan by {formats().amount(out['forecast'] - out['planned'], _currency())}")
    out["flags"] = flags
    return out


def _currency() -> str:
    return str(app_schema().config.reporting_currency)


@bp.get("/performance")
@login_required
def performance_page() -> ResponseReturnValue:
    """What the spend bought: spend against pipeline by channel, cost per lead against target by region, a table."""
    user, schema = g.web_user, app_schema()
    period = request.args.get("period", "FY")
    view, per_line = performance.for_user(app_store(), schema, user)
    with refused_as_http(400):
        span = performance.period_named(view, period)
    names = ("spend", "crm_cost", "cost_difference", "leads", "mqls", "opportunities", "won", "pipeline", "revenue",
             "cost_per_lead", "pipeline_roi", "roi")  # fmt: skip
    measures = [performance.BY_NAME[n] for n in names]
    tables = {}
    for by in ("region", "channel"):
        keys, codes = groups(view, [by])
        sums = performance.Sums.of(per_line, codes, len(keys))
        rows = []
        for g_, key in enumerate(keys):
            scope = performance.target_scope(view, [by], key)
            figures = {m.name: performance.figure(view, sums, g_, span, m, scope) for m in measures}
            rows.append({"key": key[0], "cells": _cells(figures)})
        tables[by] = rows
    everything: dict[str, Any] = {}
    if len(view.table):  # the whole of what the user sees: the figures of no grouping, ratios of the sums
        _, codes = groups(view, [])
        sums = performance.Sums.of(per_line, codes, 1)
        scope = performance.target_scope(view, [], ())
        everything = _cells({m.name: performance.figure(view, sums, 0, span, m, scope) for m in measures})
    cur = schema.config.reporting_currency
    label = formats().compact
    by_channel, by_region = tables["channel"], tables["region"]
    roi_chart = bar_chart(
        chart_id="pipeline-per-spend",
        title=f"Pipeline per unit of spend by channel, {formats().period(span.label, schema.calendar)}",
        axis="Pipeline per unit of actual spend",
        series=[("Pipeline per unit of spend", "#2e8b57")],
        rows=[_chart_row(r, "pipeline_roi", "pipeline_roi-expected") for r in by_channel],
        label=label,
        target="The plan's expectation",
        flag="Below the plan's expectation",
        worse="below",
        key_name="channel",
    )
    cpl_chart = bar_chart(
        chart_id="cost-per-lead",
        title=f"Cost per lead by region against target, {formats().period(span.label, schema.calendar)} ({cur})",
        axis=f"Cost per lead ({cur})",
        series=[("Cost per lead", "#1f6fb2")],
        rows=[_chart_row(r, "cost_per_lead", "cost_per_lead-target") for r in by_region],
        label=label,
        target="Target",
        flag="Over target",
        key_name="region",
        note="A region without a bar's marker has no target for the period (the organisation file).",
    )
    return render_template(
        "performance.html",
        tables=tables,
        columns=COLUMNS,
        everything=everything,
        period=span.label,
        periods=["FY", *QUARTERS],
        roi_chart=roi_chart,
        cpl_chart=cpl_chart,
        currency=cur,
        results=view.outcomes_import is not None,
    )


# The performance tables' columns: (measure, which figure, header); money columns in the reporting currency.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("spend", "actual", "Spend"),
    ("leads", "actual", "Leads"),
    ("leads", "target", "Target leads"),
    ("mqls", "actual", "MQLs"),
    ("opportunities", "actual", "Opportunities"),
    ("won", "actual", "Won opportunities"),
    ("pipeline", "actual", "Pipeline"),
    ("pipeline", "expected", "Expected pipeline"),
    ("revenue", "actual", "Closed-won revenue"),
    ("cost_per_lead", "actual", "Cost per lead"),
    ("cost_per_lead", "target", "Target cost per lead"),
    ("pipeline_roi", "actual", "Pipeline per unit of spend"),
    ("pipeline_roi", "expected", "Expected pipeline per unit of spend"),
    ("roi", "actual", "ROI (revenue less spend, over spend)"),
    ("crm_cost", "actual", "CRM cost"),
    ("cost_difference", "actual", "CRM cost less actual spend"),
)


def _cells(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each column's cell: its text, its exact value as the domain holds it (cents, hundredths, a ratio), a flag."""
    out = {}
    for name, which, _ in COLUMNS:
        fig = figures[name]
        value = getattr(fig, which)
        cell = {"text": _shown_figure(fig, which), "raw": "" if value is None else repr(value), "notes": fig.notes}
        cell["number"] = _number(fig, value)
        if name == "cost_per_lead" and which == "actual" and value is not None and fig.target is not None:
            cell["over"] = value > fig.target
        out[name if which == "actual" else f"{name}-{which}"] = cell
    return out


def _chart_row(row: dict[str, Any], measure: str, target: str) -> Row:
    """A performance table row as a chart's bar: its figure and the figure it is held against."""
    return Row(row["key"], (row["cells"][measure]["number"],), row["cells"][target]["number"])


def _number(figure: Any, value: Any) -> Decimal | None:
    """A figure in the units a chart draws: currency units, whole units of a count, the ratio."""
    if value is None:
        return None
    if figure.measure.unit == performance.RATIO:
        return Decimal(repr(float(value)))
    return Decimal(int(value)) / 100


def _shown_figure(figure: Any, which: str = "actual") -> str:
    """A figure as the page shows it: money in the currency's decimals, whole counts, two decimals; '' for no data."""
    value = getattr(figure, which)
    if value is None:
        return ""
    unit = figure.measure.unit
    if unit == performance.RATIO:
        return formats().ratio(value)
    if unit == performance.COUNT:
        return formats().count(Decimal(int(value)) / 100)
    return formats().amount(int(value), _currency())


@bp.get("/download/master.xlsx")
@login_required
def download_master() -> ResponseReturnValue:
    _, data = master_workbook_bytes(app_store(), app_schema(), g.web_user, dt.date.today())
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name="master.xlsx")


@bp.get("/year-over-year")
@login_required
def year_over_year_page() -> ResponseReturnValue:
    """The year's plan against the year before: its plan, actual spend and latest estimate, by region or channel."""
    user, schema = g.web_user, app_schema()
    by = request.args.get("by", "region")
    if by not in ("region", "channel"):
        by = "region"
    this, earlier, table, missing = None, None, None, None
    with refused_as_http():
        this = master_model.load(app_store(), schema, user)
    try:
        earlier = year_schema(schema, schema.calendar.year - 1)
    except NotFound as exc:
        missing = exc.detail
    if earlier is not None:
        with refused_as_http():
            last = master_model.load(app_store(), earlier, user)
        table = reports.year_over_year_table(this, last, by)  # the workbook's and the push's table
    totals = None
    if table is not None:
        _, kinds, rows = table
        totals = [_sum_of_all([r[i] for r in rows]) if kind == "money" else None for i, kind in enumerate(kinds)]
    return render_template(
        "year_over_year.html",
        by=by,
        table=table,
        totals=totals,
        this_year=schema.calendar.label,
        last_year=earlier.calendar.label if earlier is not None else None,
        missing=missing,
        zip=zip,
        currency=schema.config.reporting_currency,
    )
