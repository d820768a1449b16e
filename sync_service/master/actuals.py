"""The finance system's actual spend in force, as the read model holds it: the newest import, by line and month."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync_service.platform.storage import ActualAmount, ActualMonth


def actual_amounts(session: Session, import_id: int) -> dict[tuple[str, str], int]:
    """{(team, line ID): cents in the line's currency} of an actuals import (the read model reads the newest)."""
    rows = session.execute(
        select(ActualAmount.team_id, ActualAmount.line_id, ActualAmount.cents).where(
            ActualAmount.import_id == import_id
        )
    )
    return {(t, lid): c for t, lid, c in rows}


def actual_months(session: Session, import_id: int | None) -> dict[tuple[str, str], dict[str, int]]:
    """{(team, line ID): {month: cents in the line's currency}} of an import with months; {} for one without."""
    if import_id is None:
        return {}
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    rows = session.execute(
        select(ActualMonth.team_id, ActualMonth.line_id, ActualMonth.month, ActualMonth.cents).where(
            ActualMonth.import_id == import_id
        )
    )
    for team, line_id, month, cents in rows:
        out[team, line_id][month] = cents
    return dict(out)
