"""What each formula of a plan sheet computes, from the lines it holds, at the money grain (for cached values).

The Plan's row formulas (planned total and variance in the line's currency; each quarter in the
reporting currency, each month converted at the plan rate and rounded to the cent) and the
template Summary's planned spend by channel and quarter. Conversion is
`sheet_templates.money.scale_cents`, the one the read model uses, so a workbook's cached values
are the service's figures for its lines. Used by the plan template and the functions workbook.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np

from sheet_templates.errors import PlansheetError
from sheet_templates.money import scale_cents, to_cents
from sheet_templates.schema import Column, PlanSchema


class PlanFigures:
    """What each formula the template writes computes, from the lines it is pre-filled with, at the money grain.

    The Plan's row formulas (planned total and variance in the line's currency, each quarter in the
    reporting currency: each month converted at the plan rate and rounded to the cent) and the
    Summary's planned spend by channel and quarter (a reforecast's closed months converted as the
    read model converts actual spend: the spend to the end of a month, rounded once, each month the
    difference). Conversion is `sheet_templates.money.scale_cents`, the one the read model uses, so a
    pre-filled template's cached values are the service's figures for those lines.
    """

    def __init__(self, schema: PlanSchema, lines: list[Mapping[str, Any]], closed: list[str]) -> None:
        self.schema = schema
        months = list(schema.month_columns)
        rates = schema.config.plan_rates
        self.month_units = [[_amount(line, c.name) for c in months] for line in lines]
        self.actual = [_amount(line, "actual") for line in lines]
        self.channel = [str(line.get("channel") or "").casefold() for line in lines]
        cents = np.array([[to_cents(v) or 0 for v in row] for row in self.month_units], dtype=np.int64)
        cents = cents.reshape(len(lines), len(months))
        self.rated = np.zeros(len(lines), dtype=bool)
        self.by_month = np.zeros_like(cents)  # each month converted on its own: the Plan's quarter columns
        self.summary = np.zeros_like(cents)  # the Summary's months: closed ones cumulatively
        shut = [c.name in set(closed) for c in months]
        for code, rate in rates.items():
            mask = np.array([line.get("currency") == code for line in lines], dtype=bool)
            if not mask.any():
                continue
            self.rated |= mask
            mine = cents[mask]
            by_month = np.column_stack([scale_cents(mine[:, j], rate) for j in range(len(months))])
            cumulative = np.column_stack([scale_cents(c, rate) for c in np.cumsum(mine, axis=1).T])
            summary = by_month.copy()
            summary[:, shut] = np.diff(cumulative, axis=1, prepend=0)[:, shut]
            self.by_month[mask], self.summary[mask] = by_month, summary

    def row_value(self, index: int, column: Column) -> float:
        """The value of the Plan's formula `column` in the table's `index`-th row (an empty row: 0)."""
        if index >= len(self.month_units):
            return 0
        total = float(sum(self.month_units[index], Decimal(0)))
        if column.name == "planned_total":
            return total
        if column.name == "variance":
            return total - float(self.actual[index])
        if column.quarter:
            if not self.rated[index]:
                return 0  # IFERROR: a line without a known currency
            return int(self.by_month[index, 3 * column.quarter - 3 : 3 * column.quarter].sum()) / 100
        raise PlansheetError(f"the template has no value for its formula column {column.name!r}")

    def planned(self, channel: str | None) -> list[int]:
        """Reporting cents per quarter planned in `channel` (matched as Excel does, any case); None: every line."""
        chosen = np.array([channel is None or c == channel.casefold() for c in self.channel], dtype=bool)
        quarters = self.summary[chosen].reshape(-1, 4, 3).sum(axis=2) if len(chosen) else np.zeros((0, 4))
        return [int(v) for v in quarters.sum(axis=0)] if len(quarters) else [0, 0, 0, 0]


def _amount(line: Mapping[str, Any], name: str) -> Decimal:
    """A pre-filled money cell as the formulas read it: a number, or 0 when empty."""
    value = line.get(name)
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise PlansheetError(f"the line {line.get('line_id')!r} holds {value!r} in {name}, not an amount")
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
