"""The planning routes: submissions and their approval, the master's history, cycles, scenarios and month locks."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from flask import jsonify, request, send_file
from flask.typing import ResponseReturnValue

from sync_service.api import contracts as c
from sync_service.api.base import (
    ADDIN_SCOPES,
    XLSX,
    approver_gate,
    bp,
    finance_gate,
    follow_ups,
    idempotent,
    over_allocation_policy,
    planner_gate,
    submitted,
)
from sync_service.api.caller import current_user
from sync_service.api.contracts import operation
from sync_service.api.uploads import uploaded
from sync_service.master import model as master_model
from sync_service.planning import cycles, scenarios, workflow
from sync_service.planning import periods as period_locks
from sync_service.planning import years as fiscal_years
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.errors import (
    ServiceError,
)
from sync_service.platform.paging import page_of


@operation(
    bp,
    "POST",
    "/api/v1/submissions",
    "Submit a team's plan: an xlsx upload (multipart) or JSON lines or rows",
    response=c.Submission,
    status=201,
    errors=(403, 404, 409, 422),
    body=c.SubmissionJson,
    form=c.SubmissionForm,
    idempotent_key=True,
)
def create_submission(body: c.SubmissionJson | None, form: c.SubmissionForm | None) -> ResponseReturnValue:
    user = current_user()
    incoming = _incoming(body, form)
    fingerprint = (incoming.team, incoming.source, incoming.raw)
    return idempotent(
        user,
        fingerprint,
        lambda idem: submitted(
            workflow.submit(app_store(), app_schema(), user, incoming, idem, over_allocation=over_allocation_policy())
        ),
    )


@operation(
    bp,
    "GET",
    "/api/v1/submissions",
    "Submissions the caller may see",
    response=c.Submissions,
    errors=(403,),
    query=c.SubmissionsQuery,
)
def list_submissions(query: c.SubmissionsQuery) -> ResponseReturnValue:
    found, following = workflow.list_submissions(
        app_store(), current_user(), app_schema().calendar.year, query.team, query.limit, query.after
    )
    return jsonify({"submissions": found, "next": following})


@operation(
    bp,
    "GET",
    "/api/v1/submissions/<int:submission_id>",
    "One submission with its report",
    response=c.Submission,
    errors=(403, 404),
)
def get_submission(submission_id: int) -> ResponseReturnValue:
    return jsonify(workflow.get_submission(app_store(), current_user(), submission_id))


@operation(
    bp,
    "POST",
    "/api/v1/submissions/<int:submission_id>/<any(approve, reject):action>",
    "Approve (into a new master version) or reject a submission, with a comment",
    response=c.Decided,
    errors=(403, 404, 409),
    body=c.DecisionBody,
    body_required=False,
    gate=approver_gate,
    idempotent_key=True,
    paths=("/api/v1/submissions/{submission_id}/approve", "/api/v1/submissions/{submission_id}/reject"),
)
def decide(submission_id: int, action: str, body: c.DecisionBody) -> ResponseReturnValue:
    user = current_user()
    verdict = "approved" if action == "approve" else "rejected"
    return idempotent(
        user,
        (str(submission_id), verdict, body.comment, body.step or ""),
        lambda idem: workflow.decide(
            app_store(),
            app_schema(),
            user,
            submission_id,
            verdict,
            body.comment,
            idem,
            over_allocation=over_allocation_policy(),
            follow_ups=follow_ups(),
            step=body.step,
        ),
        200,
    )


@operation(
    bp,
    "GET",
    "/api/v1/approvals",
    "The caller's approval queue (submissions and transfers waiting for a step they may take) and every "
    "submission in review they may read, each with its place in its chain",
    response=c.ApprovalQueue,
    errors=(403,),
    query=c.ApprovalsQuery,
    gate=planner_gate,
)
def approval_queue(query: c.ApprovalsQuery) -> ResponseReturnValue:
    """Paged by the submissions in review: each page's queue holds the ones of that page (transfers capped)."""
    queue = workflow.approval_queue(app_store(), current_user())
    in_review, following = page_of(queue["in_review"], lambda s: s["id"], query.limit, query.after)
    shown = {s["id"] for s in in_review}
    return jsonify(
        {
            "submissions": [s for s in queue["submissions"] if s["id"] in shown],
            "transfers": queue["transfers"][: query.limit],
            "in_review": in_review,
            "next": following,
        }
    )


@operation(
    bp,
    "GET",
    "/api/v1/master/versions",
    "Every master version, newest first",
    response=c.Versions,
    errors=(403,),
    scopes=ADDIN_SCOPES,
)
def master_versions() -> ResponseReturnValue:
    return jsonify({"versions": workflow.master_versions(app_store(), app_schema(), current_user())})


@operation(
    bp,
    "GET",
    "/api/v1/master/version",
    "The current master version, allocation revision and actuals import (a cheap check for live cells)",
    response=c.MasterKey,
    scopes=ADDIN_SCOPES,
)
def master_version() -> ResponseReturnValue:
    # any token: the ids say when, never what, changed
    return jsonify(master_model.current_key(app_store(), app_schema().calendar.year))


@operation(
    bp,
    "GET",
    "/api/v1/master/versions/<int:old>/diff/<int:new>",
    "What changed between two master versions",
    response=c.Diff,
    errors=(403, 404),
    scopes=ADDIN_SCOPES,
)
def master_diff(old: int, new: int) -> ResponseReturnValue:
    return jsonify(workflow.master_diff(app_store(), app_schema(), current_user(), old, new))


@operation(
    bp,
    "GET",
    "/api/v1/audit",
    "The newest audit events (finance and admins)",
    response=c.Audit,
    errors=(403,),
    query=c.AuditQuery,
)
def audit_log(query: c.AuditQuery) -> ResponseReturnValue:
    events, following = workflow.audit(app_store(), current_user(), query.limit, query.after)
    return jsonify({"events": events, "next": following})


@operation(
    bp,
    "GET",
    "/api/v1/templates/<team>.xlsx",
    "The team's template, pre-filled with its approved plan",
    response=None,
    errors=(403, 404),
    produces=XLSX,
)
def team_template(team: str) -> ResponseReturnValue:
    user = current_user()
    with tempfile.TemporaryDirectory() as folder:
        path = workflow.team_template(app_store(), app_schema(), user, team, Path(folder) / f"plan-{team}.xlsx")
        data = path.read_bytes()
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name=f"plan-{team}.xlsx")


@operation(
    bp,
    "POST",
    "/api/v1/cycles",
    "Open a reforecast cycle: lock its closed months (m01 through `through`) and set its deadline",
    response=c.CycleAnswer,
    status=201,
    errors=(403, 409),
    body=c.CycleBody,
    gate=finance_gate("opens reforecast cycles"),
)
def open_cycle(body: c.CycleBody) -> ResponseReturnValue:
    answer = cycles.open_cycle(
        app_store(), app_schema(), current_user(), body.name, body.through, body.deadline, body.comment
    )
    return jsonify(answer), 201


@operation(
    bp,
    "GET",
    "/api/v1/cycles",
    "Every reforecast cycle, newest first, with each of the caller's teams' reforecast status",
    response=c.Cycles,
    errors=(403,),
    gate=planner_gate,
)
def list_cycles() -> ResponseReturnValue:
    return jsonify({"cycles": cycles.cycles_json(app_store(), app_schema(), current_user())})


@operation(
    bp,
    "GET",
    "/api/v1/cycles/<int:cycle_id>",
    "One reforecast cycle and its teams' reforecast status",
    response=c.CycleAnswer,
    errors=(403, 404),
    gate=planner_gate,
)
def get_cycle(cycle_id: int) -> ResponseReturnValue:
    return jsonify(cycles.get_cycle(app_store(), app_schema(), current_user(), cycle_id))


@operation(
    bp,
    "POST",
    "/api/v1/cycles/<int:cycle_id>/close",
    "Close a reforecast cycle (its closed months stay locked)",
    response=c.CycleAnswer,
    errors=(403, 404, 409),
    gate=finance_gate("closes reforecast cycles"),
)
def close_cycle(cycle_id: int) -> ResponseReturnValue:
    return jsonify(cycles.close_cycle(app_store(), app_schema(), current_user(), cycle_id))


_SCENARIOS = "tries what-if scenarios"


@operation(
    bp,
    "POST",
    "/api/v1/scenarios",
    "Make a what-if scenario from the approved master or the latest estimate (never the master until promoted)",
    response=c.ScenarioAnswer,
    status=201,
    errors=(403, 409),
    body=c.ScenarioBody,
    gate=finance_gate(_SCENARIOS),
)
def make_scenario(body: c.ScenarioBody) -> ResponseReturnValue:
    answer = scenarios.create(app_store(), app_schema(), current_user(), body.name, body.origin, body.comment)
    return jsonify(answer), 201


@operation(
    bp,
    "GET", "/api/v1/scenarios", "Every what-if scenario, newest first", response=c.Scenarios, errors=(403,),
    gate=finance_gate(_SCENARIOS),
)  # fmt: skip
def list_scenarios() -> ResponseReturnValue:
    return jsonify({"scenarios": scenarios.list_json(app_store(), app_schema(), current_user())})


@operation(
    bp,
    "GET", "/api/v1/scenarios/<int:scenario_id>", "One what-if scenario", response=c.ScenarioAnswer,
    errors=(403, 404), gate=finance_gate(_SCENARIOS),
)  # fmt: skip
def get_scenario(scenario_id: int) -> ResponseReturnValue:
    return jsonify(scenarios.get_json(app_store(), current_user(), scenario_id))


@operation(
    bp,
    "POST",
    "/api/v1/scenarios/<int:scenario_id>/changes",
    "Change a scenario (scale a channel, region or team in a period; move an amount of a line; drop lines): "
    "a new revision, all changes or none",
    response=c.ScenarioAnswer,
    errors=(403, 404, 409, 422),
    body=c.ScenarioChanges,
    gate=finance_gate(_SCENARIOS),
)
def change_scenario(scenario_id: int, body: c.ScenarioChanges) -> ResponseReturnValue:
    answer = scenarios.change(
        app_store(), app_schema(), current_user(), scenario_id, body.model_dump(), open_months_only=True
    )
    return jsonify(answer)


@operation(
    bp,
    "GET",
    "/api/v1/scenarios/<int:scenario_id>.xlsx",
    "The scenario's lines as a workbook to edit and upload again (PUT .../lines)",
    response=None,
    errors=(403, 404),
    produces=XLSX,
    gate=finance_gate(_SCENARIOS),
)
def scenario_workbook(scenario_id: int) -> ResponseReturnValue:
    name = f"scenario-{scenario_id}.xlsx"
    with tempfile.TemporaryDirectory() as folder:
        path = scenarios.workbook(app_store(), app_schema(), current_user(), scenario_id, Path(folder) / name)
        data = path.read_bytes()
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name=name)


@operation(
    bp,
    "PUT",
    "/api/v1/scenarios/<int:scenario_id>/lines",
    "The scenario's lines as an edited workbook holds them (multipart field file, or the raw body): a new "
    "revision; 409 when the scenario changed since the workbook was downloaded",
    response=c.ScenarioAnswer,
    errors=(403, 404, 409, 422),
    query=c.ScenarioUploadQuery,
    raw=(XLSX, "multipart/form-data"),
    gate=finance_gate(_SCENARIOS),
)
def upload_scenario(scenario_id: int, query: c.ScenarioUploadQuery) -> ResponseReturnValue:
    raw, filename = uploaded(query.filename, "the workbook", "the workbook is empty; upload the scenario's xlsx")
    name = filename or f"scenario-{scenario_id}.xlsx"
    return jsonify(scenarios.upload(app_store(), app_schema(), current_user(), scenario_id, raw, name))


@operation(
    bp,
    "GET",
    "/api/v1/scenarios/<int:scenario_id>/compare",
    "A scenario against its origin: planned spend by group and period, and each line added, dropped or changed",
    response=c.ScenarioComparison,
    errors=(403, 404),
    query=c.CompareQuery,
    gate=finance_gate(_SCENARIOS),
)
def compare_scenario(scenario_id: int, query: c.CompareQuery) -> ResponseReturnValue:
    answer = scenarios.compare(app_store(), app_schema(), current_user(), scenario_id, query.by, query.period)
    return jsonify(answer)


@operation(
    bp,
    "POST",
    "/api/v1/scenarios/<int:scenario_id>/promote",
    "Promote a scenario: to the master (each changed team's plan submitted into its approval chain) or to the "
    "allocations (by a finance user other than whoever made its newest revision)",
    response=c.ScenarioAnswer,
    errors=(403, 404, 409),
    body=c.ScenarioPromotion,
    gate=finance_gate("promotes what-if scenarios"),
)
def promote_scenario(scenario_id: int, body: c.ScenarioPromotion) -> ResponseReturnValue:
    answer = scenarios.promote(
        app_store(),
        app_schema(),
        current_user(),
        scenario_id,
        body.target,
        body.comment,
        over_allocation=over_allocation_policy(),
    )
    return jsonify(answer)


@operation(
    bp,
    "POST",
    "/api/v1/scenarios/<int:scenario_id>/discard",
    "Discard a scenario: it changes no more, and nothing of it reaches the master",
    response=c.ScenarioAnswer,
    errors=(403, 404, 409),
    body=c.DecisionBody,
    body_required=False,
    gate=finance_gate(_SCENARIOS),
)
def discard_scenario(scenario_id: int, body: c.DecisionBody) -> ResponseReturnValue:
    return jsonify(scenarios.discard(app_store(), current_user(), scenario_id, body.comment))


@operation(
    bp, "GET", "/api/v1/periods", "The fiscal months and which are locked", response=c.Periods, scopes=ADDIN_SCOPES
)
def periods() -> ResponseReturnValue:
    return jsonify(period_locks.periods_view(app_store(), app_schema()))


@operation(
    bp,
    "POST",
    "/api/v1/periods/<any(lock, unlock):action>",
    "Lock or unlock fiscal months: no newly approved plan may change a locked month",
    response=c.Periods,
    errors=(403,),
    body=c.PeriodsBody,
    gate=finance_gate("locks and unlocks periods"),
    paths=("/api/v1/periods/lock", "/api/v1/periods/unlock"),
)
def lock_periods(action: str, body: c.PeriodsBody) -> ResponseReturnValue:
    user = current_user()
    data = body.model_dump(exclude_none=True)
    return jsonify(period_locks.set_locks(app_store(), app_schema(), user, data, lock=action == "lock"))


@operation(
    bp,
    "GET",
    "/api/v1/years",
    "The fiscal years the organisation file describes: the current one, each one's locked and closed months, its close",
    response=c.YearsAnswer,
    errors=(403,),
    gate=planner_gate,
)
def list_years() -> ResponseReturnValue:
    return jsonify({"years": fiscal_years.years_json(app_store(), app_schema(), current_user())})


@operation(
    bp,
    "POST",
    "/api/v1/years/<int:year>/close",
    "Close a fiscal year once its months are locked and its accruals closed: read-only from then on, still readable",
    response=c.YearState,
    errors=(403, 404, 409),
    body=c.YearCloseBody,
    body_required=False,
    gate=finance_gate("closes fiscal years"),
)
def close_year(year: int, body: c.YearCloseBody) -> ResponseReturnValue:
    return jsonify(fiscal_years.close_year(app_store(), app_schema(), current_user(), year, body.comment))


def _incoming(body: c.SubmissionJson | None, form: c.SubmissionForm | None) -> workflow.Incoming:
    """A plan from a multipart upload (field `file`, plus `team`) or a validated JSON body {team, lines | rows}."""
    if form is not None:
        raw, filename = uploaded(None, "the plan")
        base = _base(form.based_on_submission, form.based_on_version)
        return workflow.Incoming(form.team.strip(), "xlsx", raw, filename=filename, base=base)
    assert body is not None
    base = None
    if body.based_on is not None:
        if body.based_on.master_version is not None:
            base = {"master_version": body.based_on.master_version}
        else:
            base = {"submission": body.based_on.submission or None}
    elif "based_on" in body.model_fields_set:  # "based_on": null: the team had no approved plan
        base = {"submission": None}
    return workflow.Incoming(body.team.strip(), "json", request.get_data(), grid=_grid(body), base=base)


def _base(submission: str | None, version: str | None) -> dict[str, int | None] | None:
    """The plan's base from form fields: a submission number (0 or "none": the team had none) or a version."""
    if submission:
        number = 0 if submission == "none" else int(submission)
        return {"submission": number or None}
    if version:
        return {"master_version": int(version)}
    return None


def _grid(body: c.SubmissionJson) -> list[list[Any]]:
    """JSON lines ({"lines": [{column: value}]}) or rows ({"rows": [[header...], [...]]}) as a grid."""
    if body.rows is not None:
        return body.rows
    names = [col.name for col in app_schema().input_columns]
    lines = body.lines or []
    unknown = sorted({k for line in lines for k in line} - set(names))
    if unknown:
        raise ServiceError(f"unknown column(s) {', '.join(unknown[:20])}; the columns are {', '.join(names)}")
    return [names, *([line.get(n) for n in names] for line in lines)]
