"""The planning pages: plan status, a plan's upload, a submission and its approval, queues, teams, versions, audit.

Each page parses, calls the planning domain (the same function the API's route calls) and renders;
amounts, months, rules, statuses and audit actions reach the reader in words and formatted money.
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from addin.issues import Severity
from sheet_templates.formatting import Formats, words
from sheet_templates.money import to_cents
from sheet_templates.schema import PlanSchema
from sheet_templates.text import uploaded_name
from sync_service.access import approvals
from sync_service.access.auth import can_see, visible_teams
from sync_service.master import model as master_model
from sync_service.planning import workflow
from sync_service.platform.audit import action_words, target_words
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.errors import Forbidden, NotFound, ServiceError, Unprocessable, rule_words
from sync_service.platform.storage import Decision, MasterVersion, Role, Submission, Team, User
from sync_service.web.base import XLSX, bp, follow_ups, formats, login_required
from sync_service.web.forms import FormErrors
from sync_service.web.refusals import flashed_refusal, refused_as_http

# A submission's and an approval step's status, as the pages say it.
STATUS_WORDS = {
    "not started": "Not started",
    "submitted": "Submitted",
    "stale": "Out of date",
    "approved": "Approved",
    "rejected": "Rejected",
    "superseded": "Replaced by a newer plan",
    "waiting": "Waiting",
    "not reached": "Not reached yet",
}


@bp.app_template_filter("plan_status")
def _plan_status(status: Any) -> str:
    """A submission's or step's status in words ("stale" → "Out of date")."""
    return STATUS_WORDS.get(str(status)) or words(str(status))


@bp.get("/")
@login_required
def status() -> ResponseReturnValue:
    """Plan status: every team the user may see, with its newest submission's state."""
    user = g.web_user
    with app_store().reading() as s:
        teams = [t for t in s.scalars(select(Team).order_by(Team.id)) if can_see(user, t.id)]
        rows = []
        for team in teams:
            newest = s.scalar(
                select(Submission)
                .where(Submission.team_id == team.id, Submission.fiscal_year == app_schema().calendar.year)
                .order_by(Submission.id.desc())
                .limit(1)
            )
            info = workflow.describe(s, newest) if newest is not None else None
            rows.append({"team": team, "submission": info, "state": info["status"] if info else "not started"})
    deadline = current_app.config.get("PLAN_DEADLINE")
    days_left = (dt.date.fromisoformat(deadline) - dt.date.today()).days if deadline else None
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return render_template(
        "status.html",
        rows=rows,
        counts=counts,
        deadline=deadline,
        days_left=days_left,
        may_submit=user.role in (Role.MARKETER, Role.FINANCE),
    )


@bp.route("/plans/upload", methods=["GET", "POST"])
@login_required
def upload_plan() -> ResponseReturnValue:
    """Submit a plan: upload the team's xlsx, as the API's POST /api/v1/submissions takes it (`workflow.submit`).

    A refused plan shows its report by cell, every issue at once, and nothing is stored; the user
    fixes the file and sends it again from the same page. A stored one opens its submission's page.
    """
    user = g.web_user
    teams = _submittable(user)
    chosen = (request.values.get("team") or "").strip() or (teams[0].id if len(teams) == 1 else "")
    errors, issues = FormErrors(), None
    if request.method == "POST":
        upload = request.files.get("file")
        raw = upload.read() if upload is not None else b""
        if not chosen:
            errors.add("team", "Choose the team the plan is for")
        if upload is None or not upload.filename:
            errors.add("file", "Choose your plan's xlsx file")
        elif not raw:
            errors.add("file", "The file is empty; choose your plan's xlsx file")
        if not errors:
            incoming = workflow.Incoming(chosen, "xlsx", raw, filename=uploaded_name(upload.filename))
            try:
                result = workflow.submit(
                    app_store(), app_schema(), user, incoming, over_allocation=current_app.config["OVER_ALLOCATION"]
                )
            except ServiceError as exc:
                issues = _refused(exc, errors)
            else:
                flash(_submitted_words(result), "ok")
                return redirect(url_for("web.submission", submission_id=result["id"]))
    page = render_template(
        "upload_plan.html",
        teams=teams,
        options=[(t.id, t.name) for t in teams],
        chosen=chosen,
        errors=errors,
        issues=issues,
        year=app_schema().calendar.label,
    )
    return page, 422 if errors else 200


def _submittable(user: User) -> list[Team]:
    """The teams `user` may submit plans for (all for finance, their own for a marketer), by id."""
    mine = visible_teams(user)
    with app_store().reading() as s:
        return [t for t in s.scalars(select(Team).order_by(Team.id)) if mine is None or t.id in mine]


def _refused(exc: ServiceError, errors: FormErrors) -> list[dict[str, Any]] | None:
    """A refused plan: the refusal at the field it concerns; the plan's issues (by cell) for its report, if any."""
    issues = [i for i in exc.issues or [] if "message" in i and "rule" in i]
    if isinstance(exc, Unprocessable) and issues:
        fix = ". Fix the cells the report names and send the file again"
        errors.add("file", exc.detail[:1].upper() + exc.detail[1:] + fix)
        return [
            {
                **issue,
                "where": issue.get("location") or issue.get("sheet") or "the file",
                "rule_words": rule_words(str(issue["rule"])),
                "error": issue.get("severity") == Severity.ERROR,
            }
            for issue in issues
        ]
    at = "team" if isinstance(exc, NotFound | Forbidden) else "file"
    errors.add(at, exc.detail[:1].upper() + exc.detail[1:])
    return None


def _submitted_words(result: dict[str, Any]) -> str:
    if result.get("unchanged"):
        return f"The plan is the team's approved plan as it is (submission #{result['id']}); nothing new was stored."
    waiting = result["approval"]["waiting_for"]
    step = next((s["label"] for s in result["approval"]["steps"] if s["step"] == waiting), None)
    report = result["report"]
    warned = f" with {report['warnings']} warning{'s' if report['warnings'] != 1 else ''}" if report["warnings"] else ""
    return f"Plan submitted as submission #{result['id']}{warned}" + (f"; it waits for {step}." if step else ".")


@bp.get("/submissions/<int:submission_id>")
@login_required
def submission(submission_id: int) -> ResponseReturnValue:
    """One submission: its place in its approval chain, its report, and what it changes in money by month.

    Its teams' readers open it, and so does anyone holding a step of its chain (a region lead).
    Once approved it still shows what it changed, against the plan it replaced.
    """
    user = g.web_user
    with app_store().reading() as s:
        found = s.get(Submission, submission_id)
        if found is None or not (can_see(user, found.team_id) or workflow._approves(s, user, found)):
            abort(404)
        info = workflow.describe(s, found)
        schema = app_schema().for_year(found.fiscal_year)
        diff = diff_view(s, schema, workflow.submission_diff(s, found))
        approved = s.scalar(select(MasterVersion.id).where(MasterVersion.submission_id == found.id).limit(1))
        decisions = list(s.scalars(select(Decision).where(Decision.submission_id == found.id)))
        deciders = {d.user_id: s.get(User, d.user_id).name for d in decisions}
        waiting = _waiting_step(info)
        may_decide = workflow.may_take(s, user, found, info)
        change = approvals.chain_of(s, found.id)[1]
    issues = [{**i, "rule_words": rule_words(str(i.get("rule", "")))} for i in info["report"]["issues"]]
    return render_template(
        "submission.html",
        s=info,
        chain=info["approval"],
        waiting=waiting,
        diff=diff,
        approved=approved is not None,
        change=change,
        issues=issues,
        decisions=decisions,
        deciders=deciders,
        may_decide=may_decide,
        reporting=schema.config.reporting_currency,
    )


def _waiting_step(info: dict[str, Any]) -> dict[str, Any] | None:
    """The step of the chain a described submission waits for (position, label...), or None."""
    return next((step for step in info["approval"]["steps"] if step["status"] == "waiting"), None)


def diff_view(session: Any, schema: PlanSchema, diff: dict[str, Any]) -> dict[str, Any]:
    """A plan's diff as people read it: one row per line added or removed and per field changed, and its totals.

    Amounts in each line's currency with its code (a page shows several), months by name, counts whole;
    `months`: each currency's planned spend by month before and after (`workflow.planned_by_month`).
    """
    fmt = formats()
    before = workflow.lines_by_id(session, diff["from_submission"])
    after = workflow.lines_by_id(session, diff["to_submission"])
    order = {c.name: k for k, c in enumerate(schema.input_columns)}
    rows: list[dict[str, Any]] = []
    for kind, lines in (("added", diff["added"]), ("removed", diff["removed"])):
        for line in lines:
            currency = str(line.get("currency") or schema.config.reporting_currency)
            planned = sum(int(line.get(c.name) or 0) for c in schema.month_columns)
            shown = fmt.money(planned, currency, code=True)
            rows.append(
                {
                    "kind": kind,
                    "line_id": line["line_id"],
                    "campaign": _campaign(line),
                    "what": f"Line {kind} (planned spend for the year)",
                    "before": "" if kind == "added" else shown,
                    "after": shown if kind == "added" else "",
                    "change": fmt.money(planned if kind == "added" else -planned, currency, code=True),
                    "cents": planned if kind == "added" else -planned,
                }
            )
    for change in diff["changed"]:
        line_id, fields = change["line_id"], change["fields"]
        line = after.get(line_id) or before.get(line_id) or {"line_id": line_id}
        currencies = fields.get("currency", {"from": line.get("currency"), "to": line.get("currency")})
        for name in sorted(fields, key=lambda n: order.get(n, len(order))):
            old, new = fields[name]["from"], fields[name]["to"]
            row = {"kind": "changed", "line_id": line_id, "campaign": _campaign(line), "change": "", "cents": None}
            row["what"] = _field_label(fmt, schema, name)
            row["before"] = _value(fmt, schema, name, old, currencies["from"])
            row["after"] = _value(fmt, schema, name, new, currencies["to"])
            kind = schema[name].type.value if name in schema else ""
            if kind == "money" and currencies["from"] == currencies["to"]:
                row["cents"] = int(new or 0) - int(old or 0)
                row["change"] = fmt.money(row["cents"], str(currencies["to"]), code=True)
            elif kind == "count":
                row["change"] = fmt.count((new or 0) - (old or 0))
            rows.append(row)
    months = []
    for totals in workflow.planned_by_month(session, schema, diff["from_submission"], diff["to_submission"]):
        currency = totals["currency"] or schema.config.reporting_currency
        changed = [
            {"label": fmt.month(m["month"], schema.calendar), **m, "change": m["to"] - m["from"]}
            for m in totals["months"]
            if m["from"] != m["to"]
        ]
        months.append({**totals, "currency": currency, "changed": changed, "change": totals["to"] - totals["from"]})
    return {
        **diff,
        "rows": rows,
        "months": [m for m in months if m["changed"]],
        "counts": {k: len(diff[k]) for k in ("added", "removed", "changed")},
    }


def _campaign(line: dict[str, Any]) -> str:
    parts = [str(line.get(k)) for k in ("campaign", "channel") if line.get(k)]
    return " · ".join(parts)


def _field_label(fmt: Formats, schema: PlanSchema, name: str) -> str:
    """A column as a person names it: a month by name ("Dec 2026"), any other by its template label."""
    if name in {c.name for c in schema.month_columns}:
        return fmt.month(name, schema.calendar)
    return schema[name].label if name in schema else words(name)


def _value(fmt: Formats, schema: PlanSchema, name: str, value: Any, currency: Any) -> str:
    """A stored cell as people read it: money in its line's currency, counts whole, dates by name; blank as —."""
    if value is None or value == "":
        return "—"
    kind = schema[name].type.value if name in schema else ""
    if kind == "money":
        return fmt.money(value, str(currency or schema.config.reporting_currency), code=True)
    if kind == "count":
        return fmt.count(value)
    if kind == "date":
        return fmt.date(value)
    return str(value)


@bp.post("/submissions/<int:submission_id>/decide")
@login_required
def decide(submission_id: int) -> ResponseReturnValue:
    user = g.web_user
    verdict = {"approve": "approved", "reject": "rejected"}.get(request.form.get("action", ""))
    if verdict is None:
        abort(400, "approve or reject")
    with flashed_refusal():
        result = workflow.decide(
            app_store(),
            app_schema(),
            user,
            submission_id,
            verdict,
            request.form.get("comment", ""),
            over_allocation=current_app.config["OVER_ALLOCATION"],
            follow_ups=follow_ups(),
            step=request.form.get("step") or None,  # the step the form was shown for: 409 if another took it
        )
        next_step = _waiting_step(result)
        if verdict == "approved" and next_step is not None:
            flash(f"Submission {submission_id} approved at your step; it now waits for {next_step['label']}.", "ok")
        else:
            flash(f"Submission {submission_id} {verdict}.", "ok")
        for name, outcome in result.items() if isinstance(result, dict) else ():
            if name in follow_ups() and isinstance(outcome, dict) and "error" in outcome:
                flash(f"The decision stands, but {name.replace('_', ' ')} failed: {outcome['error']}", "error")
            elif name in follow_ups() and isinstance(outcome, dict) and "job" in outcome:
                flash(f"The {name.replace('_', ' ')} push is queued as job {outcome['job'][:8]}; see Jobs.", "ok")
    return redirect(url_for("web.submission", submission_id=submission_id))


@bp.get("/approvals")
@login_required
def approvals_page() -> ResponseReturnValue:
    """What waits for the user's approval (plans at a step they hold, transfers), and every plan in review."""
    queue = workflow.approval_queue(app_store(), g.web_user)
    waiting = [(item, _waiting_step(item), _cents(item["approval"]["change"])) for item in queue["submissions"]]
    in_review = [(item, _waiting_step(item), _cents(item["approval"]["change"])) for item in queue["in_review"]]
    config = app_schema().config
    transfers = [
        {
            **t,
            "cents": _cents(t["amount"]),
            "waits_for": [config.approvals.label(s) for s in t["waiting_for"]],
            "from_words": _budget_cell(t["from"], t["from"].get("year") or t["year"]),
            "to_words": _budget_cell(t["to"], t["year"]),
        }
        for t in queue["transfers"]
    ]
    return render_template(
        "approvals.html",
        waiting=waiting,
        transfers=transfers,
        in_review=in_review,
        currency=config.reporting_currency,
    )


def _budget_cell(end: dict[str, Any], year: int) -> str:
    """One end of a transfer in words: "EMEA Q3 FY2027 Events" (or "all channels")."""
    channel = "all channels" if end["channel"] == "*" else end["channel"]
    return f"{end['region']} {formats().quarter(end['quarter'], year)} {channel}"


def _cents(text: str | None) -> int | None:
    """An amount as the domain answers it ("3000.00", exact) in cents, for the money filters; None for none."""
    return None if text is None else to_cents(text)


@bp.get("/teams/<team>")
@login_required
def team(team: str) -> ResponseReturnValue:
    """A team's approved lines (the drill-down from the master)."""
    user = g.web_user
    if not can_see(user, team):
        abort(404)
    with app_store().reading() as s:
        found = s.get(Team, team)
        if found is None:
            abort(404)
        name = found.name
    view = master_model.load(app_store(), app_schema(), user)
    keep = (view.table["team_id"] == team).to_numpy() if len(view.table) else np.zeros(0, dtype=bool)
    lines = [line for line, k in zip(view.lines, keep, strict=True) if k]
    planned = view.months[keep].sum(axis=1).tolist()  # reporting cents, the one grain
    actual = view.actual[keep].tolist()
    return render_template(
        "team.html",
        team=team,
        name=name,
        rows=list(zip(lines, planned, actual, strict=True)),
        current=view.held_by(team),
        currency=app_schema().config.reporting_currency,
        may_submit=user.role in (Role.MARKETER, Role.FINANCE),
    )


@bp.get("/versions")
@login_required
def versions() -> ResponseReturnValue:
    """The master's versions, each with its change of planned spend, and (for finance) the audit log in words."""
    user = g.web_user
    listing = workflow.version_history(app_store(), app_schema(), user)
    events, older = [], None
    if user.role == Role.FINANCE:
        with refused_as_http(404):  # a cursor that names no event
            found, older = workflow.audit(app_store(), user, AUDIT_PAGE, request.args.get("after") or None)
        events = [_event(e) for e in found]
    return render_template(
        "versions.html",
        versions=listing,
        events=events,
        older=older,
        currency=app_schema().config.reporting_currency,
    )


AUDIT_PAGE = 1000  # events a page holds (paged and searched in the browser); older ones a link away


def _event(event: dict[str, Any]) -> dict[str, Any]:
    """An audit event as the log shows it: what was done and to what in words, a link to a plan it names."""
    fmt, calendar = formats(), app_schema().calendar
    kind, _, ident = str(event["target"]).partition(":")
    detail = event.get("detail") or {}
    said = []
    if detail.get("team"):
        said.append(f"Team {detail['team']}")
    months = detail.get("months")
    if isinstance(months, list) and months:
        said.append(", ".join(fmt.period(str(m), calendar) for m in months))
    if detail.get("file"):
        said.append(str(detail["file"]))
    if detail.get("comment"):
        said.append(f"“{detail['comment']}”")
    return {
        **event,
        "what": action_words(event["action"]),
        "on": target_words(event["action"], event["target"], lambda key: fmt.period(key, calendar)),
        "href": url_for("web.submission", submission_id=int(ident))
        if kind == "submission" and ident.isdigit()
        else None,
        "said": " · ".join(said),
    }


@bp.get("/versions/<int:version>")
@login_required
def version_diff(version: int) -> ResponseReturnValue:
    """What master version `version` changed against the one before it, line by line and month by month."""
    if version < 1:
        abort(404)
    schema = app_schema()
    try:
        diff = workflow.master_diff(app_store(), schema, g.web_user, version - 1, version)
    except ServiceError:
        abort(404)
    with app_store().reading() as s:
        teams = [{"team": t["team"], **diff_view(s, schema, t)} for t in diff["teams"]]
    return render_template("version.html", version=version, diff=diff, teams=teams)


@bp.get("/download/template/<team>.xlsx")
@login_required
def download_template(team: str) -> ResponseReturnValue:
    if not can_see(g.web_user, team):
        abort(404)
    with tempfile.TemporaryDirectory() as folder:
        with refused_as_http():
            path = workflow.team_template(
                app_store(), app_schema(), g.web_user, team, Path(folder) / f"plan-{team}.xlsx"
            )
        data = path.read_bytes()
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name=f"plan-{team}.xlsx")
