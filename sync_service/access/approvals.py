"""Approval chains: the steps a plan passes before it joins the master, and who may take each.

A region's chain comes from the organisation file (`[approvals]`: for example the region's
marketing lead, then finance); a plan that changes the approved one by more than a threshold
gets the threshold's step added at the end (a controller, a CMO). The chain is fixed when the
plan is submitted (`ApprovalChain`), so changing the file never moves a plan already in review.

Steps are taken in order, each recorded with who, when and why (`ApprovalStep`, one row per
step, so two approvers of one step at once cannot both take it). `finance` is any finance user;
any other step is held by the users granted it (`ApproverGrant`), for one region or all. Nobody
takes a step of their own submission, nor two steps of one chain. A rejection at any step ends
the chain with its comment. The last step's approval is the approval that merges the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sheet_templates.config import FINANCE_STEP, Approvals
from sheet_templates.money import money_text
from sync_service.platform.storage import ApprovalChain, ApprovalStep, ApproverGrant, Role, SubmissionTotal, User

DEFAULT_CHAIN = [{"step": FINANCE_STEP, "label": "Finance"}]


def plan_change(session: Session, based_on: int | None, totals: Mapping[tuple[str, str], int]) -> int:
    """How much a plan changes the approved one it was edited from, in reporting cents.

    Over the plan's (quarter, channel) cells, the larger of what it adds and what it takes away:
    moving 100,000 from Q1 to Q2 changes 100,000, as does adding or cutting 100,000. A team's
    first plan changes its whole planned spend.
    """
    old: dict[tuple[str, str], int] = {}
    if based_on is not None:
        old = {
            (t.quarter, t.channel): t.cents
            for t in session.scalars(select(SubmissionTotal).where(SubmissionTotal.submission_id == based_on))
        }
    up = down = 0
    for key in old.keys() | totals.keys():
        diff = totals.get(key, 0) - old.get(key, 0)
        up, down = up + max(diff, 0), down + max(-diff, 0)
    return max(up, down)


def chain_for(approvals: Approvals, region: str, change_cents: int) -> list[dict[str, str]]:
    """The region's chain, and each threshold's step the change is over (once, at the end)."""
    steps = list(approvals.chain_for(region))
    for threshold in approvals.plan_thresholds:
        if change_cents > threshold.over_cents and threshold.step not in steps:
            steps.append(threshold.step)
    return [{"step": s, "label": approvals.label(s)} for s in steps]


def record_chain(session: Session, approvals: Approvals, submission_id: int, region: str, change: int) -> None:
    """Write a new submission's chain, in its own transaction."""
    session.add(
        ApprovalChain(submission_id=submission_id, steps=chain_for(approvals, region, change), change_cents=change)
    )


def chain_of(session: Session, submission_id: int) -> tuple[list[dict[str, str]], int | None]:
    """(the submission's steps, its change in reporting cents); one finance step for a plan from before chains."""
    found = session.get(ApprovalChain, submission_id)
    if found is None:
        return list(DEFAULT_CHAIN), None
    return list(found.steps), found.change_cents


def taken(session: Session, submission_id: int) -> list[ApprovalStep]:
    return list(
        session.scalars(
            select(ApprovalStep).where(ApprovalStep.submission_id == submission_id).order_by(ApprovalStep.position)
        )
    )


def holds(user: User, step: str, region: str) -> bool:
    """Whether `user` may take `step` for a plan or transfer of `region`."""
    if user.role == Role.ADMIN:
        return False
    if step == FINANCE_STEP:
        return user.role == Role.FINANCE
    return any(g.step == step and g.region in ("", region) for g in user.grants)


def may_approve_something(user: User) -> bool:
    return user.role == Role.FINANCE or (user.role != Role.ADMIN and bool(user.grants))


def state(session: Session, submission_id: int, names: Mapping[int, str] | None = None) -> dict[str, Any]:
    """Where a submission is in its chain: each step (taken, waiting or to come), and the step it waits for."""
    steps, change = chain_of(session, submission_id)
    done = {s.position: s for s in taken(session, submission_id)}
    users = dict(names or {})
    for s in done.values():
        if s.user_id not in users:
            found = session.get(User, s.user_id)
            users[s.user_id] = found.name if found else "?"
    out, waiting = [], None
    ended = any(s.action == "rejected" for s in done.values())
    for position, step in enumerate(steps):
        took = done.get(position)
        if took is not None:
            status = took.action
        elif not ended and waiting is None:
            status, waiting = "waiting", position
        else:
            status = "not reached"
        out.append(
            {
                "position": position + 1,
                "step": step["step"],
                "label": step["label"],
                "status": status,
                "by": users.get(took.user_id) if took else None,
                "at": took.created_at.isoformat() if took else None,
                "comment": took.comment if took else None,
            }
        )
    return {
        "steps": out,
        "waiting_for": None if waiting is None else steps[waiting]["step"],
        "position": None if waiting is None else waiting + 1,
        "change": None if change is None else money_text(change),
    }


def next_step(session: Session, submission_id: int) -> tuple[int, dict[str, str], bool, list[ApprovalStep]]:
    """(0-based position of the step it waits for, that step, whether it is the last, the steps taken)."""
    steps, _ = chain_of(session, submission_id)
    done = taken(session, submission_id)
    position = len(done)
    return position, steps[min(position, len(steps) - 1)], position >= len(steps) - 1, done


def holders(session: Session, step: str, region: str) -> list[User]:
    """The users who may take `step` for `region`: every finance user for `finance`, else those granted it."""
    if step == FINANCE_STEP:
        return list(session.scalars(select(User).where(User.role == Role.FINANCE).order_by(User.id)))
    query = (
        select(User)
        .join(ApproverGrant, ApproverGrant.user_id == User.id)
        .where(ApproverGrant.step == step, ApproverGrant.region.in_(["", region]), User.role != Role.ADMIN)
        .distinct()
        .order_by(User.id)
    )
    return list(session.scalars(query))


def grants_json(user: User) -> list[dict[str, str]]:
    return [{"step": g.step, "region": g.region or "*"} for g in sorted(user.grants, key=lambda g: (g.step, g.region))]


def grant(
    session: Session, user: User, given: list[dict[str, str]], approvals: Approvals, regions: tuple[str, ...]
) -> None:
    """Give `user` the steps in `given` ({"step", "region" or "*"}); ValueError naming a step or region not known."""
    known = set(approvals.step_names) - {FINANCE_STEP}
    for item in given:
        step, region = item.get("step", ""), item.get("region", "*") or "*"
        if step == FINANCE_STEP:
            raise ValueError("finance is every finance user's step; give the user the finance role instead")
        if step not in known:
            raise ValueError(
                f"{step!r} is not a step of any approval chain; the organisation file names {sorted(known)}"
            )
        if region != "*" and region not in regions:
            raise ValueError(f"{region!r} is not a region; use one of {', '.join(regions)} or *")
        region = "" if region == "*" else region
        if not any(g.step == step and g.region == region for g in user.grants):
            session.add(ApproverGrant(user_id=user.id, step=step, region=region))
    session.flush()
    session.refresh(user, ["grants"])
