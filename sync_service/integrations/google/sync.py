"""The service's side of Google Sheets: team sheets registered per team, pulls as submissions, master pushes.

A pulled plan goes through exactly the path of an upload (`workflow.submit`): the same
validation, merge rules and audit. A Google sheet is the team's one shared, live plan, so a
pull is based on the team's current approved plan.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import gspread
import requests
from google.auth.exceptions import GoogleAuthError
from gspread.exceptions import APIError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sheet_templates.gsheets_template import reforecast_from_meta
from sheet_templates.schema import PlanSchema
from sync_service.access.auth import can_see, require_finance, require_plan_reader
from sync_service.budget import baselines
from sync_service.integrations.google import client as gsheets
from sync_service.master import model as master
from sync_service.master import performance, reports
from sync_service.planning import cycles, submissions, workflow
from sync_service.platform import errors, jobs, years
from sync_service.platform.errors import Conflict, Forbidden, NotFound, ServiceError, Unprocessable
from sync_service.platform.idempotency import Idempotency
from sync_service.platform.storage import AuditEvent, MasterVersion, Role, Store, Submission, Team, TeamSheet, User
from sync_service.spend.report import spend_table

SCHEMA_KEY = "plansheet.schema"


class NotConfigured(errors.NotConfigured):
    title = "Google Sheets is not configured"


class GoogleFailed(errors.UpstreamFailed):
    title = "Google Sheets failed"


# What a call to Google may raise: its answer, the network, the token exchange, a key it cannot use.
GOOGLE_ERRORS = (APIError, requests.RequestException, GoogleAuthError, ValueError)


def google(config: Mapping[str, Any]) -> tuple[gsheets.GoogleSettings, gspread.Client]:
    try:
        settings = gsheets.settings_from(config)
        return settings, gsheets.client(settings)
    except gsheets.GoogleSheetsError as exc:
        raise NotConfigured(str(exc)) from None
    except (GoogleAuthError, ValueError):
        raise NotConfigured("the Google service-account key could not be used (the key is not shown)") from None


def _failed(exc: Exception, what: str) -> ServiceError:
    if isinstance(exc, APIError) and exc.code == 404:  # the caller named a spreadsheet Google does not have
        return NotFound(f"{what}: Google has no such spreadsheet, or it is not shared with the service account")
    if isinstance(exc, APIError) and exc.code == 403:
        return Unprocessable(f"{what}: the spreadsheet is not shared with the service account (Google answered 403)")
    if isinstance(exc, APIError):
        return GoogleFailed(f"{what}: Google answered {exc.code} ({exc.error.get('message', '')}) after retries")
    if isinstance(exc, requests.RequestException):
        return GoogleFailed(f"{what}: Google could not be reached ({type(exc).__name__})")
    if isinstance(exc, GoogleAuthError):
        return GoogleFailed(f"{what}: Google refused the service account's sign-in ({type(exc).__name__})")
    return GoogleFailed(f"{what}: {type(exc).__name__}")


def _sheet_view(row: TeamSheet) -> dict[str, Any]:
    return {
        "team": row.team_id,
        "spreadsheet_id": row.spreadsheet_id,
        "url": row.url,
        "created_at": row.created_at.isoformat(),
    }


def create_for_team(
    store: Store,
    schema: PlanSchema,
    user: User,
    team_id: str,
    config: Mapping[str, Any],
    editors: Sequence[str] = (),
    *,
    replace: bool = False,
) -> dict[str, Any]:
    """Create `team_id`'s plan spreadsheet in Google Sheets, share it with `editors`, and register it."""
    require_finance(user, "creates team plan sheets")
    with store.reading() as session:
        team = session.get(Team, team_id)
        if team is None:
            raise NotFound(f"there is no team {team_id!r}")
        existing = session.get(TeamSheet, (team_id, schema.calendar.year))
        if existing is not None and not replace:
            raise Conflict(
                f"team {team_id} already plans in {existing.url}; send replace=true to give it a new sheet",
                spreadsheet_id=existing.spreadsheet_id,
            )
        region = team.region
        current = submissions.current_submission(session, team_id, schema.calendar.year)
        lines = workflow.lines_of(session, current)
        view = master.load(store, schema, user)
        cycle, closed = cycles.reforecast_months(session, view)
    if closed:  # a reforecast sheet: the closed months show the actual spend booked
        shown = cycles.shown_closed(view, team_id, closed)
        lines = [{**line, **shown.get(line["line_id"], {})} for line in lines]
    settings, gc = google(config)
    try:
        created = gsheets.create_team_sheet(
            gc,
            schema,
            region,
            team_id,
            settings,
            editors,
            lines=lines,
            cycle=cycle.id if cycle else None,
            closed=closed,
        )
    except GOOGLE_ERRORS as exc:
        raise _failed(exc, f"creating the plan sheet of {team_id}") from None
    with store.transaction() as session:
        year = schema.calendar.year
        years.require_open(session, year, "give a team a plan sheet")
        row = session.get(TeamSheet, (team_id, year)) or TeamSheet(team_id=team_id, fiscal_year=year)
        row.spreadsheet_id, row.url, row.user_id = created.spreadsheet_id, created.url, user.id
        row.based_on = current
        session.add(row)
        session.add(
            AuditEvent(
                user_id=user.id,
                action="gsheets.create",
                target=f"team:{team_id}",
                detail={"spreadsheet": created.spreadsheet_id, "editors": list(editors), "requests": created.requests},
            )
        )
        session.flush()
        return {**_sheet_view(row), "requests": created.requests}


def list_sheets(store: Store, user: User, year: int) -> list[dict[str, Any]]:
    """The teams' Google plan sheets of fiscal year `year` the caller may read."""
    require_plan_reader(user)
    with store.reading() as session:
        user = session.merge(user)
        query = select(TeamSheet).where(TeamSheet.fiscal_year == year).order_by(TeamSheet.team_id)
        return [_sheet_view(r) for r in session.scalars(query) if can_see(user, r.team_id)]


def pull_for_team(
    store: Store,
    schema: PlanSchema,
    user: User,
    team_id: str,
    config: Mapping[str, Any],
    over_allocation: str,
    idem: Idempotency | None = None,
) -> dict[str, Any]:
    """Read the team's sheet in one call and submit it as an upload would be: 201, 422 with its cells, or 409."""
    with store.reading() as session:
        user = session.merge(user)
        team = session.get(Team, team_id)
        if team is None:
            raise NotFound(f"there is no team {team_id!r}")
        if user.role == Role.ADMIN or not can_see(user, team_id):
            raise Forbidden(f"you may not submit plans for team {team_id}")
        sheet = session.get(TeamSheet, (team_id, schema.calendar.year))
        if sheet is None:
            raise NotFound(f"team {team_id} has no Google plan sheet; finance creates one first")
        region, spreadsheet_id, url = team.region, sheet.spreadsheet_id, sheet.url
        base = _sheet_base(session, sheet)
    _, gc = google(config)
    try:
        pulled = gsheets.pull_team_sheet(gc, schema, spreadsheet_id)
    except GOOGLE_ERRORS as exc:
        raise _failed(exc, f"reading the plan sheet of {team_id}") from None
    problems = gsheets.check_meta(pulled.meta, schema, team_id, region)
    if problems:
        raise Unprocessable(
            f"{url} is not {team_id}'s current plan template: " + "; ".join(problems),
            issues=[
                {"severity": "error", "rule": "template.identity", "sheet": None, "cell": None, "message": p}
                for p in problems
            ],
        )
    raw = json.dumps(pulled.grid, separators=(",", ":"), default=str).encode()
    closed, cycle = reforecast_from_meta(pulled.meta, schema)
    incoming = workflow.Incoming(
        team_id, "gsheets", raw, filename=url, grid=pulled.grid, base={"submission": base}, closed=closed, cycle=cycle
    )
    return workflow.submit(store, schema, user, incoming, idem, over_allocation=over_allocation)


def _sheet_base(session: Session, sheet: TeamSheet) -> int | None:
    """The approved plan the sheet holds: the newest approved pull from it, else the plan it was filled with.

    A plan approved from elsewhere (an xlsx upload) after that is not in the sheet, so a pull
    then answers 409 with what changed instead of silently replacing it.
    """
    pulled = session.scalar(
        select(func.max(MasterVersion.submission_id))
        .join(Submission, Submission.id == MasterVersion.submission_id)
        .where(
            Submission.team_id == sheet.team_id,
            Submission.fiscal_year == sheet.fiscal_year,
            Submission.source == "gsheets",
            Submission.filename == sheet.url[:255],
            Submission.created_at >= sheet.created_at,
        )
    )
    return pulled if pulled is not None else sheet.based_on


def push_target(config: Mapping[str, Any], spreadsheet_id: str | None = None) -> str:
    """The spreadsheet a push writes to, refusing at once (503) when Google Sheets is not set up."""
    target = spreadsheet_id or config.get("GOOGLE_MASTER_SPREADSHEET_ID")
    if not target:
        raise NotConfigured("no master spreadsheet: set PLANSHEET_GOOGLE_MASTER_SPREADSHEET_ID or send spreadsheet_id")
    try:
        gsheets.settings_from(config)
    except gsheets.GoogleSheetsError as exc:
        raise NotConfigured(str(exc)) from None
    return target


def push_master(
    store: Store,
    schema: PlanSchema,
    user: User,
    config: Mapping[str, Any],
    spreadsheet_id: str | None = None,
    mark: str | None = None,
) -> dict[str, Any]:
    """Write the current master, its rollup and its variance to the finance master spreadsheet, atomically.

    `mark` is the job doing it: a push that already landed under that mark is not sent again.
    """
    require_finance(user, "pushes the master budget")
    target = push_target(config, spreadsheet_id)
    settings, gc = google(config)
    # One push at a time per database, reading the master once it holds the lock: two pushes never mix
    # their sheets, and the last one to finish shows the newest master.
    with store.exclusive(f"gsheets-push:{target}"):
        view = master.load(store, schema, user)
        rollup = reports.rollup_json(view, "region,channel", "quarter", "planned")
        variance = reports.variance_json(view, "region,channel", None)
        per_line = performance.lines(view)
        tables = [
            ("Performance", performance.table(view, per_line, ["region"])),
            ("Performance by channel", performance.table(view, per_line, ["channel"])),
        ]
        budget = baselines.budget_table(store, schema, user)
        if budget is not None:  # the budget against the plan, the latest estimate and actuals, once one is locked
            tables.append(("Budget", budget[1]))
        spend = spend_table(view)
        if spend is not None:  # plan, committed, invoiced, accrued and remaining, once POs are imported
            tables.append(("Spend", spend))
        earlier = schema.year_before()
        if earlier is not None:  # described by the organisation file: the year against it
            last = master.load(store, earlier, user)
            tables.append(("Year over year", reports.year_over_year_table(view, last, "region")))
        sheets = gsheets.master_sheets(schema, list(view.lines), rollup, variance, tables)
        try:
            result = gsheets.push_master(gc, target, sheets, settings, mark=mark)
        except GOOGLE_ERRORS as exc:
            raise _failed(exc, "pushing the master (the master sheet still shows the previous push)") from None
    answer = {
        "spreadsheet_id": target,
        "master_version": view.version,
        "sheets": result.sheets,
        "requests": result.requests,
        "bytes_sent": result.bytes_sent,
        "already_pushed": result.already_pushed,
    }
    audit = AuditEvent(
        user_id=user.id,
        action="gsheets.push",
        target=f"spreadsheet:{target}",
        detail={"version": view.version, "sheets": result.sheets, "requests": result.requests, "job": mark},
    )
    return {"answer": answer, "audit": audit}


def push_now(
    store: Store, schema: PlanSchema, user: User, config: Mapping[str, Any], spreadsheet_id: str | None = None
) -> dict[str, Any]:
    """A push done here and now (the command line), recorded in the audit log."""
    done = push_master(store, schema, user, config, spreadsheet_id)
    with store.transaction() as session:
        session.add(done["audit"])
    return done["answer"]


@jobs.kind("gsheets.push", "Push the master to Google Sheets")
def push_job(run: jobs.Run) -> dict[str, Any]:
    """The job `gsheets.push`: the push, marked with the job's id, and its audit entry with the job's success."""
    done = push_master(
        run.store,
        run.schema,
        run.user,
        run.app.config,
        run.job.args.get("spreadsheet_id"),
        run.job.id,
    )
    with run.store.transaction() as session:
        if not done["answer"]["already_pushed"]:
            session.add(done["audit"])
        run.succeed(session, done["answer"])
    return done["answer"]


def request_push(app: Any, user: User, spreadsheet_id: str | None = None) -> str:
    """Queue a push of the master (refused at once when Google Sheets is not set up); the job's id."""
    require_finance(user, "pushes the master budget")
    target = push_target(app.config, spreadsheet_id)
    return jobs.enqueue(app, "gsheets.push", {"spreadsheet_id": target}, user)


class PushAfterApproval(workflow.QueuedFollowUp):
    """After each approval, a push job written in the approval's own transaction: an approval never loses its push."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def stage(self, session: Session, user: User, decision: dict[str, Any]) -> Any:
        if decision.get("status") != "approved":
            return None
        try:
            target = push_target(self.app.config)
        except ServiceError as exc:  # the approval stands; the answer says why nothing was pushed
            return {"error": exc.detail}
        return jobs.create(session, "gsheets.push", {"spreadsheet_id": target}, user).id

    def after(self, staged: Any) -> dict[str, Any] | None:
        if not isinstance(staged, str):
            return staged
        jobs.dispatch(self.app, staged)
        return {"job": staged, "status": "queued", "href": f"/api/v1/jobs/{staged}"}


def follow_ups_for(app: Any) -> dict[str, workflow.FollowUp | workflow.QueuedFollowUp]:
    """What follows every decision, however it was made (API, dashboard, command line), as configured."""
    out: dict[str, workflow.FollowUp | workflow.QueuedFollowUp] = {}
    if app.config.get("GOOGLE_PUSH_ON_APPROVAL"):
        out["master_sheet"] = PushAfterApproval(app)
    return out
