"""The views of the master: JSON for the API, rollup and variance; all projections of `Master`.

Each function takes a `Master` already scoped to its reader (`master.load(store, schema, user)`)
and computes nothing the read model does not hold: money is the read model's reporting cents
at the one grain, allocations are the ones in force, actuals the newest import.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from addin.forecast import closed_months, forecast
from addin.rollup import Period, RollupError, rollup
from addin.variance import remaining, variance, variance_flag, variance_pct
from sheet_templates.calendar import QUARTERS
from sheet_templates.master_workbook import Table, ValuesSheet
from sheet_templates.money import money_text as money
from sheet_templates.schema import ColumnType
from sync_service.master.allocations import allocation_of
from sync_service.master.grouping import dimensions, periods, sums
from sync_service.master.model import Master
from sync_service.platform.errors import ServiceError

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def master_json(m: Master) -> dict[str, Any]:
    """The master as the API answers it: each team's approved plan and its lines (actual spend as in force)."""
    return {
        "version": m.version,
        **m.about,
        "teams": [
            {"team": h.team, "submission": h.submission, "version": h.version, "approved_at": h.approved_at}
            for h in m.held
        ],
        "lines": [{k: v for k, v in line.items() if k != "_row"} for line in m.lines],
    }


def allocations_json(m: Master) -> dict[str, Any]:
    """The allocations in force, of the regions the reader may see."""
    return {
        "revision": m.allocation_revision,
        **m.allocation_info,
        "currency": m.schema.config.reporting_currency,
        "allocations": [
            {"region": r, "quarter": q, "channel": c, "amount": money(cents), "cents": cents}
            for (r, q, c), cents in sorted(m.allocations.items())
            if r in m.allocation_regions
        ],
    }


def region_allocations(m: Master) -> dict[str, dict[str, int]]:
    """Region -> quarter -> the allocation in force (all channels) in reporting cents; unset quarters left out."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for region in m.schema.config.regions:
        for quarter in QUARTERS:
            value = allocation_of(m.allocations, region, quarter)
            if value is not None:
                out[region][quarter] = value
    return dict(out)


def rollup_json(m: Master, by: str | None, period: str | None, measure: str | None) -> dict[str, Any]:
    """Planned spend (or another measure) by the `by` dimensions and period, with the allocation where it applies."""
    schema = m.schema
    dims = dimensions(m.schema, by, "region")
    period, measure = period or "quarter", measure or "planned"
    if period not in {p.value for p in Period}:  # checked for every measure, not only the phased one
        raise ServiceError(f"unknown period {period!r}; use {', '.join(p.value for p in Period)}")
    try:
        long = rollup(m.table, schema, by=dims, period=period, measure=measure, months=m.months)
    except RollupError as exc:
        raise ServiceError(str(exc)) from None
    money_measure = measure == "planned" or schema[measure].type is ColumnType.MONEY
    finance = m.visible is None  # a marketer's totals are its teams', not the region's: no "remaining"
    rows = []
    for record in long.to_dict(orient="records"):
        cents = int(record.pop("cents"))
        row = {**record, "amount": money(cents) if money_measure else cents}
        if money_measure:
            row["cents"] = cents
        if measure == "planned" and period == "quarter" and set(dims) <= {"region", "channel"} and "region" in dims:
            allocated = allocation_of(m.allocations, record["region"], record["period"], record.get("channel"))
            if allocated is not None:
                row["allocation"] = money(allocated)
                if finance:
                    row["remaining"] = money(allocated - cents)
        rows.append(row)
    return {
        **m.about,
        "by": dims,
        "period": period,
        "measure": measure,
        "currency": schema.config.reporting_currency if money_measure else None,
        "rows": rows,
    }


def reporting_measures(m: Master, dims: list[str], closed: int, forecast_method: str | None = None) -> pd.DataFrame:
    """Per line, its `dims` and its money in reporting cents, from the read model.

    Columns: planned (the year), planned_to_date (the `closed` months), committed, actual, and
    with `forecast_method` the year-end forecast (run rate or remaining plan, in reporting cents).
    """
    frame = m.table[dims].copy()
    frame["planned"] = m.months.sum(axis=1)
    frame["planned_to_date"] = m.months[:, :closed].sum(axis=1)
    frame["committed"] = m.committed
    frame["actual"] = m.actual
    if forecast_method is not None:
        frame["forecast"] = forecast(m.months, m.actual, closed, forecast_method)
    return frame


def variance_json(m: Master, by: str | None, as_of: str | None) -> dict[str, Any]:
    """Plan to date against actual spend by the `by` dimensions, with the allocation and what remains of it."""
    schema = m.schema
    dims = dimensions(m.schema, by, "region")
    try:
        day = dt.date.fromisoformat(as_of) if as_of else dt.date.today()
    except (TypeError, ValueError):
        raise ServiceError(f"as_of {as_of!r} is not a date; use YYYY-MM-DD") from None
    closed = closed_months(schema.calendar, day)
    frame = reporting_measures(m, dims, closed)
    measures = ["planned", "planned_to_date", "committed", "actual"]
    if not dims:  # by=",": one grand total, as the rollup gives
        grouped = frame[measures].sum().to_frame().T
    else:
        grouped = frame.groupby(dims, sort=True)[measures].sum().reset_index() if len(frame) else frame
    rows = []
    for record in grouped.to_dict(orient="records"):
        values = {k: int(record.pop(k)) for k in measures}
        plan, actual = np.array([values["planned_to_date"]]), np.array([values["actual"]])
        pct = float(variance_pct(plan, actual)[0])
        row = {
            **record,
            **{k: money(v) for k, v in values.items()},
            "variance": money(int(variance(plan, actual)[0])),
            "variance_pct": None if np.isnan(pct) else round(pct, 6),
            "flag": str(variance_flag(plan, actual)[0]),
        }
        if set(dims) <= {"region", "channel"} and "region" in dims:
            allocated = allocation_of(m.allocations, record["region"], "year", record.get("channel"))
            if allocated is not None:
                row["allocation"] = money(allocated)
                if m.visible is None:
                    left = remaining(np.array([allocated]), np.array([values["committed"]]), actual)
                    row["remaining"] = money(int(left[0]))
        rows.append(row)
    return {
        **m.about,
        "by": dims,
        "as_of": day.isoformat(),
        "closed_months": closed,
        "actual_source": "finance import" if m.actuals_import else "plans",
        "currency": schema.config.reporting_currency,
        "rows": rows,
    }


def year_over_year_json(this: Master, last: Master, by: str | None, period: str | None) -> dict[str, Any]:
    """A year's plan against an earlier year's plan, actual spend and latest estimate, by dimensions and period.

    Periods are matched by their place in the year (this year's Q1 against last year's Q1); a
    group only one year has shows zero plan in the other. The earlier year's estimate is what
    its money will have been by its end as known now (actual in its closed months, its plan in
    the open ones); its actual is None for a period the finance export cannot split by month.
    """
    dims = dimensions(this.schema, by, "region")
    kind = period or "quarter"
    spans = periods(this.schema, kind)
    place = {p.label: spans[p.index].label for p in periods(last.schema, kind)}

    def in_this_years_periods(found: dict[tuple[Any, ...], int | None]) -> dict[tuple[Any, ...], int | None]:
        return {(*key[:-1], place[key[-1]]): value for key, value in found.items()}

    plan = sums(this, dims, kind, this.months)
    last_plan = in_this_years_periods(sums(last, dims, kind, last.months))
    last_actual = in_this_years_periods(sums(last, dims, kind, last.actual_months))
    last_estimate = in_this_years_periods(sums(last, dims, kind, last.estimate()))
    order = {span.label: k for k, span in enumerate(spans)}
    rows = []
    for key in sorted(set(plan) | set(last_plan), key=lambda k: (tuple(map(str, k[:-1])), order[k[-1]])):
        p, lp = plan.get(key) or 0, last_plan.get(key) or 0
        # A group the earlier year did not have spent nothing then; None: a period its export cannot split.
        la = last_actual.get(key, 0)
        le = last_estimate.get(key, 0)
        change = None if le is None else p - le
        rows.append(
            {
                **dict(zip(dims, key[:-1], strict=True)),
                "period": key[-1],
                "plan": money(p),
                "last_plan": money(lp),
                "last_actual": None if la is None else money(la),
                "last_estimate": None if le is None else money(le),
                "plan_vs_last_estimate": None if change is None else money(change),
                "plan_vs_last_estimate_pct": None if change is None or not le else round(change / le, 6),
                "cents": {"plan": p, "last_plan": lp, "last_actual": la, "last_estimate": le},
            }
        )
    return {
        **this.about,
        "year": this.schema.calendar.label,
        "against": last.schema.calendar.label,
        "against_version": last.version,
        "by": dims,
        "period": kind,
        "currency": this.schema.config.reporting_currency,
        "against_closed_months": last.closed_months,
        "rows": rows,
    }


def year_over_year_table(this: Master, last: Master, by: str) -> tuple[list[str], list[str], list[list[Any]]]:
    """(header, kinds, rows) of the year-over-year figures by `by` for the year: the workbook's and the push's."""
    labels = (this.schema.calendar.label, last.schema.calendar.label)
    rows = []
    for row in year_over_year_json(this, last, by, "year")["rows"]:
        c = row["cents"]
        change = None if c["last_estimate"] is None else c["plan"] - c["last_estimate"]
        rows.append([row[by], c["plan"], c["last_plan"], c["last_actual"], c["last_estimate"], change])
    header = [by.replace("_", " ").capitalize(), f"{labels[0]} plan", f"{labels[1]} plan", f"{labels[1]} actual",
              f"{labels[1]} estimate", "Change from the estimate"]  # fmt: skip
    return header, ["text", *["money"] * 5], rows


def year_over_year_sheet(this: Master, last: Master) -> Any:
    """The master workbook's "Year over year" sheet: the API's year-over-year figures by region and by channel."""
    labels = (this.schema.calendar.label, last.schema.calendar.label)
    tables = [Table(f"By {by}", *year_over_year_table(this, last, by)) for by in ("region", "channel")]
    note = (
        f"{labels[0]}'s plan against {labels[1]}'s plan, actual spend and latest estimate (actual spend in its closed "
        f"months, its plan in the open ones), {this.schema.config.reporting_currency} at each year's plan rates"
    )
    return ValuesSheet("Year over year", note, tables)
