"""Roll a plan table up by any dimensions and period grain, in integer cents.

The planned measure is phased by fiscal month, so it rolls up by month, fiscal quarter or
year; committed, actual and the KPIs are year-to-date figures without a period. Money is
converted to the reporting currency at the one grain of `addin.reporting` (per line and
month) before it is summed, so every period's totals add up to the year's.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np
import pandas as pd

from addin import reporting as grain
from sheet_templates.calendar import QUARTERS
from sheet_templates.errors import PlansheetError
from sheet_templates.schema import ColumnType, PlanSchema, Role


class Period(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class RollupError(PlansheetError):
    """A rollup was asked for a dimension, measure or period the plan does not have."""


def period_amounts(table: pd.DataFrame, schema: PlanSchema, period: Period | str) -> tuple[list[str], np.ndarray]:
    """Planned cents per line and period: (period labels, array of shape lines x periods)."""
    try:
        period = Period(period)
    except ValueError:
        raise RollupError(f"unknown period {period!r}; use {', '.join(p.value for p in Period)}") from None
    months = schema.month_columns
    grid = np.column_stack([table[c.name].to_numpy(dtype=np.int64) for c in months]) if len(months) else None
    if grid is None or grid.size == 0:
        grid = np.zeros((len(table), 12), dtype=np.int64)
    if period is Period.MONTH:
        return [m.name for m in schema.calendar.months], grid
    if period is Period.QUARTER:
        return list(QUARTERS), grid.reshape(len(table), 4, 3).sum(axis=2)
    return [schema.calendar.label], grid.sum(axis=1, keepdims=True)


def rollup(
    table: pd.DataFrame,
    schema: PlanSchema,
    by: Sequence[str] = ("region",),
    period: Period | str = Period.QUARTER,
    measure: str = "planned",
    *,
    reporting: bool = True,
    months: np.ndarray | None = None,
) -> pd.DataFrame:
    """Totals of `measure` by the `by` dimensions (and `period` for planned), as a long table of cents.

    Columns: the `by` dimensions, `period` (for the planned measure) and `cents`. With
    `reporting` money is converted to the reporting currency at plan rates first; `months`: the
    table's planned spend per line and fiscal month in reporting cents when the caller holds it.
    """
    by = list(by)
    unknown = [d for d in by if d not in schema or schema[d].role is not Role.DIMENSION]
    if unknown:
        raise RollupError(f"cannot roll up by {', '.join(unknown)}; use any of {', '.join(schema.dimension_names)}")
    if measure == "planned":
        try:
            Period(period)
        except ValueError:
            raise RollupError(f"unknown period {period!r}; use {', '.join(p.value for p in Period)}") from None
        if reporting and months is not None:  # the read model's planned spend per line and month, already converted
            labels, amounts = grain.period_of(months, schema, Period(period).value)
        elif reporting:
            labels, amounts = grain.period_cents(table, schema, Period(period).value)
        else:
            labels, amounts = period_amounts(table, schema, period)
        money = True
    elif (
        measure in schema
        and schema[measure].type in (ColumnType.MONEY, ColumnType.COUNT)
        and schema[measure].role is not Role.MONTH
    ):
        labels, amounts = ["total"], table[measure].to_numpy(dtype=np.int64)[:, None]
        money = schema[measure].type is ColumnType.MONEY
    else:
        raise RollupError(f"unknown measure {measure!r}; use planned, committed, actual or a KPI column")
    if money and reporting and measure != "planned" and len(table):
        amounts = grain.line_cents(table, schema, measure)[:, None]
    frame = table[by].copy() if by else pd.DataFrame(index=table.index)
    for j, label in enumerate(labels):
        frame[label] = amounts[:, j] if len(table) else np.zeros(0, dtype=np.int64)
    grouped = frame.groupby(by, sort=True, observed=True)[labels].sum() if by else frame[labels].sum().to_frame().T
    long = grouped.reset_index(drop=not by).melt(id_vars=by, value_vars=labels, var_name="period", value_name="cents")
    long["cents"] = long["cents"].astype(np.int64)
    order = {label: i for i, label in enumerate(labels)}
    long = long.sort_values([*by, "period"], key=lambda s: s.map(order) if s.name == "period" else s)
    return long.reset_index(drop=True)
