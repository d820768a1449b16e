"""The submission workflow: who may do what, and each change as one transaction.

A plan is validated before anything is written; an invalid plan is refused with every
issue and leaves no accepted submission behind. A valid one is stored whole (raw file,
parsed lines, report) with its audit event, in one transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import exists, func, select, union
from sqlalchemy.orm import Session

from addin.issues import Rule, Severity, UnreadableWorkbook
from addin.reader import PlanRead, plan_from_rows, read_plan
from sheet_templates.excel_template import build_template
from sheet_templates.money import money_text
from sheet_templates.schema import PlanSchema
from sync_service.access import approvals
from sync_service.access.auth import can_see, require_plan_reader, visible_teams
from sync_service.budget import allocations, transfers
from sync_service.master import model as master
from sync_service.master.reports import region_allocations
from sync_service.planning import cycles, periods
from sync_service.planning.submissions import current_submission, status_of
from sync_service.platform import outbox, years
from sync_service.platform.errors import Conflict, Forbidden, NotFound, ServiceError, Unprocessable
from sync_service.platform.idempotency import Idempotency, remember
from sync_service.platform.paging import id_after
from sync_service.platform.storage import (
    ApprovalStep,
    AuditEvent,
    Decision,
    MasterVersion,
    Role,
    Store,
    Submission,
    SubmissionLine,
    SubmissionTotal,
    Team,
    User,
    add_submission_lines,
)


@dataclass
class Incoming:
    """A plan as it arrived: an xlsx file or a grid of rows (JSON)."""

    team: str
    source: str  # "xlsx", "json" or "gsheets"
    raw: bytes
    filename: str | None = None
    grid: Sequence[Sequence[Any]] | None = None
    base: dict[str, int | None] | None = None  # {"submission": N | None} or {"master_version": N}; None: unnamed
    closed: tuple[str, ...] = ()  # a reforecast sheet's closed months (shown, never read); an xlsx names its own
    cycle: int | None = None  # the reforecast cycle the sheet or file was made for


OVER_ALLOCATION_POLICIES = ("flag", "refuse")


def read_incoming(incoming: Incoming, schema: PlanSchema, team: Team) -> PlanRead:
    """Validate a plan as it arrived; raise Unprocessable (422) with every issue when it is not valid."""
    if incoming.source == "xlsx":
        name = incoming.filename or "upload.xlsx"
        try:
            read = read_plan(incoming.raw, schema, expected_region=team.region, display_name=name)
        except UnreadableWorkbook as exc:
            raise Unprocessable(exc.message, issues=[exc.as_issue().to_dict()]) from None
    else:
        # A Google sheet has the template's layout, so its issues name its cells (Plan!F12); JSON has lines.
        sheet, file = ("Plan", incoming.filename) if incoming.source == "gsheets" else ("lines", None)
        read = plan_from_rows(incoming.grid or [[]], schema, sheet=sheet, file=file, region=team.region)
    if not read.ok:
        errors = len(read.errors)
        raise Unprocessable(
            f"the plan has {errors} error{'s' if errors != 1 else ''}; nothing was stored",
            issues=[i.to_dict() for i in read.issues],
        )
    return read


def submit(
    store: Store,
    schema: PlanSchema,
    user: User,
    incoming: Incoming,
    idem: Idempotency | None = None,
    *,
    over_allocation: str = "flag",
) -> dict[str, Any]:
    """Validate and store a submission; return it as data.

    A plan identical to the team's approved one is answered as that submission, `unchanged`, and
    nothing is stored (outside a reforecast cycle). Refused before anything is written: an invalid
    plan (422, every issue); a plan not based on
    the team's current approved plan (409, with what changed since); a plan that changes a locked
    month (422, the cells); with `over_allocation="refuse"`, a plan over its region's allocation (422).
    """
    with store.reading() as session:
        team = session.get(Team, incoming.team)
        if team is None:
            raise NotFound(f"there is no team {incoming.team!r}")
        if user.role == Role.ADMIN or not can_see(session.merge(user), team.id):
            raise Forbidden(f"you may not submit plans for team {team.id}")
        years.require_open(session, schema.calendar.year, "submit a plan")  # said first: nothing else matters then
    read = read_incoming(incoming, schema, team)
    base = incoming.base if incoming.base is not None else _base_of_template(read)
    made_for = read.cycle or incoming.cycle
    year = schema.calendar.year
    with store.reading() as session:
        _check_cycle(session, year, made_for)
        claimed = set(read.closed or incoming.closed)
        closed_notes: list[dict[str, Any]] = []
        if claimed or made_for is not None:  # a reforecast: what the file shows as booked, and what is closed now
            view = master.load(store, schema, user)
            closed = [c.name for c in schema.month_columns if c.name in claimed | set(view.closed_months)]
            closed_notes = _carry_closed(session, schema, view, team, read, closed)
    lines = stored_lines(read.table)
    totals = allocations.plan_totals(read.table, schema)
    with store.reading() as session:
        current = current_submission(session, team.id, year)
        unchanged = _unchanged(session, year, current, lines) if made_for is None and not claimed else None
    if unchanged is not None:  # the team's approved plan as it is: nothing to store, nobody to wait for
        with store.transaction() as session:
            remember(session, user, idem, 200, unchanged)
        return unchanged
    with store.reading() as session:
        based_on = _resolve_base(session, team, year, base)
        current = current_submission(session, team.id, year)
        _check_base(session, team, base, based_on, current)
        rows = dict(zip(read.table["line_id"].tolist(), read.table["_row"].tolist(), strict=True))
        _check_locks(session, schema, current, lines, rows, _sheet_of(incoming.source), read.letters)
        findings = allocations.allocation_findings(session, schema, team, totals)
    if findings and over_allocation == "refuse":  # answered to the submitter alone: finance sees the figures
        shown = findings if user.role == Role.FINANCE else [allocations.redacted(f) for f in findings]
        raise Unprocessable(
            f"the plan is over {team.region}'s allocation in {len(findings)} place(s); nothing was stored",
            issues=[allocation_issue(f) for f in shown],
        )
    # The stored report is read by the team's marketers: other teams' approved spend is not theirs to see.
    findings = [allocations.redacted(f) for f in findings]
    with store.transaction() as session:
        years.require_open(session, year, "submit a plan")
        # In the writing transaction, so a plan of another team stored just before is seen.
        check_line_ids(session, schema, team.id, rows, _sheet_of(incoming.source), read.letters, pending=True)
        _check_cycle(session, year, made_for)  # and a cycle closed just before
        now_open = cycles.open_cycle_row(session, year)
        cycle_id = now_open.id if now_open else None
        submission = Submission(
            fiscal_year=schema.calendar.year,
            team_id=team.id,
            user_id=user.id,
            source=incoming.source,
            filename=(incoming.filename or None) and incoming.filename[:255],
            raw=incoming.raw,
            raw_sha256=hashlib.sha256(incoming.raw).hexdigest(),
            valid=True,
            line_count=len(lines),
            report=[i.to_dict() for i in read.issues] + closed_notes + [allocation_issue(f) for f in findings],
            based_on_submission=based_on,
            base=base,
            cycle_id=cycle_id,
        )
        session.add(submission)
        session.flush()
        add_submission_lines(session, submission.id, lines, read.table["_row"].tolist(), totals)
        change = approvals.plan_change(session, based_on, totals)
        approvals.record_chain(session, schema.config.approvals, submission.id, team.region, change)
        session.add(
            AuditEvent(
                user_id=user.id,
                action="submission.create",
                target=f"submission:{submission.id}",
                detail={"team": team.id, "lines": len(lines), "source": incoming.source, "based_on": based_on},
            )
        )
        outbox.stage(session, "submission.submitted", user, submission=submission.id)
        result = describe(session, submission, user_name=user.name)
        remember(session, user, idem, 201, result)
        return result


def _unchanged(session: Session, year: int, current: int | None, lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The team's approved submission, marked unchanged, when `lines` are its lines exactly (None otherwise).

    Not while a reforecast cycle is open: there a team's unchanged plan is its reforecast, and is stored.
    """
    if current is None or cycles.open_cycle_row(session, year) is not None:
        return None
    if list(lines_by_id(session, current).values()) != lines:
        return None
    return {**describe(session, session.get(Submission, current)), "unchanged": True}


def _check_cycle(session: Session, year: int, made_for: int | None) -> None:
    """409 when a reforecast was made for a cycle that is not fiscal year `year`'s open one."""
    if made_for is None:
        return
    cycle = cycles.open_cycle_row(session, year)
    if cycle is None or cycle.id != made_for:
        raise Conflict(
            f"this reforecast was made for cycle {made_for}, which is closed"
            + (f"; the open cycle is {cycle.name!r}" if cycle else "")
            + ": copy your forecast into the team's current template (download it again, or ask finance for a "
            "new Google sheet)",
            open_cycle=cycle.id if cycle else None,
        )


def _carry_closed(
    session: Session, schema: PlanSchema, view: master.Master, team: Team, read: PlanRead, closed: Sequence[str]
) -> list[dict[str, Any]]:
    """Give a reforecast's closed months the approved plan's amounts; a warning for each cell not as shown.

    The closed cells of a reforecast show actual spend and are never read as plan, so a reforecast
    cannot change a closed month however its file was edited. `closed`: the months the file shows
    as booked and those closed now.
    """
    if not closed:
        return []
    approved = lines_by_id(session, current_submission(session, team.id, schema.calendar.year))
    shown = cycles.shown_closed(view, team.id, closed)
    rows = read.table["_row"].tolist()
    ids = read.table["line_id"].tolist()
    sheet = "Plan"
    notes = []
    for k, month, held, expected, kept in cycles.carried(read.table, closed, approved, shown):
        letter = read.letters.get(month) or schema[month].letter
        notes.append(
            cycles.closed_issue(sheet, f"{letter}{rows[k]}", ids[k], schema[month].label, kept, held, expected)
        )
    return notes


def _base_of_template(read: PlanRead) -> dict[str, int | None] | None:
    """The base a service-made template carries (PS_BASED_ON; 0 means the team had no approved plan)."""
    if read.based_on is None:
        return None
    return {"submission": read.based_on or None}


def _resolve_base(session: Session, team: Team, year: int, base: dict[str, int | None] | None) -> int | None:
    """The team's approved submission of fiscal year `year` the plan was edited from (None: none, or not named)."""
    if base is None:
        return None
    if "master_version" in base:
        version = base["master_version"] or 0
        latest = session.scalar(select(func.max(MasterVersion.id))) or 0
        if not 0 <= version <= latest:
            raise ServiceError(f"based_on master_version {version} does not exist; the newest is {latest}")
        return _master_at(session, year, version).get(team.id)
    number = base.get("submission")
    if number is None:
        return None
    approved = session.scalar(
        select(MasterVersion.submission_id).where(
            MasterVersion.submission_id == number, MasterVersion.team_id == team.id, MasterVersion.fiscal_year == year
        )
    )
    if approved is None:
        raise ServiceError(f"based_on submission {number} is not an approved plan of team {team.id} for FY{year}")
    return number


def _check_base(
    session: Session, team: Team, base: dict[str, int | None] | None, based_on: int | None, current: int | None
) -> None:
    """409 unless the plan was edited from the team's current approved plan: never a silent overwrite."""
    if based_on == current and (base is not None or current is None):
        return
    if base is None:
        raise Conflict(
            f"team {team.id} already has an approved plan (submission {current}); say which plan yours was edited "
            "from (based_on), or download the team's template, which carries it, and make your changes there",
            current_submission=current,
        )
    raise Conflict(
        f"team {team.id}'s approved plan changed since the one this plan was edited from "
        f"(submission {based_on or 'none'}; now submission {current or 'none'}); "
        "merge your changes into the current plan and submit again",
        based_on_submission=based_on,
        current_submission=current,
        changes=team_diff(session, based_on, current),
    )


def _check_locks(
    session: Session,
    schema: PlanSchema,
    current: int | None,
    lines: list[dict[str, Any]],
    rows: dict[str, int | None],
    sheet: str,
    letters: dict[str, str] | None = None,
) -> None:
    """422 (with the cells) when the plan changes the planned spend of a locked month."""
    locked = periods.locked_months(session, schema.calendar.year)
    changes = periods.locked_changes(schema, locked, lines_by_id(session, current), lines)
    if not changes:
        return
    issues = []
    for line, month, old, new in changes:
        removed = line.get("_removed", False)
        row = None if removed else rows.get(line["line_id"])
        letter = (letters or {}).get(month) or schema[month].letter
        cell = f"{letter}{row}" if row else None
        issues.append(
            {
                "severity": "error",
                "rule": "period.locked",
                "sheet": sheet if cell else None,
                "cell": cell,
                "location": f"{sheet}!{cell}" if cell else None,
                "column": month,
                "line_id": line["line_id"],
                "message": f"{schema[month].label} is closed: line {line['line_id']} must keep its approved "
                f"{money_text(old)} there (the plan has {money_text(new)})"
                + ("; the line was removed" if removed else ""),
            }
        )
    raise Unprocessable(f"the plan changes {len(issues)} amount(s) in locked months; nothing was stored", issues=issues)


_ID_CHUNK = 5_000  # line IDs per query, far below every database's limit on parameters


def check_line_ids(
    session: Session,
    schema: PlanSchema,
    team: str,
    rows: Mapping[str, int | None],
    sheet: str,
    letters: Mapping[str, str] | None = None,
    *,
    pending: bool,
) -> None:
    """422 (with the cells) when a line ID of the plan is another team's, approved or (`pending`) awaiting a decision.

    A line ID names one line in the whole master: the actuals import matches on it, ignoring case.
    """
    keys = list(dict.fromkeys(line_id.lower() for line_id in rows if line_id))
    if not keys:
        return
    year = schema.calendar.year  # a line ID names one line in its year's master
    newest = select(func.max(MasterVersion.id)).where(MasterVersion.fiscal_year == year).group_by(MasterVersion.team_id)
    current = select(MasterVersion.team_id, MasterVersion.submission_id).where(MasterVersion.id.in_(newest)).subquery()
    held = select(current.c.submission_id).where(current.c.team_id != team)
    candidates = held
    if pending:  # submitted, not decided, and still based on its team's current plan (not stale)
        waiting = (
            select(Submission.id)
            .outerjoin(current, current.c.team_id == Submission.team_id)
            .where(
                Submission.team_id != team,
                Submission.fiscal_year == year,
                ~exists().where(Decision.submission_id == Submission.id),
                Submission.based_on_submission.is_not_distinct_from(current.c.submission_id),
            )
        )
        candidates = union(held, waiting)
    approved = set(session.scalars(held))
    taken: dict[str, tuple[str, str, int]] = {}
    for start in range(0, len(keys), _ID_CHUNK):
        found = session.execute(
            select(SubmissionLine.line_id, Submission.team_id, Submission.id)
            .join(Submission, Submission.id == SubmissionLine.submission_id)
            .where(
                SubmissionLine.submission_id.in_(candidates),
                func.lower(SubmissionLine.line_id).in_(keys[start : start + _ID_CHUNK]),
            )
            .order_by(Submission.team_id, Submission.id)
        )
        for line_id, other, submission in found:
            taken.setdefault(line_id.lower(), (line_id, other, submission))
    if not taken:
        return
    letter = (letters or {}).get("line_id") or schema["line_id"].letter
    issues = []
    for line_id, row in rows.items():
        if not line_id or line_id.lower() not in taken:
            continue
        theirs, other, submission = taken[line_id.lower()]
        plan = "approved plan" if submission in approved else "plan waiting for approval"
        same = "" if theirs == line_id else f" (as {theirs})"
        cell = f"{letter}{row}" if row else None
        issues.append(
            {
                "severity": "error",
                "rule": str(Rule.ID_OF_ANOTHER_TEAM),
                "sheet": sheet if cell else None,
                "cell": cell,
                "location": f"{sheet}!{cell}" if cell else None,
                "column": "line_id",
                "line_id": line_id,
                "team": other,
                "message": f"Line ID {line_id} is already used by team {other}'s {plan}{same}; "
                "give this line an ID of its own (your team's template numbers new rows with your team's ID)",
            }
        )
    raise Unprocessable(
        f"{len(issues)} line ID(s) of the plan belong to other teams' plans; nothing was stored", issues=issues
    )


def _sheet_of(source: str) -> str:
    """Where a plan's cells are: the Plan sheet of a workbook or Google sheet, or the rows of a JSON plan."""
    return "Plan" if source in ("xlsx", "gsheets") else "lines"


def allocation_issue(finding: dict[str, Any]) -> dict[str, Any]:
    return {
        "severity": "warning",
        "rule": "allocation.over",
        "sheet": "Summary",
        "cell": None,
        "column": None,
        **finding,
    }


def stored_lines(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Typed lines as JSON-ready dicts: money in cents, dates as ISO strings, blanks as null.

    Converted a column at a time (numpy does the dates and numbers in one call each), then
    zipped into one dict per line: boxing every cell through pandas' records cost more than
    reading the plan.
    """
    names = [name for name in table.columns if name != "_row"]
    columns = [_json_column(table[name].to_numpy()) for name in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _json_column(values: np.ndarray) -> list[Any]:
    """One typed column as JSON values: ISO dates (null for none), Python numbers, text as it is."""
    if values.dtype.kind == "M":
        return [None if day == "NaT" else day for day in np.datetime_as_string(values, unit="D").tolist()]
    if values.dtype.kind == "f":
        return [None if math.isnan(x) else x for x in values.tolist()]
    if values.dtype.kind != "O":
        return values.tolist()
    out = values.tolist()
    if all(type(v) is str for v in out):  # the text columns: nothing to convert
        return out
    return [_json_value(v) for v in out]


def _json_value(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if value is pd.NaT or value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def decide(
    store: Store,
    schema: PlanSchema,
    user: User,
    submission_id: int,
    action: str,
    comment: str,
    idem: Idempotency | None = None,
    *,
    over_allocation: str = "flag",
    follow_ups: Mapping[str, FollowUp | QueuedFollowUp] | None = None,
    step: str | None = None,
) -> dict[str, Any]:
    """Take the step of its approval chain a submission waits for: approve or reject it, in one transaction.

    The last step's approval merges the plan into a new master version; an earlier step's records
    who approved it and tells the next step's approvers (`sync_service.access.approvals`). A rejection at
    any step ends the chain. `step`, when given, is the step the caller means to take: 409 when
    the submission no longer waits for it (another approver took it first).

    Then each of `follow_ups` (for example the Google push) runs, its answer under its name in the
    result; the API, the dashboard and the command line pass the same ones (`follow_ups_for`).

    The region's teams are locked first, so approvals of one region happen one after another and
    each checks the master as it really is: the plan must still be based on the team's current
    plan (409 with what changed), must not change a month locked since (409), and with
    `over_allocation="refuse"` must keep the region within its allocation (409).
    """
    if not approvals.may_approve_something(user):
        raise Forbidden("only finance and the approvers an approval chain names approve or reject plans")
    if action == "rejected" and not comment.strip():
        raise ServiceError("say why the plan is rejected in 'comment'; the marketer will read it")
    with store.transaction() as session:
        found = session.get(Submission, submission_id)
        if found is None:
            raise NotFound(f"there is no submission {submission_id}")
        team = session.get(Team, found.team_id)
        region = session.scalars(
            select(Team.id).where(Team.region == team.region).order_by(Team.id).with_for_update()
        ).all()
        del region  # held until commit
        submission = session.get(Submission, submission_id, with_for_update=True, populate_existing=True)
        schema = schema.for_year(submission.fiscal_year)  # checked against its own year's calendar and allocations
        years.require_open(session, submission.fiscal_year, "approve or reject a plan")
        if submission.user_id == user.id:
            raise Forbidden(f"you submitted plan {submission_id}; another approver must approve or reject it")
        status = status_of(session, submission)
        if status not in ("submitted", "stale"):
            raise Conflict(f"submission {submission_id} is already {status}", current_status=status)
        position, waiting, last = _step_to_take(session, user, submission, team.region, step)
        findings: list[dict[str, Any]] = []
        if action == "approved":
            current = current_submission(session, team.id, submission.fiscal_year)
            if submission.based_on_submission != current:
                raise Conflict(
                    f"submission {submission_id} was edited from submission {submission.based_on_submission or 'none'}"
                    f", but team {team.id}'s approved plan is now submission {current}; approving it would overwrite "
                    "that plan's changes. Reject it and ask for a plan edited from the current one",
                    current_status="stale",
                    current_submission=current,
                    changes=team_diff(session, submission.based_on_submission, current),
                )
            if not last:  # a step of the chain, not yet the approval that merges the plan
                return _take_step(session, user, submission, position, waiting, comment, idem)
            lines = [line.values for line in submission.lines]
            rows = {line.line_id: line.row for line in submission.lines}
            try:
                _check_locks(session, schema, current, lines, rows, _sheet_of(submission.source))
            except Unprocessable as exc:
                raise Conflict(
                    f"submission {submission_id} changes months that were locked after it was submitted",
                    issues=exc.issues,
                ) from None
            try:
                check_line_ids(session, schema, team.id, rows, _sheet_of(submission.source), pending=False)
            except Unprocessable as exc:
                raise Conflict(
                    f"submission {submission_id} uses line IDs another team's plan was approved with since; "
                    "reject it and ask for a plan with IDs of its own",
                    issues=exc.issues,
                ) from None
            totals = {
                (t.quarter, t.channel): t.cents
                for t in session.scalars(select(SubmissionTotal).where(SubmissionTotal.submission_id == submission.id))
            }
            findings = allocations.allocation_findings(session, schema, team, totals)
            if findings and over_allocation == "refuse":
                raise Conflict(
                    f"approving submission {submission_id} would put {team.region} over its allocation",
                    issues=[allocation_issue(f) for f in findings],
                )
        session.add(Decision(submission_id=submission.id, user_id=user.id, action=action, comment=comment.strip()))
        session.add(
            ApprovalStep(
                submission_id=submission.id,
                position=position,
                step=waiting["step"],
                user_id=user.id,
                action=action,
                comment=comment.strip(),
            )
        )
        version = None
        if action == "approved":
            row = MasterVersion(
                fiscal_year=submission.fiscal_year,
                user_id=user.id,
                team_id=submission.team_id,
                submission_id=submission.id,
            )
            session.add(row)
            session.flush()
            version = row.id
        session.add(
            AuditEvent(
                user_id=user.id,
                action=f"submission.{action[:-1]}",
                target=f"submission:{submission.id}",
                detail={
                    "team": submission.team_id,
                    "comment": comment.strip(),
                    "version": version,
                    "over_allocation": [f["message"] for f in findings],
                },
            )
        )
        session.flush()
        outbox.stage(session, f"submission.{action}", user, submission=submission.id)
        result = {**describe(session, submission), "master_version": version, "over_allocation": findings}
        remember(session, user, idem, 200, result)
        # A queued follow-up (the Google push) is written with the decision: it is never lost after it.
        staged = {
            name: f.stage(session, user, result)
            for name, f in (follow_ups or {}).items()
            if isinstance(f, QueuedFollowUp)
        }
    # Committed: what follows a decision runs now, whoever made it and however; it never undoes the decision.
    for name, follow_up in (follow_ups or {}).items():
        if isinstance(follow_up, QueuedFollowUp):
            result[name] = follow_up.after(staged[name])
        else:
            result[name] = run_follow_up(name, follow_up, user, result)
    return result


def _step_to_take(
    session: Session, user: User, submission: Submission, region: str, wanted: str | None
) -> tuple[int, dict[str, str], bool]:
    """(position, step, whether it is the last) of the step `user` takes now; 403 or 409 saying why not."""
    position, waiting, last, done = approvals.next_step(session, submission.id)
    names = {s.user_id: (session.get(User, s.user_id) or User(name="?")).name for s in done}
    if wanted is not None and wanted != waiting["step"]:
        took = next((s for s in done if s.step == wanted), None)
        if took is not None:
            raise Conflict(
                f"the {wanted} step of submission {submission.id} was taken by {names[took.user_id]} at "
                f"{took.created_at.isoformat(timespec='seconds')}; it now waits for {waiting['label']}",
                waiting_for=waiting["step"],
            )
        raise Conflict(
            f"submission {submission.id} waits for {waiting['label']}, not {wanted}", waiting_for=waiting["step"]
        )
    if not approvals.holds(user, waiting["step"], region):
        took = next((s for s in done if approvals.holds(user, s.step, region)), None)
        if took is not None:  # the step this approver could take was taken by another one first
            raise Conflict(
                f"the {took.step} step of submission {submission.id} was taken by {names[took.user_id]}; "
                f"it now waits for {waiting['label']}",
                waiting_for=waiting["step"],
            )
        raise Forbidden(
            f"submission {submission.id} waits for {waiting['label']} (step {position + 1}); you do not hold it"
        )
    mine = next((s for s in done if s.user_id == user.id), None)
    if mine is not None:
        raise Forbidden(
            f"you took the {mine.step} step of submission {submission.id}; "
            f"another approver must take {waiting['label']}"
        )
    return position, waiting, last


def _take_step(
    session: Session,
    user: User,
    submission: Submission,
    position: int,
    waiting: dict[str, str],
    comment: str,
    idem: Idempotency | None,
) -> dict[str, Any]:
    """Record an approval at a step before the last: who, when, why; the next step's approvers are told."""
    session.add(
        ApprovalStep(
            submission_id=submission.id,
            position=position,
            step=waiting["step"],
            user_id=user.id,
            action="approved",
            comment=comment.strip(),
        )
    )
    session.flush()  # the (submission, position) key makes a second approval of the step fail here
    session.add(
        AuditEvent(
            user_id=user.id,
            action="submission.step_approved",
            target=f"submission:{submission.id}",
            detail={"team": submission.team_id, "step": waiting["step"], "comment": comment.strip()},
        )
    )
    outbox.stage(session, "submission.submitted", user, submission=submission.id)
    result = {**describe(session, submission), "master_version": None, "over_allocation": []}
    remember(session, user, idem, 200, result)
    return result


FollowUp = Callable[[User, dict[str, Any]], dict[str, Any] | None]
log = logging.getLogger(__name__)


class QueuedFollowUp:
    """A follow-up done as a background job: `stage` writes it in the decision's transaction, `after` queues it."""

    def stage(self, session: Session, user: User, decision: dict[str, Any]) -> Any:
        raise NotImplementedError

    def after(self, staged: Any) -> dict[str, Any] | None:
        raise NotImplementedError


def run_follow_up(name: str, follow_up: FollowUp, user: User, result: dict[str, Any]) -> dict[str, Any] | None:
    """Run one follow-up of a committed decision; a failure is reported in the answer and logged, never raised."""
    try:
        return follow_up(user, result)
    except ServiceError as exc:
        log.warning("%s after the decision on submission %s failed: %s", name, result.get("id"), exc.detail)
        return {"error": exc.detail}
    except Exception:  # the decision is committed: it is answered as such whatever the follow-up did
        log.exception("%s after the decision on submission %s failed", name, result.get("id"))
        return {"error": f"{name} failed; it has been logged"}


def describe(session: Session, submission: Submission, user_name: str | None = None) -> dict[str, Any]:
    if user_name is None:
        user = session.get(User, submission.user_id)
        user_name = user.name if user else None
    errors = sum(1 for i in submission.report if i.get("severity") == Severity.ERROR)
    return {
        "id": submission.id,
        "team": submission.team_id,
        "status": status_of(session, submission),
        "submitted_by": user_name,
        "submitted_at": submission.created_at.isoformat(),
        "source": submission.source,
        "filename": submission.filename,
        "sha256": submission.raw_sha256,
        "lines": submission.line_count,
        "cycle": submission.cycle_id,
        "approval": approvals.state(session, submission.id),
        "report": {"errors": errors, "warnings": len(submission.report) - errors, "issues": submission.report},
    }


def list_submissions(
    store: Store, user: User, year: int, team: str | None = None, limit: int = 500, after: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """(a page of fiscal year `year`'s submissions the caller may read, oldest first; the next page's cursor)."""
    require_plan_reader(user)
    start = id_after(after)
    with store.reading() as session:
        user = session.merge(user)
        query = select(Submission).where(Submission.fiscal_year == year).order_by(Submission.id).limit(limit + 1)
        if start is not None:
            query = query.where(Submission.id > start)
        if team is not None:
            query = query.where(Submission.team_id == team)
        teams = visible_teams(user)
        if teams is not None:
            query = query.where(Submission.team_id.in_(sorted(teams)))
        found = list(session.scalars(query))
        following = str(found[limit - 1].id) if len(found) > limit else None
        return [describe(session, s) for s in found[:limit]], following


def get_submission(store: Store, user: User, submission_id: int) -> dict[str, Any]:
    require_plan_reader(user)
    with store.reading() as session:
        user = session.merge(user)
        submission = session.get(Submission, submission_id)
        if submission is None:
            raise NotFound(f"there is no submission {submission_id}")
        if not can_see(user, submission.team_id) and not _approves(session, user, submission):
            raise Forbidden(f"submission {submission_id} is not one of your teams' plans")
        return describe(session, submission)


def _approves(session: Session, user: User, submission: Submission) -> bool:
    """Whether `user` holds a step of the submission's chain (a region lead reads the region's plans they approve)."""
    region = session.get(Team, submission.team_id).region
    steps, _ = approvals.chain_of(session, submission.id)
    return any(approvals.holds(user, s["step"], region) for s in steps)


def may_take(session: Session, user: User, submission: Submission, described: dict[str, Any]) -> bool:
    """Whether `user` may take the step a (described) submission waits for now, as `decide` would let them.

    Not the submitter, not someone who took a step of its chain, and only the holder of the step.
    """
    waiting = described["approval"]["waiting_for"]
    if waiting is None or submission.user_id == user.id or described["status"] not in ("submitted", "stale"):
        return False
    if any(step.user_id == user.id for step in approvals.taken(session, submission.id)):
        return False  # nobody takes two steps of one chain
    return approvals.holds(user, waiting, session.get(Team, submission.team_id).region)


def approval_queue(store: Store, user: User) -> dict[str, Any]:
    """What waits for `user`: the submissions whose waiting step they may take, and the transfers they may decide.

    Also every submission in review the caller may read, with its place in its chain.
    """
    with store.reading() as session:
        user = session.merge(user)
        open_ids = select(Decision.submission_id)
        query = select(Submission).where(Submission.id.not_in(open_ids)).order_by(Submission.id)
        mine, in_review = [], []
        teams = visible_teams(user)
        for submission in session.scalars(query):
            if status_of(session, submission) not in ("submitted", "stale"):
                continue
            described = None
            if teams is None or submission.team_id in teams or _approves(session, user, submission):
                described = describe(session, submission)
                in_review.append(described)
            if described is not None and may_take(session, user, submission, described):
                mine.append(described)
        waiting_transfers = []
        for t in transfers.transfers_json(session, user, None):  # waiting in every year
            if t.get("can_decide"):
                waiting_transfers.append(t)
        return {"submissions": mine, "transfers": waiting_transfers, "in_review": in_review}


def _master_at(session: Session, year: int, version: int) -> dict[str, int]:
    """Team -> submission held by fiscal year `year`'s master at `version`."""
    return master.current_submissions(session, year, version)


def master_versions(store: Store, schema: PlanSchema, user: User) -> list[dict[str, Any]]:
    """Every master version of the schema's fiscal year, newest first: who changed which team's plan, when."""
    require_plan_reader(user)
    with store.reading() as session:
        user = session.merge(user)
        rows = session.execute(
            select(MasterVersion, User.name)
            .join(User)
            .where(MasterVersion.fiscal_year == schema.calendar.year)
            .order_by(MasterVersion.id.desc())
        )
        return [
            {
                "version": v.id,
                "team": v.team_id,
                "submission": v.submission_id,
                "approved_by": name,
                "approved_at": v.created_at.isoformat(),
            }
            for v, name in rows
            if can_see(user, v.team_id)
        ]


def master_diff(store: Store, schema: PlanSchema, user: User, old: int, new: int) -> dict[str, Any]:
    """What changed in the schema's year's master from version `old` to `new`: lines added, removed and changed."""
    require_plan_reader(user)
    with store.reading() as session:
        user = session.merge(user)
        latest = session.scalar(select(func.max(MasterVersion.id))) or 0
        for version in (old, new):
            if not 0 <= version <= latest:
                raise NotFound(f"there is no master version {version}; the newest is {latest}")
        year = schema.calendar.year
        before, after = _master_at(session, year, old), _master_at(session, year, new)
        teams = []
        for team in sorted(set(before) | set(after)):
            if before.get(team) == after.get(team) or not can_see(user, team):
                continue
            teams.append({"team": team, **team_diff(session, before.get(team), after.get(team))})
        return {"from": old, "to": new, "teams": teams}


def team_diff(session: Session, old: int | None, new: int | None) -> dict[str, Any]:
    """What changed between two plans of one team: lines added, removed, and changed field by field."""
    a, b = lines_by_id(session, old), lines_by_id(session, new)
    changed = []
    for line_id in sorted(a.keys() & b.keys()):
        fields = {
            k: {"from": a[line_id].get(k), "to": b[line_id].get(k)}
            for k in sorted(a[line_id].keys() | b[line_id].keys())
            if a[line_id].get(k) != b[line_id].get(k)
        }
        if fields:
            changed.append({"line_id": line_id, "fields": fields})
    return {
        "from_submission": old,
        "to_submission": new,
        "added": [b[i] for i in sorted(b.keys() - a.keys())],
        "removed": [a[i] for i in sorted(a.keys() - b.keys())],
        "changed": changed,
    }


def submission_diff(session: Session, submission: Submission) -> dict[str, Any]:
    """What a submission changes, kept once it is approved (`team_diff` of the plan it is compared with).

    An approved plan is compared with the plan its team held in the master just before its approval
    (the one it replaced), so its change stays readable afterwards; any other, with the team's
    approved plan now (what approving it would change).
    """
    approved_at = session.scalar(select(func.min(MasterVersion.id)).where(MasterVersion.submission_id == submission.id))
    if approved_at is not None:
        before = _master_at(session, submission.fiscal_year, approved_at - 1).get(submission.team_id)
    else:
        before = current_submission(session, submission.team_id, submission.fiscal_year)
    return team_diff(session, before, submission.id)


def planned_by_month(session: Session, schema: PlanSchema, old: int | None, new: int | None) -> list[dict[str, Any]]:
    """The totals of a diff: each currency's planned spend by month in plan `old` and in plan `new` of a team.

    [{"currency", "months": [{"month", "from", "to"}], "from", "to"}] in cents of the lines' own
    currency (a plan's lines may be in several), currencies in the order the plans first use them.
    Exact: integer cents summed, never converted.
    """
    months = [c.name for c in schema.month_columns]
    sums: dict[str, dict[str, dict[str, int]]] = {}
    for side, submission_id in (("from", old), ("to", new)):
        for line in lines_by_id(session, submission_id).values():
            by_month = sums.setdefault(str(line.get("currency") or ""), {m: {"from": 0, "to": 0} for m in months})
            for month in months:
                by_month[month][side] += int(line.get(month) or 0)
    return [
        {
            "currency": currency,
            "months": [{"month": m, **by_month[m]} for m in months],
            "from": sum(v["from"] for v in by_month.values()),
            "to": sum(v["to"] for v in by_month.values()),
        }
        for currency, by_month in sums.items()
    ]


def version_history(store: Store, schema: PlanSchema, user: User) -> list[dict[str, Any]]:
    """`master_versions`, each with the plan it replaced (`replaced`) and its change of planned spend.

    `change`: the team's planned spend after the version less before it, in reporting cents (the
    submissions' totals, converted at the plan rates as the master converts them).
    """
    listing = master_versions(store, schema, user)
    held: dict[str, int] = {}
    for row in reversed(listing):  # oldest first: what each team held before each version
        row["replaced"] = held.get(row["team"])
        held[row["team"]] = row["submission"]
    ids = {row["submission"] for row in listing} | {row["replaced"] for row in listing if row["replaced"]}
    with store.reading() as session:
        totals = dict(
            session.execute(
                select(SubmissionTotal.submission_id, func.sum(SubmissionTotal.cents))
                .where(SubmissionTotal.submission_id.in_(sorted(ids)))
                .group_by(SubmissionTotal.submission_id)
            ).all()
        )
    for row in listing:
        before = int(totals.get(row["replaced"], 0) or 0) if row["replaced"] else 0
        row["change"] = int(totals.get(row["submission"], 0) or 0) - before
    return listing


def lines_of(session: Session, submission_id: int | None) -> list[dict[str, Any]]:
    """A submission's lines in order (none for None)."""
    return list(lines_by_id(session, submission_id).values())


def lines_by_id(session: Session, submission_id: int | None) -> dict[str, dict[str, Any]]:
    if submission_id is None:
        return {}
    lines = session.scalars(
        select(SubmissionLine).where(SubmissionLine.submission_id == submission_id).order_by(SubmissionLine.position)
    )
    return {line.line_id: line.values for line in lines}


def audit(
    store: Store, user: User, limit: int = 200, after: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """(a page of the audit events, newest first, older than the event `after` names; the next page's cursor).

    Finance and admins only.
    """
    if user.role == Role.MARKETER:
        raise Forbidden("the audit log is for finance and admins")
    start = id_after(after)
    with store.reading() as session:
        query = (
            select(AuditEvent, User.name)
            .outerjoin(User, AuditEvent.user_id == User.id)
            .order_by(AuditEvent.id.desc())
            .limit(limit + 1)
        )
        if start is not None:
            query = query.where(AuditEvent.id < start)
        rows = session.execute(query).all()
        events = [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "user": name,
                "action": e.action,
                "target": e.target,
                "detail": e.detail,
            }
            for e, name in rows[:limit]
        ]
        return events, (str(events[-1]["id"]) if len(rows) > limit else None)


def team_template(store: Store, schema: PlanSchema, user: User, team_id: str, out: Path) -> Path:
    """The team's regional template, pre-filled with its approved lines and showing the allocation in force.

    While a reforecast cycle is open it is the team's reforecast: the cycle's closed months show
    the actual spend booked, locked (`sync_service.planning.cycles`).

    Lines, actual spend and allocations come from the master read model, so the template's Summary
    shows what the API, the master workbook and the dashboard show for the team.
    """
    require_plan_reader(user)
    with store.reading() as session:
        user = session.merge(user)
        team = session.get(Team, team_id)
        if team is None:
            raise NotFound(f"there is no team {team_id!r}")
        if not can_see(user, team.id):
            raise Forbidden(f"team {team.id} is not one of yours")
        region = team.region
        view = master.load(store, schema, user)
        cycle, closed = cycles.reforecast_months(session, view)
        made_for = (cycle.id, cycle.name) if cycle else None
    shown = cycles.shown_closed(view, team_id, closed)
    lines = []
    for line in view.team_lines(team_id):
        typed: dict[str, Any] = {}
        line = {**line, **shown.get(line["line_id"], {})}  # a reforecast's closed months show the actual spend
        for name, value in line.items():
            if name not in schema or value is None:
                continue
            kind = schema[name].type.value
            if kind == "money":
                typed[name] = Decimal(value) / 100 if value else None
            elif kind == "date":
                typed[name] = dt.date.fromisoformat(value)
            else:
                typed[name] = value or None
        lines.append(typed)
    in_force = region_allocations(view).get(region, {})
    return build_template(
        schema,
        region,
        out,
        lines=lines,
        based_on=view.held_by(team_id) or 0,
        allocations=dict(in_force),
        team=team_id,
        closed=closed,
        cycle=made_for,
        booked=view.actual_months is not None,
    )
