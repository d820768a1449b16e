"""Benchmark PS_ROLLUP and PS_VARIANCE as Excel calls them against the bare pandas computation.

100,000 plan lines are passed the way xlwings hands a range to a UDF (a list of rows, None
for blank cells, floats for numbers). The baseline is the same computation in pandas on an
already-built DataFrame (the cost the binding adds on top is what is measured).

    python benchmarks/functions.py [--lines 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import platform
import time
from decimal import Decimal

import numpy as np
import pandas as pd

from addin.hostvalues import ExcelError
from addin.sheet_functions import REGISTRY, current_schema
from sheet_templates.samples import sample_lines


def excel_rows(n: int) -> list[list[object]]:
    """The Plan table as Excel passes it: a header row, then rows with None for blanks and floats."""
    schema = current_schema()
    lines = []
    for i, region in enumerate(schema.config.regions):
        lines += sample_lines(schema, region, n // len(schema.config.regions) + 1, seed=i)
    rows = [[c.label for c in schema.columns]]
    for line in lines[:n]:
        row = []
        for col in schema.columns:
            v = line.get(col.name)
            row.append(float(v) if isinstance(v, Decimal | int) else (None if v is None else v))
        rows.append(row)
    return rows


def best(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    schema = current_schema()
    rows = excel_rows(args.lines)
    months = [c.name for c in schema.month_columns]
    rates = {k: float(v) for k, v in schema.config.plan_rates.items()}
    frame = pd.DataFrame(rows[1:], columns=[c.name for c in schema.columns])
    frame[months] = frame[months].fillna(0.0)

    def pandas_rollup() -> pd.DataFrame:
        rate = frame["currency"].map(rates).to_numpy()
        quarters = frame[months].to_numpy().reshape(len(frame), 4, 3).sum(axis=2) * rate[:, None]
        q = pd.DataFrame(np.round(quarters, 2), columns=["Q1", "Q2", "Q3", "Q4"])
        q["channel"] = frame["channel"].to_numpy()
        return q.groupby("channel").sum()

    plan_col = [[sum(r[schema[m].index - 1] or 0.0 for m in months)] for r in rows[1:]]
    actual_col = [[r[schema["actual"].index - 1] or 0.0] for r in rows[1:]]
    pair = pd.DataFrame({"plan": [r[0] for r in plan_col], "actual": [r[0] for r in actual_col]})

    def pandas_variance() -> pd.Series:
        return pair["plan"] - pair["actual"]

    rollup = REGISTRY["PS_ROLLUP"]
    variance = REGISTRY["PS_VARIANCE"]
    for check in (rollup.call(rows, "channel", "quarter"), variance.call(plan_col, actual_col)):
        if isinstance(check, ExcelError):
            raise SystemExit(f"the function failed, so timing it would mean nothing: {check}")
    results = {
        "PS_ROLLUP by channel x quarter": (
            best(args.repeat, lambda: rollup.call(rows, "channel", "quarter")),
            best(args.repeat, pandas_rollup),
        ),
        "PS_VARIANCE (amount)": (
            best(args.repeat, lambda: variance.call(plan_col, actual_col)),
            best(args.repeat, pandas_variance),
        ),
    }
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, {platform.system()}")
    print(f"input: {args.lines:,} plan lines passed as a list of rows (as xlwings passes a range)")
    for name, (call, bare) in results.items():
        print(
            f"{name:<32} whole call {call * 1000:8.1f} ms   bare pandas {bare * 1000:7.1f} ms   "
            f"ratio {call / bare:6.1f}x"
        )
    print("targets: the whole call within 2x of the bare pandas computation, and well under a second")


if __name__ == "__main__":
    main()
