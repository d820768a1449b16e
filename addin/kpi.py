"""What the money buys: cost per lead and per MQL, pipeline and revenue per unit of spend, against targets.

Expected leads, MQLs, pipeline and revenue belong to a line as a whole; by fiscal quarter they
are spread in proportion to the line's planned spend per quarter (evenly when it plans
none), which is how a campaign's outcome follows its money. Money is in the reporting
currency at plan rates; targets come from the organisation's configuration.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from addin import reporting as grain
from addin.fx import convert_cents
from addin.rollup import Period, RollupError
from sheet_templates.config import QUARTERS, TARGET_MEASURES
from sheet_templates.schema import PlanSchema, Role

OUTCOMES = ("leads", "mqls", "pipeline", "revenue")
MONEY_OUTCOMES = ("pipeline", "revenue")


def kpi_table(
    table: pd.DataFrame, schema: PlanSchema, by: Sequence[str] = ("region",), period: str = "year"
) -> pd.DataFrame:
    """One row per group (and quarter): spend, outcomes, unit costs, ROI, and targets with the gap to them.

    Money columns are in reporting-currency units; ratios are NaN where the divisor is zero;
    targets are NaN unless the grouping is by region only (targets are set per region).
    """
    by = list(by)
    unknown = [d for d in by if d not in schema or schema[d].role is not Role.DIMENSION]
    if unknown:
        raise RollupError(f"cannot group KPIs by {', '.join(unknown)}; use any of {', '.join(schema.dimension_names)}")
    period = Period(period) if period in ("year", "quarter") else None
    if period is None:
        raise RollupError("KPIs are by year or quarter")
    cfg = schema.config
    currencies = table["currency"].to_numpy(dtype=object).copy()
    money = sum(
        table[c].to_numpy(dtype=np.int64) != 0
        for c in ("actual", *MONEY_OUTCOMES, *(m.name for m in schema.month_columns))
    )
    unpriced = np.flatnonzero((currencies == "") & (money > 0))
    if len(unpriced):
        raise RollupError(f"row {int(table['_row'].iloc[unpriced[0]])}: a line with amounts has no currency")
    currencies[currencies == ""] = cfg.reporting_currency  # only lines without any amount: nothing to convert
    labels, planned = grain.period_cents(table.assign(currency=currencies), schema, period.value)
    total = planned.sum(axis=1, keepdims=True)
    share = np.divide(planned, total, out=np.full(planned.shape, 1 / len(labels)), where=total != 0)

    frames = []
    for j, label in enumerate(labels):
        frame = table[by].copy() if by else pd.DataFrame(index=table.index)
        if period is Period.QUARTER:
            frame["period"] = label
        frame["spend"] = planned[:, j] / 100
        # Actual spend is a year-to-date figure: it cannot be put into quarters, so it is shown for the year only.
        actual = convert_cents(table["actual"].to_numpy(dtype=np.int64), currencies, cfg.plan_rates) / 100
        frame["actual_spend"] = actual if period is Period.YEAR else np.nan
        for outcome in OUTCOMES:
            values = table[outcome].to_numpy(dtype=np.int64)
            if outcome in MONEY_OUTCOMES:
                values = convert_cents(values, currencies, cfg.plan_rates) / 100
            frame[outcome] = values * share[:, j]
        frames.append(frame)
    keys = by + (["period"] if period is Period.QUARTER else [])
    long = pd.concat(frames, ignore_index=True)
    out = long.groupby(keys, sort=True).sum().reset_index() if keys else long.sum().to_frame().T
    if not keys:
        out = out[["spend", "actual_spend", *OUTCOMES]].astype(float)
    if period is Period.QUARTER:
        out["actual_spend"] = np.nan  # summing blanks gives 0, which would read as "nothing spent"

    def ratio(a: str, b: str) -> np.ndarray:
        num, den = out[a].to_numpy(dtype=float), out[b].to_numpy(dtype=float)
        return np.divide(num, den, out=np.full(len(out), np.nan), where=den != 0)

    out["cost_per_lead"] = ratio("spend", "leads")
    out["cost_per_mql"] = ratio("spend", "mqls")
    out["pipeline_roi"] = ratio("pipeline", "spend")
    out["revenue_roi"] = ratio("revenue", "spend")
    out["actual_cost_per_lead"] = ratio("actual_spend", "leads") if period is Period.YEAR else np.nan
    for measure in TARGET_MEASURES:
        target = np.full(len(out), np.nan)
        if by == ["region"]:
            for i, region in enumerate(out["region"].tolist()):
                quarters = [out["period"].iloc[i]] if period is Period.QUARTER else list(QUARTERS)
                values = [cfg.target(region, q, measure) for q in quarters]
                if all(v is not None for v in values):  # a year target needs all four quarters' targets
                    target[i] = float(sum(values))
        out[f"target_{measure}"] = target
        out[f"gap_{measure}"] = out[measure].to_numpy(dtype=float) - target
    return out
