"""What the imports of results and actual spend share to match their rows to master lines.

A row names a line by line ID, or a campaign code several lines may share; a shared code's amount
is split over its lines by their planned spend (`weights`, `split`). Rows are matched against a
snapshot of the master read outside the write transaction first (`master_snapshot`), and inside
it only when the master keeps changing (`OPTIMISTIC_ATTEMPTS`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from addin.fx import UnknownCurrency, convert_cents
from sheet_templates.schema import PlanSchema
from sync_service.master.model import current_submissions, master_lines
from sync_service.platform.storage import Store


def weights(targets: list[dict[str, Any]], schema: PlanSchema) -> list[int]:
    """How a shared campaign code's amount is split over its lines: their planned spend for the year.

    In reporting cents as every surface shows a line's planned spend: each month converted at the
    plan rate and rounded to the cent, then summed (not the year converted once, which can differ
    by a cent or two), so lines of one code planned in different currencies weigh alike.
    """
    config = schema.config
    months = [c.name for c in schema.month_columns]
    grid = np.array([[int(t.get(m) or 0) for m in months] for t in targets], dtype=np.int64)
    try:
        currencies = np.array([t.get("currency") for t in targets], dtype=object)
        weights = [
            int(w) for w in sum(convert_cents(grid[:, j], currencies, config.plan_rates) for j in range(len(months)))
        ]
    except UnknownCurrency:
        weights = [int(w) for w in grid.sum(axis=1)]
    if sum(weights) <= 0:
        weights = [1] * len(targets)
    return weights


def split(cents: int, weights: list[int]) -> list[int]:
    """`cents` split by `weights` by largest remainder, in exact integers, so the parts add up to it exactly."""
    total = sum(weights)
    shares = [divmod(cents * w, total) for w in weights]  # floor division: 0 <= remainder < total
    parts = [share for share, _ in shares]
    for k in sorted(range(len(parts)), key=lambda k: shares[k][1], reverse=True)[: cents - sum(parts)]:
        parts[k] += 1
    return parts


OPTIMISTIC_ATTEMPTS = 2  # matches against a read of the master before matching inside the write transaction


def master_snapshot(store: Store, schema: PlanSchema) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """({team: submission} the schema's fiscal year's master holds now, their lines); submissions never change.

    The lines come from the read model's team parts: an import reads no line an answer already read.
    """
    with store.reading() as session:
        held = current_submissions(session, schema.calendar.year)
        return held, master_lines(session, held, schema, store.shared)
