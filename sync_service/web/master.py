"""The master's pages: the master against allocations, plan against actual, performance, the workbook."""

from __future__ import annotations

import datetime as dt
import io
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
from markupsafe import Markup, escape

from addin.forecast import closed_months, elapsed_fraction, pacing
from addin.rollup import rollup
from sheet_templates.calendar import QUARTERS
from sheet_templates.money import display_money
from sync_service.documents.master_workbook import master_workbook_bytes
from sync_service.master import model as master_model
from sync_service.master import performance, reports
from sync_service.master.allocations import allocation_of
from sync_service.master.grouping import groups
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.context import year_schema
from sync_service.platform.errors import NotFound
from sync_service.web.base import XLSX, bp, login_required
from sync_service.web.refusals import refused_as_http


@bp.get("/master")
@login_required
def master() -> ResponseReturnValue:
    """The master budget by region x fiscal quarter against allocations, with a chart; filter by channel or BU."""
    user, schema = g.web_user, app_schema()
    channel, unit = request.args.get("channel", ""), request.args.get("business_unit", "")
    view = master_model.load(app_store(), schema, user)
    table = view.table
    if channel:
        table = table[table["channel"] == channel]
    if unit:
        table = table[table["business_unit"] == unit]
    long = rollup(table, schema, by=["region"], period="quarter") if len(table) else None
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
        rows.append({"region": region, "planned": planned, "allocation": allocation, "total": sum(planned.values())})
    total = sum(r["total"] for r in rows)
    chart = _chart(rows, schema.config.reporting_currency)
    teams = sorted(set(table["team_id"])) if len(table) else []
    return render_template(
        "master.html",
        rows=rows,
        total=total,
        chart=chart,
        version=view.version,
        channels=schema["channel"].choices,
        units=schema["business_unit"].choices,
        channel=channel,
        unit=unit,
        teams=teams,
        money=display_money,
        currency=schema.config.reporting_currency,
    )


def _chart(rows: list[dict[str, Any]], currency: str) -> Markup:
    """Planned spend against allocation by region."""
    return _bars(
        [r["region"] for r in rows],
        [
            ("Planned", "#1f6fb2", [r["total"] for r in rows]),
            ("Allocation", "#9aa9b9", [sum(v or 0 for v in r["allocation"].values()) for r in rows]),
        ],
        f"Planned vs allocation ({currency})",
    )


def _bars(labels: list[str], series: list[tuple[str, str, list[int]]], title: str) -> Markup:
    """A grouped bar chart of cents as an inline SVG (no script, no external file)."""
    width, height, top, bottom, left = 760, 300, 30, 40, 90
    peak = max([1, *(v for _, _, values in series for v in values)])
    band = (width - left - 20) / max(1, len(labels))
    bar = band / (len(series) + 1)
    plot = height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="{left}" y="18" font-size="14">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot}" x2="{width - 20}" y2="{top + plot}" stroke="#666"/>',
    ]
    for tick in range(5):
        value = peak * tick / 4
        y = top + plot - plot * tick / 4
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{value / 100:,.0f}</text>')
    for i, label in enumerate(labels):
        x0 = left + i * band + bar / 2
        for j, (name, colour, values) in enumerate(series):
            h = plot * max(values[i], 0) / peak
            parts.append(
                f'<rect class="bar" data-series="{escape(name)}" data-region="{escape(label)}" '
                f'data-value="{values[i] / 100:.2f}" x="{x0 + j * bar:.1f}" y="{top + plot - h:.1f}" '
                f'width="{bar * 0.9:.1f}" height="{h:.1f}" fill="{colour}"><title>{escape(name)} '
                f"{escape(label)}: {values[i] / 100:,.2f}</title></rect>"
            )
        parts.append(
            f'<text x="{x0 + bar:.1f}" y="{height - bottom + 16}" font-size="12" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    for j, (name, colour, _) in enumerate(series):
        parts.append(f'<rect x="{left + j * 150}" y="{height - 14}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{left + j * 150 + 14}" y="{height - 5}" font-size="12">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


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
        pace = float(pacing(np.array([row["actual"]]), np.array([row["planned"]]), fraction)[0])
        rows.append(
            {
                "key": key,
                "planned": int(row["planned"]),
                "to_date": int(row["planned_to_date"]),
                "actual": int(row["actual"]),
                "forecast": int(row["forecast"]),
                "pacing": None if np.isnan(pace) else round(pace, 2),
            }
        )
    spend = _bars(
        [r["key"] for r in rows],
        [
            ("Planned to date", "#9aa9b9", [r["to_date"] for r in rows]),
            ("Actual", "#1f6fb2", [r["actual"] for r in rows]),
        ],
        f"Spend to date ({schema.config.reporting_currency})",
    )
    year = _bars(
        [r["key"] for r in rows],
        [
            ("Planned (year)", "#9aa9b9", [r["planned"] for r in rows]),
            ("Forecast", "#c77c1f", [r["forecast"] for r in rows]),
        ],
        f"Year-end forecast, {method.replace('_', ' ')} ({schema.config.reporting_currency})",
    )
    return render_template(
        "actuals.html",
        rows=rows,
        by=by,
        method=method,
        spend=spend,
        year=year,
        closed=closed,
        day=day,
        source="the finance system's import" if view.actuals_import else "the plans",
        money=display_money,
    )


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
            rows.append({"key": key[0], "figures": figures})
        tables[by] = rows
    cur = schema.config.reporting_currency
    by_channel = tables["channel"]
    spend_chart = _bars(
        [r["key"] for r in by_channel],
        [
            ("Actual spend", "#1f6fb2", [r["figures"]["spend"].actual or 0 for r in by_channel]),
            ("Pipeline", "#2e8b57", [r["figures"]["pipeline"].actual or 0 for r in by_channel]),
        ],
        f"Spend against pipeline by channel, {span.label} ({cur})",
    )
    by_region = tables["region"]
    cpl_chart = _bars(
        [r["key"] for r in by_region],
        [
            ("Cost per lead", "#1f6fb2", [r["figures"]["cost_per_lead"].actual or 0 for r in by_region]),
            ("Target", "#9aa9b9", [r["figures"]["cost_per_lead"].target or 0 for r in by_region]),
        ],
        f"Cost per lead against target by region, {span.label} ({cur})",
    )
    return render_template(
        "performance.html",
        tables=tables,
        measures=measures,
        period=span.label,
        periods=["FY", *QUARTERS],
        spend_chart=spend_chart,
        cpl_chart=cpl_chart,
        shown=_shown_figure,
        currency=cur,
        results=view.outcomes_import is not None,
    )


def _shown_figure(figure: Any, which: str = "actual") -> str:
    """A figure as the page shows it: money to the cent, counts, ratios to two decimals; blank for no data."""
    value = getattr(figure, which)
    if value is None:
        return ""
    unit = figure.measure.unit
    if unit == performance.RATIO:
        return f"{float(value):,.2f}"
    if unit == performance.COUNT:
        units = performance.units(figure.measure, value)
        return f"{units:,.0f}" if float(units).is_integer() else f"{units:,.2f}"
    return display_money(int(value))


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
    return render_template(
        "year_over_year.html",
        by=by,
        table=table,
        this_year=schema.calendar.label,
        last_year=earlier.calendar.label if earlier is not None else None,
        missing=missing,
        zip=zip,
        money=display_money,
        currency=schema.config.reporting_currency,
    )
