"""The CRM results in force, as the read model holds them: the measures, and per line each month's newest import."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sync_service.platform.storage import OutcomeAmount, OutcomeImport

METRICS = ("leads", "mqls", "sals", "opportunities", "won", "pipeline", "revenue", "crm_cost")


MONEY = frozenset({"pipeline", "revenue", "crm_cost"})


LABELS = {
    "leads": "Leads",
    "mqls": "MQLs",
    "sals": "Sales-accepted leads",
    "opportunities": "Opportunities",
    "won": "Won opportunities",
    "pipeline": "Pipeline",
    "revenue": "Closed-won revenue",
    "crm_cost": "CRM cost",  # the CRM's own record of cost, shown beside finance's actual spend, never instead
}


@dataclass(frozen=True)
class InForce:
    """The results in force: per (team, line ID) a METRICS x 12 array; which (metric, month) any source covers."""

    newest: int | None
    amounts: dict[tuple[str, str], np.ndarray]
    cover: np.ndarray  # bool, METRICS x 12
    sources: tuple[dict[str, Any], ...]  # {source, months: {month: import}}


def in_force(session: Session, year: int, month_names: tuple[str, ...]) -> InForce:
    """Fiscal year `year`'s results in force: for each source and month, its newest import covering the month."""
    newest = session.scalar(select(func.max(OutcomeImport.id)).where(OutcomeImport.fiscal_year == year))
    cover = np.zeros((len(METRICS), len(month_names)), dtype=bool)
    if newest is None:
        return InForce(None, {}, cover, ())
    held = newest_by_month(session, year)
    metrics_of = dict(session.execute(select(OutcomeImport.id, OutcomeImport.metrics)).all())
    pairs: set[tuple[int, str]] = set()
    position = {m: j for j, m in enumerate(month_names)}
    for months in held.values():
        for month, import_id in months.items():
            pairs.add((import_id, month))
            for metric in metrics_of[import_id]:
                cover[METRICS.index(metric), position[month]] = True
    ids = sorted({i for i, _ in pairs})
    amounts: dict[tuple[str, str], np.ndarray] = {}
    columns = [getattr(OutcomeAmount, m) for m in METRICS]
    rows = session.execute(
        select(
            OutcomeAmount.import_id, OutcomeAmount.team_id, OutcomeAmount.line_id, OutcomeAmount.month, *columns
        ).where(OutcomeAmount.import_id.in_(ids))
    )
    for import_id, team, line_id, month, *values in rows:
        if (import_id, month) not in pairs:
            continue
        grid = amounts.get((team, line_id))
        if grid is None:
            grid = amounts[team, line_id] = np.zeros((len(METRICS), len(month_names)), dtype=np.int64)
        grid[:, position[month]] += values
    sources = tuple({"source": s, "months": dict(sorted(m.items()))} for s, m in sorted(held.items()))
    return InForce(newest, amounts, cover, sources)


def newest_by_month(session: Session, year: int, before: int | None = None) -> dict[str, dict[str, int]]:
    """Source -> fiscal month -> the newest import of that source covering it, in fiscal year `year`."""
    query = (
        select(OutcomeImport.id, OutcomeImport.source, OutcomeImport.months)
        .where(OutcomeImport.fiscal_year == year)
        .order_by(OutcomeImport.id)
    )
    if before is not None:
        query = query.where(OutcomeImport.id < before)
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for import_id, source, months in session.execute(query):
        for month in months:
            out[source][month] = import_id
    return out
