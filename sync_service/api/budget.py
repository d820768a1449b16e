"""The budget routes: finance's allocations, baselines and the budget view, and budget transfers."""

from __future__ import annotations

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue

from sync_service.api import contracts as c
from sync_service.api.base import bp, finance_gate, master_for, over_allocation_policy, planner_gate
from sync_service.api.caller import current_user
from sync_service.api.contracts import operation
from sync_service.budget import allocations as allocation_rules
from sync_service.budget import baselines, transfers
from sync_service.master import reports
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.paging import page_of


@operation(
    bp,
    "PUT",
    "/api/v1/allocations",
    "Replace the whole allocation table (a new revision); 409 naming the cells with approved plans under them it "
    'would drop, unless "replace": true',
    response=c.Allocations,
    errors=(403, 409, 422),
    body=c.AllocationsBody,
    gate=finance_gate("sets allocations"),
)
def put_allocations(body: c.AllocationsBody) -> ResponseReturnValue:
    user = current_user()
    allocation_rules.put_allocations(app_store(), app_schema(), user, body.model_dump())
    return jsonify(reports.allocations_json(master_for(user)))


@operation(
    bp,
    "PATCH",
    "/api/v1/allocations",
    'Change the allocation cells sent and keep the rest (a new revision); "amount": null removes a cell',
    response=c.Allocations,
    errors=(403, 422),
    body=c.AllocationsBody,
    gate=finance_gate("sets allocations"),
)
def patch_allocations(body: c.AllocationsBody) -> ResponseReturnValue:
    user = current_user()
    allocation_rules.put_allocations(app_store(), app_schema(), user, body.model_dump(), change=True)
    return jsonify(reports.allocations_json(master_for(user)))


@operation(
    bp,
    "POST",
    "/api/v1/baselines",
    "Lock the master and allocations in force as the year's budget (a named, immutable baseline; a re-baseline "
    "is a new one)",
    response=c.BaselineAnswer,
    status=201,
    errors=(403, 409),
    body=c.BaselineBody,
    gate=finance_gate("locks the budget baseline"),
)
def lock_baseline(body: c.BaselineBody) -> ResponseReturnValue:
    return jsonify(baselines.lock_baseline(app_store(), app_schema(), current_user(), body.name, body.comment)), 201


@operation(
    bp,
    "GET",
    "/api/v1/baselines",
    "Every budget baseline, newest first",
    response=c.Baselines,
    errors=(403,),
    gate=planner_gate,
)
def list_baselines() -> ResponseReturnValue:
    with app_store().reading() as session:
        return jsonify({"baselines": baselines.baselines_json(session, app_schema().calendar.year)})


@operation(
    bp,
    "GET",
    "/api/v1/budget",
    "The budget (a baseline, default the newest) against the current plan, the allocations and actual spend",
    response=c.BudgetAnswer,
    errors=(403, 404),
    query=c.BudgetQuery,
    gate=planner_gate,
)
def budget_view(query: c.BudgetQuery) -> ResponseReturnValue:
    answer = baselines.budget_json(app_store(), app_schema(), current_user(), query.baseline, query.by, query.period)
    return jsonify(answer)


@operation(
    bp,
    "POST",
    "/api/v1/transfers",
    "Ask to move an amount of allocation from one (region, quarter, channel) to another, saying why",
    response=c.TransferAnswer,
    status=201,
    errors=(403, 409, 422),
    body=c.TransferBody,
    gate=planner_gate,
)
def request_transfer(body: c.TransferBody) -> ResponseReturnValue:
    data = body.model_dump(by_alias=True)
    answer = transfers.request_transfer(
        app_store(),
        app_schema(),
        current_user(),
        data,
        transfers.finance_limit(current_app.config),
        over_allocation_policy(),
    )
    return jsonify(answer), 201


@operation(
    bp,
    "GET",
    "/api/v1/transfers",
    "Budget transfers the caller may read, newest first, with who asked, approved and why",
    response=c.Transfers,
    errors=(403,),
    query=c.TransfersQuery,
    gate=planner_gate,
)
def list_transfers(query: c.TransfersQuery) -> ResponseReturnValue:
    with app_store().reading() as session:
        found = transfers.transfers_json(session, session.merge(current_user()), app_schema().calendar.year)
    page, following = page_of(found, lambda t: t["id"], query.limit, query.after)
    return jsonify({"transfers": page, "next": following})


@operation(
    bp,
    "GET",
    "/api/v1/transfers/<int:transfer_id>",
    "One budget transfer and its approvals",
    response=c.TransferAnswer,
    errors=(403, 404),
    gate=planner_gate,
)
def get_transfer(transfer_id: int) -> ResponseReturnValue:
    with app_store().reading() as session:
        return jsonify(transfers.transfer_json(session, session.merge(current_user()), transfer_id))


@operation(
    bp,
    "POST",
    "/api/v1/transfers/<int:transfer_id>/<any(approve, reject):action>",
    "Approve or reject a budget transfer at the caller's step; the last approval moves the allocation",
    response=c.TransferAnswer,
    errors=(403, 404, 409),
    body=c.DecisionBody,
    body_required=False,
    gate=planner_gate,
    paths=("/api/v1/transfers/{transfer_id}/approve", "/api/v1/transfers/{transfer_id}/reject"),
)
def decide_transfer(transfer_id: int, action: str, body: c.DecisionBody) -> ResponseReturnValue:
    verdict = "approved" if action == "approve" else "rejected"
    answer = transfers.decide_transfer(
        app_store(), app_schema(), current_user(), transfer_id, verdict, body.comment, over_allocation_policy()
    )
    return jsonify(answer)
