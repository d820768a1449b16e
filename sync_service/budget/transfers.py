"""Budget transfers: moving an amount of allocation from one (region, quarter, channel) to another, with approvals.

A marketer (for a region they plan in) or finance asks, saying why. The transfer needs the
approval of finance, and above `TRANSFER_FINANCE_LIMIT` the giving side's too (a marketer of
the region that gives). Whoever asks consents for the step their role is: finance asking within
the limit is finance's approval, and the transfer is made at once; a marketer of the giving
region asking is the giving side's. Nobody approves a step of a transfer twice, and one
rejection at any step ends it, with its comment.

The last approval moves the money in the same transaction as it is recorded: the allocations
in force are read under the allocations lock (`Store.serialise`, which every writer of a
revision holds), changed by the amount on both sides, written as a new revision and checked
against the plans again (the over-allocation setting says whether a region left over its
allocation is flagged or refused). A crash at any point leaves either the transfer approved
with its new revision, or neither: allocations are never half-moved.

A transfer between years carries the unspent budget of a closed year into the next: its `from`
names the year before (`"year": 2027` in a transfer of FY2028). It is asked for and approved like
any transfer; the last approval adds the amount to the receiving year's allocation and leaves
the closed year as it was (read-only): what it gave is the unspent budget of its cell (the
allocation less the actual spend of that quarter), less what earlier carries from it took.

Requests and decisions are never changed (append-only); a transfer's state is read from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sheet_templates.calendar import fiscal_year
from sheet_templates.config import Threshold
from sheet_templates.money import display_money, money_text, to_cents
from sheet_templates.schema import PlanSchema
from sync_service.access.approvals import holds
from sync_service.budget.allocations import ALLOCATIONS_LOCK, cell_key, region_findings, write_revision
from sync_service.master import model as master_model
from sync_service.master.allocations import ALL_CHANNELS, allocation_of, current_allocations
from sync_service.master.grouping import sums
from sync_service.platform import outbox, years
from sync_service.platform.errors import Conflict, Forbidden, NotFound, ServiceError, Unprocessable
from sync_service.platform.storage import (
    AuditEvent,
    Role,
    Store,
    Transfer,
    TransferDecision,
    User,
    aware,
)

GIVING, FINANCE = "giving", "finance"
REQUESTED, APPROVED, REJECTED = "requested", "approved", "rejected"
MAX_REASON = 2000


def _giving_year(schema: PlanSchema, body: dict[str, Any], problems: list[dict[str, str]]) -> int:
    """The fiscal year a request gives from: the transfer's own, or (between years) the year before it."""
    this = schema.calendar.year
    given = body.get("from")
    try:
        year = fiscal_year(given.get("year") if isinstance(given, dict) else None)
    except ValueError as exc:
        problems.append({"at": "from.year", "message": str(exc)})
        return this
    if year is None or year == this:
        return this
    if year != this - 1:
        problems.append(
            {
                "at": "from.year",
                "message": f"a transfer of FY{this} gives from FY{this}, or carries unspent budget forward from "
                f"FY{this - 1}; ask in FY{year + 1} (?year={year + 1}) to carry FY{year}'s forward",
            }
        )
    elif year not in schema.config.years:
        problems.append({"at": "from.year", "message": f"FY{year} is not described in the organisation file"})
    return year


def _cell_of(schema: PlanSchema, body: dict[str, Any], side: str, problems: list[dict[str, str]]) -> tuple[str, ...]:
    """(region, quarter, channel) of one side of a request; "*" for all channels."""
    given = body.get(side)
    if not isinstance(given, dict):
        problems.append({"at": side, "message": 'send {"region", "quarter", "channel"} (channel "*": all channels)'})
        return ("", "", "")
    return cell_key(schema, given, side, problems)


def _regions_of(user: User) -> set[str]:
    return {t.region for t in user.teams}


def finance_limit(config: Mapping[str, Any]) -> int:
    """TRANSFER_FINANCE_LIMIT in reporting cents (0 when unset or not an amount of zero or more)."""
    cents = to_cents(config.get("TRANSFER_FINANCE_LIMIT"))
    return cents if cents is not None and cents >= 0 else 0


def steps_for(cents: int, finance_limit: int, thresholds: tuple[Threshold, ...] = ()) -> list[str]:
    """The approvals a transfer of `cents` needs: finance alone within its limit, else the giving side too.

    Each of the organisation file's transfer thresholds (`[[approvals.thresholds]]` with
    `transfer_over`) the amount is over adds its step (a controller, a CMO).
    """
    steps = [FINANCE] if cents <= finance_limit else [GIVING, FINANCE]
    for threshold in thresholds:
        if cents > threshold.over_cents and threshold.step not in steps:
            steps.append(threshold.step)
    return steps


def open_steps_for(user: User, transfer: Transfer, state: Mapping[str, Any]) -> list[str]:
    """The steps of `transfer` (in its `state_of`) that `user` may decide now: none for whoever asked or decided."""
    if state["status"] != REQUESTED or transfer.user_id == user.id:
        return []
    if any(d["user_id"] == user.id for d in state["decisions"]):
        return []
    return [s for s in transfer.steps if s not in state["decided"] and _can_decide(user, transfer, s)]


def _can_decide(user: User, transfer: Transfer, step: str) -> bool:
    if step == FINANCE:
        return user.role == Role.FINANCE
    if step == GIVING:
        return user.role == Role.MARKETER and transfer.from_region in _regions_of(user)
    return any(holds(user, step, region) for region in (transfer.from_region, transfer.to_region))


def _step_text(step: str, transfer: Transfer, schema: PlanSchema | None = None) -> str:
    if step == FINANCE:
        return "finance"
    if step == GIVING:
        return f"a marketer of {transfer.from_region}"
    return schema.config.approvals.label(step) if schema is not None else step


def request_transfer(
    store: Store, schema: PlanSchema, user: User, body: dict[str, Any], finance_limit: int, over_policy: str
) -> dict[str, Any]:
    """Record a request (201); when the asker's own consent is every approval it needs, make it at once."""
    if user.role not in (Role.FINANCE, Role.MARKETER):
        raise Forbidden("only finance and marketers ask for budget transfers")
    problems: list[dict[str, str]] = []
    giving_year = _giving_year(schema, body, problems)
    between = giving_year != schema.calendar.year
    giving_schema = schema.for_year(giving_year) if between and giving_year in schema.config.years else schema
    source = _cell_of(giving_schema, body, "from", problems)
    target = _cell_of(schema, body, "to", problems)
    cents = to_cents(body.get("amount"))
    if cents is None or cents <= 0:
        problems.append({"at": "amount", "message": "must be an amount above zero, in the reporting currency"})
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        problems.append({"at": "reason", "message": "say why the budget should move; approvers read it"})
    elif len(reason) > MAX_REASON:
        problems.append({"at": "reason", "message": f"at most {MAX_REASON:,} characters"})
    if not problems and source == target and not between:
        problems.append({"at": "to", "message": "is the same allocation as from; nothing would move"})
    if problems:
        raise Unprocessable(
            f"{len(problems)} field(s) of the transfer are not valid; nothing was asked", issues=problems
        )
    assert cents is not None and isinstance(reason, str)
    steps = steps_for(cents, finance_limit, schema.config.approvals.transfer_thresholds)
    unspent = _unspent(store, giving_schema, source) if between else None  # a closed year's figures never change
    with store.transaction() as session:
        years.require_open(session, schema.calendar.year, "ask for a transfer")
        if between:
            _require_closed(session, giving_year)
        user = session.merge(user)
        if user.role == Role.MARKETER and not ({source[0], target[0]} & _regions_of(user)):
            raise Forbidden(
                f"you plan in {', '.join(sorted(_regions_of(user))) or 'no region'}; ask finance to move "
                f"budget between {source[0]} and {target[0]}"
            )
        transfer = Transfer(
            fiscal_year=schema.calendar.year,
            user_id=user.id,
            from_region=source[0],
            from_quarter=source[1],
            from_channel=source[2],
            to_region=target[0],
            to_quarter=target[1],
            to_channel=target[2],
            cents=cents,
            reason=reason.strip(),
            steps=steps,
            from_year=giving_year if between else None,
        )
        # What cannot be given now is refused at once.
        moved(current_allocations(session, schema)[1], transfer, _available(session, transfer, unspent))
        session.add(transfer)
        session.flush()
        session.add(
            AuditEvent(
                user_id=user.id,
                action="transfer.requested",
                target=f"transfer:{transfer.id}",
                detail={
                    "amount": money_text(cents),
                    "from": list(source),
                    "to": list(target),
                    "steps": steps,
                    **({"from_year": giving_year} if between else {}),
                },
            )
        )
        # The asker consents for finance or the giving side, never for a threshold's step (a controller asking
        # still needs another controller): that step exists so that someone else looks.
        own = [s for s in steps if s in (FINANCE, GIVING) and _can_decide(user, transfer, s)]
        findings = []
        for step in own:  # the asker's consent for the step their role is
            findings += _decide(
                store, session, schema, user, transfer, step, APPROVED, "asked for it", over_policy, unspent
            )
        answer = describe(session, transfer) | {"over_allocation": [f["message"] for f in findings]}
        if answer["status"] == REQUESTED:  # made at once (finance within its limit): nobody else to tell
            outbox.stage(session, "transfer.requested", user, transfer=transfer.id)
        return answer


def decide_transfer(
    store: Store, schema: PlanSchema, user: User, transfer_id: int, action: str, comment: str, over_policy: str
) -> dict[str, Any]:
    """Approve or reject the next step `user` may decide; the last approval moves the allocation (one transaction)."""
    if action == REJECTED and not comment.strip():
        raise ServiceError("say why the transfer is rejected in 'comment'; whoever asked will read it")
    with store.reading() as session:
        asked = session.get(Transfer, transfer_id)
        unspent = None
        if asked is not None and asked.from_year is not None:  # between years: the closed year's unspent budget
            cell = (asked.from_region, asked.from_quarter, asked.from_channel)
            unspent = _unspent(store, schema.for_year(asked.from_year), cell)
    try:
        with store.transaction() as session:
            user = session.merge(user)
            transfer = session.get(Transfer, transfer_id, with_for_update=True, populate_existing=True)
            if transfer is not None:
                years.require_open(session, transfer.fiscal_year, "approve or reject a transfer")
            if transfer is None:
                raise NotFound(f"there is no transfer {transfer_id}")
            qualifying = [s for s in transfer.steps if _can_decide(user, transfer, s)]
            if not qualifying:
                needed = " and ".join(_step_text(s, transfer, schema) for s in transfer.steps)
                raise Forbidden(f"transfer {transfer_id} is decided by {needed}")
            if transfer.user_id == user.id:
                raise Forbidden(f"you asked for transfer {transfer_id}; another approver must decide it")
            state = state_of(session, transfer)
            if state["status"] != REQUESTED:
                raise Conflict(f"transfer {transfer_id} is already {state['status']}", current_status=state["status"])
            mine = [s for s in qualifying if s not in state["decided"]]
            if not mine:
                by = ", ".join(f"{d['by']} ({d['step']})" for d in state["decisions"] if d["step"] in qualifying)
                raise Conflict(f"transfer {transfer_id} was already decided at your step by {by}")
            if any(d["user_id"] == user.id for d in state["decisions"]):
                raise Forbidden(f"you have already decided transfer {transfer_id}; another approver must decide it")
            findings = _decide(
                store, session, schema, user, transfer, mine[0], action, comment.strip(), over_policy, unspent
            )
            answer = describe(session, transfer) | {"over_allocation": [f["message"] for f in findings]}
            if answer["status"] != REQUESTED:  # decided: whoever asked hears it
                outbox.stage(session, f"transfer.{answer['status']}", user, transfer=transfer.id)
            return answer
    except IntegrityError:  # another approver of the same step committed first
        raise Conflict(f"transfer {transfer_id} was decided at this step by someone else just now") from None


def _decide(
    store: Store,
    session: Session,
    schema: PlanSchema,
    user: User,
    transfer: Transfer,
    step: str,
    action: str,
    comment: str,
    over_policy: str,
    unspent: dict[tuple[str, str, str], int] | None = None,
) -> list[dict[str, Any]]:
    """Record one step's decision; when it is the last approval, move the allocation. The over-allocation findings.

    `unspent`: for a transfer between years, the giving year's unspent budget of its cells (`_unspent`).
    """
    decision = TransferDecision(transfer_id=transfer.id, step=step, action=action, user_id=user.id, comment=comment)
    session.add(decision)
    session.flush()  # the unique (transfer, step) makes a second decision of the step fail here
    decided = {d.step for d in _decisions(session, transfer.id) if d.action == APPROVED}
    detail: dict[str, Any] = {"step": step, "comment": comment}
    findings: list[dict[str, Any]] = []
    if action == APPROVED and set(transfer.steps) <= decided:
        revision, findings = _move(store, session, schema, user, transfer, over_policy, unspent)
        decision.allocation_revision = revision
        detail |= {"allocation_revision": revision, "over_allocation": [f["message"] for f in findings]}
    session.add(
        AuditEvent(user_id=user.id, action=f"transfer.{action}", target=f"transfer:{transfer.id}", detail=detail)
    )
    session.flush()
    return findings


def _move(
    store: Store,
    session: Session,
    schema: PlanSchema,
    user: User,
    transfer: Transfer,
    over_policy: str,
    unspent: dict[tuple[str, str, str], int] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Write the allocations in force with the amount moved, as a new revision; (its id, over-allocation findings)."""
    store.serialise(session, ALLOCATIONS_LOCK)  # read the revision in force as no other writer is changing it
    _, cells = current_allocations(session, schema)
    cells = moved(cells, transfer, _available(session, transfer, unspent))
    source = (transfer.from_region, transfer.from_quarter, transfer.from_channel)
    target = (transfer.to_region, transfer.to_quarter, transfer.to_channel)
    changed = {target[0]} if transfer.from_year is not None else {source[0], target[0]}
    findings = [f for region in sorted(changed) for f in region_findings(session, schema, region, cells)]
    if findings and over_policy == "refuse":
        raise Conflict(
            f"transfer {transfer.id} would leave {source[0]} over its allocation",
            issues=[{"at": f"{f['region']} {f['quarter']} {f['channel']}", "message": f["message"]} for f in findings],
        )
    return write_revision(
        session, user, transfer.fiscal_year, cells, f"transfer {transfer.id}: {transfer.reason}"
    ), findings


def _require_closed(session: Session, year: int) -> None:
    if years.closed(session, year) is None:
        raise Conflict(
            f"FY{year} is not closed: its unspent budget is known, and carried forward, once finance closes it "
            f"(POST /api/v1/years/{year}/close); until then move budget within FY{year}",
            issues=[{"at": "from.year", "message": f"FY{year} is still open"}],
        )


def _unspent(store: Store, schema: PlanSchema, cell: tuple[str, ...]) -> dict[tuple[str, str, str], int]:
    """The closed year's unspent budget of `cell` and of its region's quarter (allocation less actual spend).

    {cell: cents} for the cell and, for a channel's cell, the quarter's all-channels cell when it has
    an allocation: a carry from a channel also takes from the whole. 409 naming why when the year's
    actual spend is not known by quarter or the cell has no allocation.
    """
    region, quarter, channel = cell[0], cell[1], cell[2]
    year = schema.calendar.year
    whole = master_model.load(store, schema)  # the whole year, not a caller's view: what was spent is one figure
    if whole.actual_months is None:
        raise Conflict(
            f"FY{year}'s actual spend is known for the year only (its finance export has no months), so its unspent "
            "budget by quarter is not known; import its actual spend by month first",
            issues=[{"at": "from.quarter", "message": f"FY{year}'s actual spend by quarter is not known"}],
        )
    actual = sums(whole, ["region", "channel"], "quarter", whole.actual_months)
    out: dict[tuple[str, str, str], int] = {}
    for key in {(region, quarter, channel), (region, quarter, ALL_CHANNELS)}:
        allocated = allocation_of(whole.allocations, region, (quarter,), None if key[2] == ALL_CHANNELS else key[2])
        if allocated is None:
            if key[2] == channel:
                raise Conflict(
                    f"{region} {quarter} {'all channels' if channel == ALL_CHANNELS else channel} had no allocation "
                    f"in FY{year}; nothing of it is unspent",
                    issues=[{"at": "from", "message": f"no FY{year} allocation of {region} {quarter} {channel}"}],
                )
            continue
        spent = sum(
            cents or 0
            for (r, c, period), cents in actual.items()
            if r == region and period == quarter and (key[2] == ALL_CHANNELS or c == key[2])
        )
        out[key] = allocated - spent
    return out


def _available(
    session: Session, transfer: Transfer, unspent: dict[tuple[str, str, str], int] | None
) -> dict[tuple[str, str, str], int] | None:
    """What a transfer between years may still carry from each of its cells: unspent less the other carries from it."""
    if transfer.from_year is None:
        return None
    assert unspent is not None, "a transfer between years knows its giving year's unspent budget"
    others = session.scalars(
        select(Transfer).where(
            Transfer.from_year == transfer.from_year,
            Transfer.from_region == transfer.from_region,
            Transfer.from_quarter == transfer.from_quarter,
        )
    )
    carried = [t for t in others if t.id != transfer.id and state_of(session, t)["status"] != REJECTED]
    available = {}
    for key, cents in unspent.items():
        taken = sum(t.cents for t in carried if key[2] == ALL_CHANNELS or t.from_channel in (key[2], ALL_CHANNELS))
        available[key] = cents - taken
    return available


def moved(
    cells: Mapping[tuple[str, str, str], int],
    transfer: Transfer,
    available: Mapping[tuple[str, str, str], int] | None = None,
) -> dict[tuple[str, str, str], int]:
    """`cells` with the transfer's amount moved; 409 when the giving side has not that much allocated.

    A transfer between years (`available`: what it may still carry from each giving cell) adds to
    the receiving year's cell only, and is refused when the closed year has not that much unspent.
    """
    cells = dict(cells)
    source = (transfer.from_region, transfer.from_quarter, transfer.from_channel)
    target = (transfer.to_region, transfer.to_quarter, transfer.to_channel)
    amount = transfer.cents
    if available is not None:
        for key, left in sorted(available.items()):
            if left < amount:
                what = "all channels" if key[2] == ALL_CHANNELS else key[2]
                why = (
                    f"{key[0]} {key[1]} {what} has {display_money(max(left, 0))} of FY{transfer.from_year}'s budget "
                    f"unspent and not yet carried forward; it cannot give {display_money(amount)}"
                )
                raise Conflict(why, issues=[{"at": "amount", "message": why}])
        changes = [(target, amount)]
        whole = (*target[:2], ALL_CHANNELS)
        if target[2] != ALL_CHANNELS and whole in cells:
            changes.append((whole, amount))
        for key, delta in changes:
            cells[key] = cells.get(key, 0) + delta
        return cells
    changes = [(source, -amount), (target, amount)]
    if source[:2] != target[:2]:  # a channel's budget leaving its quarter or region takes its part of the whole
        for cell, delta in ((source, -amount), (target, amount)):
            whole = (*cell[:2], ALL_CHANNELS)
            if cell[2] != ALL_CHANNELS and whole in cells:
                changes.append((whole, delta))
    for key, delta in changes:
        now = cells.get(key, 0)
        if now + delta < 0:
            what = "all channels" if key[2] == ALL_CHANNELS else key[2]
            why = f"has {display_money(now)} allocated; it cannot give {display_money(amount)}"
            if key not in cells:
                why = "has no allocation of its own" + (
                    " (the region's allocations are for all channels: ask from channel *)"
                    if (*key[:2], ALL_CHANNELS) in cells
                    else ""
                )
            raise Conflict(
                f"{key[0]} {key[1]} {what} {why}",
                issues=[{"at": "from", "message": f"{key[0]} {key[1]} {what} {why}"}],
            )
        cells[key] = now + delta
    return cells


def _decisions(session: Session, transfer_id: int) -> list[TransferDecision]:
    return list(
        session.scalars(
            select(TransferDecision).where(TransferDecision.transfer_id == transfer_id).order_by(TransferDecision.id)
        )
    )


def state_of(session: Session, transfer: Transfer) -> dict[str, Any]:
    """requested, approved (every step approved) or rejected (any step), with the decisions so far."""
    decisions = _decisions(session, transfer.id)
    names = {u.id: u.name for u in session.scalars(select(User).where(User.id.in_({d.user_id for d in decisions})))}
    status = REQUESTED
    if any(d.action == REJECTED for d in decisions):
        status = REJECTED
    elif set(transfer.steps) <= {d.step for d in decisions if d.action == APPROVED}:
        status = APPROVED
    return {
        "status": status,
        "decided": {d.step for d in decisions},
        "decisions": [
            {
                "step": d.step,
                "action": d.action,
                "user_id": d.user_id,
                "by": names.get(d.user_id),
                "at": aware(d.created_at).isoformat(),
                "comment": d.comment,
                "allocation_revision": d.allocation_revision,
            }
            for d in decisions
        ],
    }


def describe(session: Session, transfer: Transfer, reader: User | None = None) -> dict[str, Any]:
    """A transfer as the API answers it; with `reader`, whether they may decide it now (`can_decide`)."""
    state = state_of(session, transfer)
    asker = session.get(User, transfer.user_id)
    revision = next((d["allocation_revision"] for d in state["decisions"] if d["allocation_revision"]), None)
    return {
        "id": transfer.id,
        "status": state["status"],
        "year": transfer.fiscal_year,
        "from": {
            "region": transfer.from_region,
            "quarter": transfer.from_quarter,
            "channel": transfer.from_channel,
            "year": transfer.giving_year,
        },
        "to": {"region": transfer.to_region, "quarter": transfer.to_quarter, "channel": transfer.to_channel},
        "amount": money_text(transfer.cents),
        "reason": transfer.reason,
        "asked_by": asker.name if asker else None,
        "asked_at": aware(transfer.created_at).isoformat(),
        "steps": list(transfer.steps),
        "waiting_for": [s for s in transfer.steps if s not in state["decided"]] if state["status"] == REQUESTED else [],
        "decisions": [{k: v for k, v in d.items() if k != "user_id"} for d in state["decisions"]],
        "allocation_revision": revision,
        **({"can_decide": bool(open_steps_for(reader, transfer, state))} if reader is not None else {}),
    }


def transfers_json(session: Session, user: User, year: int | None) -> list[dict[str, Any]]:
    """Every transfer `user` may read of fiscal year `year` (None: of every year), newest first.

    Finance reads all, a marketer those touching their regions.
    """
    query = select(Transfer).order_by(Transfer.id.desc())
    if year is not None:  # a year's transfers, and what was carried forward out of it
        query = query.where((Transfer.fiscal_year == year) | (Transfer.from_year == year))
    if user.role != Role.FINANCE:
        regions = _regions_of(user)
        mine = Transfer.from_region.in_(regions) | Transfer.to_region.in_(regions)
        if user.grants:  # an approver of a step (a controller) reads the transfers whose step they take
            found = [t for t in session.scalars(query.limit(1000)) if t.from_region in regions or t.to_region in regions
                     or any(_can_decide(user, t, s) for s in t.steps if s not in (FINANCE, GIVING))]  # fmt: skip
            return [describe(session, t, user) for t in found]
        query = query.where(mine)
    return [describe(session, t, user) for t in session.scalars(query.limit(1000))]


def transfer_json(session: Session, user: User, transfer_id: int) -> dict[str, Any]:
    transfer = session.get(Transfer, transfer_id)
    if transfer is None:
        raise NotFound(f"there is no transfer {transfer_id}")
    outside = user.role != Role.FINANCE and not ({transfer.from_region, transfer.to_region} & _regions_of(user))
    if outside and not any(_can_decide(user, transfer, s) for s in transfer.steps if s not in (FINANCE, GIVING)):
        raise Forbidden(f"transfer {transfer_id} is between regions you do not plan in")
    return describe(session, transfer)
