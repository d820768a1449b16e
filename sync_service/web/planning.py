"""The planning pages: plan status, a submission and its approval, the approvers' queue, teams, versions."""

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

from sheet_templates.money import display_money
from sync_service.access.auth import can_see
from sync_service.master import model as master_model
from sync_service.planning import submissions, workflow
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.errors import ServiceError
from sync_service.platform.storage import Decision, Role, Submission, Team, User
from sync_service.web.base import XLSX, bp, follow_ups, login_required
from sync_service.web.refusals import flashed_refusal, refused_as_http


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
    return render_template("status.html", rows=rows, counts=counts, deadline=deadline, days_left=days_left)


@bp.get("/submissions/<int:submission_id>")
@login_required
def submission(submission_id: int) -> ResponseReturnValue:
    """One submission: its place in its approval chain, its report, and what it changes against the approved plan.

    Its teams' readers open it, and so does anyone holding a step of its chain (a region lead).
    """
    user = g.web_user
    with app_store().reading() as s:
        found = s.get(Submission, submission_id)
        if found is None or not (can_see(user, found.team_id) or workflow._approves(s, user, found)):
            abort(404)
        info = workflow.describe(s, found)
        current = submissions.current_submission(s, found.team_id, found.fiscal_year)
        diff = workflow.team_diff(s, current, found.id) if current != found.id else None
        decisions = list(s.scalars(select(Decision).where(Decision.submission_id == found.id)))
        deciders = {d.user_id: s.get(User, d.user_id).name for d in decisions}
        waiting = _waiting_step(info)
        may_decide = workflow.may_take(s, user, found, info)
    return render_template(
        "submission.html",
        s=info,
        chain=info["approval"],
        waiting=waiting,
        diff=diff,
        current=current,
        decisions=decisions,
        deciders=deciders,
        may_decide=may_decide,
    )


def _waiting_step(info: dict[str, Any]) -> dict[str, Any] | None:
    """The step of the chain a described submission waits for (position, label...), or None."""
    return next((step for step in info["approval"]["steps"] if step["status"] == "waiting"), None)


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
    waiting = [(item, _waiting_step(item)) for item in queue["submissions"]]
    in_review = [(item, _waiting_step(item)) for item in queue["in_review"]]
    return render_template("approvals.html", waiting=waiting, transfers=queue["transfers"], in_review=in_review)


@bp.get("/teams/<team>")
@login_required
def team(team: str) -> ResponseReturnValue:
    """A team's approved lines (the drill-down from the master)."""
    user = g.web_user
    if not can_see(user, team):
        abort(404)
    with app_store().reading() as s:
        if s.get(Team, team) is None:
            abort(404)
    view = master_model.load(app_store(), app_schema(), user)
    keep = (view.table["team_id"] == team).to_numpy() if len(view.table) else np.zeros(0, dtype=bool)
    lines = [line for line, k in zip(view.lines, keep, strict=True) if k]
    planned = view.months[keep].sum(axis=1).tolist()  # reporting cents, the one grain
    actual = view.actual[keep].tolist()
    return render_template(
        "team.html",
        team=team,
        rows=list(zip(lines, planned, actual, strict=True)),
        current=view.held_by(team),
        money=display_money,
        currency=app_schema().config.reporting_currency,
    )


@bp.get("/versions")
@login_required
def versions() -> ResponseReturnValue:
    user = g.web_user
    listing = workflow.master_versions(app_store(), app_schema(), user)
    events = workflow.audit(app_store(), user, 100)[0] if user.role == Role.FINANCE else []
    return render_template("versions.html", versions=listing, events=events)


@bp.get("/versions/<int:version>")
@login_required
def version_diff(version: int) -> ResponseReturnValue:
    """What master version `version` changed against the one before it, line by line."""
    if version < 1:
        abort(404)
    try:
        diff = workflow.master_diff(app_store(), app_schema(), g.web_user, version - 1, version)
    except ServiceError:
        abort(404)
    return render_template("version.html", version=version, diff=diff)


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
