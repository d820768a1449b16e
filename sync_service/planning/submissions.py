"""Where a submission stands: the one the master holds for a team, and each submission's status."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync_service.platform.storage import Decision, MasterVersion, Submission


def status_of(session: Session, submission: Submission) -> str:
    """submitted, approved, rejected, or superseded (approved, then replaced by a newer approved plan)."""
    decision = session.scalar(
        select(Decision).where(Decision.submission_id == submission.id).order_by(Decision.id.desc()).limit(1)
    )
    if decision is None:
        return (
            "stale"
            if submission.based_on_submission != current_submission(session, submission.team_id, submission.fiscal_year)
            else ("submitted")
        )
    if (
        decision.action == "approved"
        and current_submission(session, submission.team_id, submission.fiscal_year) != submission.id
    ):
        return "superseded"
    return decision.action


def current_submission(session: Session, team: str, year: int) -> int | None:
    """The submission fiscal year `year`'s master holds for `team` now."""
    return session.scalar(
        select(MasterVersion.submission_id)
        .where(MasterVersion.team_id == team, MasterVersion.fiscal_year == year)
        .order_by(MasterVersion.id.desc())
        .limit(1)
    )
