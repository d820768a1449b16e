"""The money grain: how a plan's amounts become reporting-currency cents, in one place.

Planned spend is converted **per line and fiscal month** at the plan (budget) rate of the
line's currency and rounded half away from zero to the cent; every planned total (a month,
a quarter, the year, by any dimension) is the sum of those converted cents, so totals at
every grain add up exactly. Amounts without a month (committed, actual, expected pipeline
and revenue) are converted per line. The Excel template's quarter formulas round the same
way (`ROUND(month * rate, 2)` per month), so a template's Summary and Plansheet agree to
the cent. See docs/money.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from addin.fx import convert_cents
from sheet_templates.calendar import QUARTERS
from sheet_templates.schema import PlanSchema


def month_cents(table: pd.DataFrame, schema: PlanSchema) -> np.ndarray:
    """Planned spend per line and fiscal month in reporting cents: an int64 array of lines x 12."""
    months = [c.name for c in schema.month_columns]
    if not len(table):
        return np.zeros((0, len(months)), dtype=np.int64)
    grid = table[months].to_numpy(dtype=np.int64)
    currencies = table["currency"].to_numpy(dtype=object)
    rates = schema.config.plan_rates
    return np.column_stack([convert_cents(grid[:, j], currencies, rates) for j in range(grid.shape[1])])


def quarter_cents(months: np.ndarray) -> np.ndarray:
    """Reporting cents per line and fiscal quarter (lines x 4) from `month_cents`."""
    return months.reshape(len(months), len(QUARTERS), 3).sum(axis=2)


def line_cents(table: pd.DataFrame, schema: PlanSchema, column: str) -> np.ndarray:
    """A money column without a month (committed, actual, pipeline, revenue) per line in reporting cents."""
    values = table[column].to_numpy(dtype=np.int64)
    if not len(table):
        return values
    return convert_cents(values, table["currency"].to_numpy(dtype=object), schema.config.plan_rates)


def period_cents(table: pd.DataFrame, schema: PlanSchema, period: str) -> tuple[list[str], np.ndarray]:
    """Planned reporting cents per line and period ("month", "quarter" or "year"): (labels, lines x periods)."""
    return period_of(month_cents(table, schema), schema, period)


def period_of(months: np.ndarray, schema: PlanSchema, period: str) -> tuple[list[str], np.ndarray]:
    """`month_cents` (lines x 12) by period ("month", "quarter" or "year"): (labels, lines x periods)."""
    if period == "month":
        return [c.name for c in schema.month_columns], months
    if period == "quarter":
        return list(QUARTERS), quarter_cents(months)
    return [schema.calendar.label], months.sum(axis=1, keepdims=True)
