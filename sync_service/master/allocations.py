"""The allocations in force, as the read model holds them, and what a cell of them means.

Allocations are in the reporting currency, by region x fiscal quarter x channel ("*" for all
channels). The newest revision is in force; before the first, the organisation file's region x
quarter allocations are (revision 0). What a cell means is decided here alone (`allocation_of`);
finance writes revisions through `sync_service.budget.allocations`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sheet_templates.calendar import QUARTERS
from sheet_templates.schema import PlanSchema
from sync_service.platform.storage import AllocationCell, AllocationRevision

ALL_CHANNELS = "*"


Cells = Mapping[tuple[str, str, str], int]  # (region, quarter, channel or "*") -> reporting cents


def current_allocations(session: Session, schema: PlanSchema) -> tuple[int, dict[tuple[str, str, str], int]]:
    """(revision, {(region, quarter, channel): cents}) of the schema's year; revision 0: the organisation file's."""
    year = schema.calendar.year
    revision = session.scalar(select(func.max(AllocationRevision.id)).where(AllocationRevision.fiscal_year == year))
    return revision or 0, allocations_at(session, schema, revision or 0)


def allocations_at(session: Session, schema: PlanSchema, revision: int) -> dict[tuple[str, str, str], int]:
    """The cells of allocation revision `revision` (0: the organisation file's)."""
    if not revision:
        cells = {
            (region, quarter, ALL_CHANNELS): int(amount * 100)
            for region, quarters in schema.config.allocations.items()
            for quarter, amount in quarters.items()
        }
        return cells
    rows = session.scalars(select(AllocationCell).where(AllocationCell.revision_id == revision))
    return {(c.region, c.quarter, c.channel): c.cents for c in rows}


def allocation_of(cells: Cells, region: str, quarters: str | Iterable[str], channel: str | None = None) -> int | None:
    """The allocation of `region` (and `channel`, any case) over `quarters` (a quarter, "year" or several).

    Without a channel, each quarter counts its all-channels ("*") cell when one is set, else the
    sum of its channel cells. None when no cell of the region is set for any of the quarters.
    """
    if isinstance(quarters, str):
        quarters = (quarters,) if quarters in QUARTERS else QUARTERS
    wanted = channel.strip().casefold() if channel and channel.strip() else None
    total, found = 0, False
    for quarter in quarters:
        mine = {c: v for (r, q, c), v in cells.items() if r == region and q == quarter}
        if wanted is not None:
            values = [v for c, v in mine.items() if c != ALL_CHANNELS and c.casefold() == wanted]
        else:
            values = [mine[ALL_CHANNELS]] if ALL_CHANNELS in mine else list(mine.values())
        if values:
            total, found = total + sum(values), True
    return total if found else None
