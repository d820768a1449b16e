"""Grouping by dimension and period: the one reading of `?by=` and `?period=` every view shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sheet_templates.calendar import QUARTERS
from sheet_templates.schema import PlanSchema
from sync_service.master.model import Estimate, Master
from sync_service.platform.errors import ServiceError


def dimensions(schema: PlanSchema, by: str | None, default: str) -> list[str]:
    """The dimensions `by` names ("region,channel"), or `default`'s; refused when unknown or repeated."""
    dims = [d.strip() for d in (by or default).split(",") if d.strip()]
    unknown = [d for d in dims if d not in schema.dimension_names]
    if unknown or len(set(dims)) != len(dims):
        raise ServiceError(f"cannot group by {by!r}; use any of {', '.join(schema.dimension_names)}, comma-separated")
    return dims


@dataclass(frozen=True)
class Period:
    label: str
    kind: str  # year, quarter or month
    index: int  # its column among the kind's periods
    months: tuple[int, ...]  # its fiscal months, 0-based

    @property
    def quarters(self) -> tuple[str, ...] | None:
        if self.kind == "year":
            return QUARTERS
        if self.kind == "quarter":
            return (self.label,)
        return None


def periods(schema: PlanSchema, kind: str) -> list[Period]:
    """The periods of one kind: the year, its quarters or its months (labelled m01..m12)."""
    if kind == "year":
        return [Period(schema.calendar.label, "year", 0, tuple(range(12)))]
    if kind == "quarter":
        return [Period(q, "quarter", k, tuple(range(3 * k, 3 * k + 3))) for k, q in enumerate(QUARTERS)]
    if kind == "month":
        return [Period(c.name, "month", k, (k,)) for k, c in enumerate(schema.month_columns)]
    raise ServiceError(f"period {kind!r}: use year, quarter or month")


def groups(view: Master, dims: list[str]) -> tuple[list[tuple[Any, ...]], np.ndarray]:
    """The groups of `view`'s lines by `dims` (sorted), and each line's group."""
    table = view.table
    if not len(table):
        return [], np.zeros(0, dtype=np.int64)
    if not dims:
        return [()], np.zeros(len(table), dtype=np.int64)
    frame = table[dims].astype(str)
    keys = pd.MultiIndex.from_frame(frame) if len(dims) > 1 else pd.Index(frame[dims[0]])
    codes, uniques = pd.factorize(keys, sort=True)
    names = [tuple(u) if isinstance(u, tuple) else (u,) for u in uniques]
    return names, codes.astype(np.int64)


def sums(
    view: Master, dims: list[str], kind: str, per_month: np.ndarray | Estimate | None
) -> dict[tuple[Any, ...], int | None]:
    """{(group..., period label): reporting cents} of `per_month` (lines x 12), summed as integers.

    `per_month` None (actual spend from an export without months): the year is `view.actual`, a
    quarter or month is None. An `Estimate` gives each period's estimate, None where it is unknown.
    """
    names, codes = groups(view, dims)
    out: dict[tuple[Any, ...], int | None] = {}
    for span in periods(view.schema, kind):
        if isinstance(per_month, Estimate):
            found = per_month.per_line(span.months)
        elif per_month is not None:
            found = per_month[:, list(span.months)].sum(axis=1)
        else:
            found = view.actual if span.kind == "year" else None
        if found is None:
            out.update({(*key, span.label): None for key in names})
            continue
        per_line = found
        sums = np.zeros(len(names), dtype=np.int64)
        np.add.at(sums, codes, per_line.astype(np.int64))
        out.update({(*key, span.label): int(sums[g]) for g, key in enumerate(names)})
    return out
