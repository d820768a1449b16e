"""The budget pages: budget and reforecast (cycles), finance's allocations, months and baselines, and transfers.

Each form is checked with the API's own request model, then the same domain function the API
route calls does the work; a refusal re-renders the page with each error beside its field and
summarised at the top, the typed values kept, and nothing changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from pydantic import BaseModel

from sheet_templates.calendar import QUARTERS
from sheet_templates.money import money_text, to_cents
from sheet_templates.schema import PlanSchema
from sync_service.api import contracts
from sync_service.budget import allocations as allocation_rules
from sync_service.budget import baselines, transfers
from sync_service.master import model as master_model
from sync_service.master import reports
from sync_service.master.allocations import ALL_CHANNELS, allocation_of, allocations_at, current_allocations
from sync_service.planning import cycles
from sync_service.planning import periods as period_locks
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.errors import Conflict, NotFound, ServiceError
from sync_service.platform.storage import Role
from sync_service.web.base import bp, formats, login_required
from sync_service.web.forms import FormErrors, checked
from sync_service.web.refusals import flashed_refusal

Typed = Mapping[str, str]  # a form's fields as typed, kept when it is refused
M = TypeVar("M", bound=BaseModel)


def _finance_only(what: str) -> None:
    if g.web_user.role != Role.FINANCE:
        abort(403, f"only finance {what}")


def _model(model: type[M], data: Mapping[str, Any], errors: FormErrors, words: Mapping[str, str]) -> M | None:
    """`data` as the API's request `model`; a field it refuses gets `words[field]` when given, else the model's."""
    found = FormErrors()
    answer = checked(model, data, found)
    for at, message in found.items:
        if (at, words.get(at, message)) not in errors.items:  # a field refused by several of a union's types
            errors.add(at, words.get(at, message))
    return answer


def _refusal(errors: FormErrors, exc: ServiceError, fields: Iterable[str], at: str = "") -> None:
    """A domain refusal as the form's errors: each issue at its field; a detail "name: ..." at that field.

    Anything naming no field of the form goes to `at` (the whole form's, unless given).
    """
    known = set(fields)
    for issue in exc.issues or []:
        where = str(issue.get("at", ""))
        errors.add(where if where in known else at, _sentence(str(issue.get("message", ""))))
    if exc.issues:
        return
    named = re.match(r"(\w+): (.+)", exc.detail, re.S)
    if named and named.group(1) in known:
        errors.add(named.group(1), _sentence(named.group(2)))
    else:
        errors.add(at, _sentence(exc.detail))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


# -- Budget and reforecast: the budget view and the reforecast cycles ---------------------------------------------

_CYCLE_FIELDS = ("name", "through", "deadline", "comment")
_CYCLE_WORDS = {
    "name": "Give the cycle a name, e.g. 'June reforecast'.",
    "through": "Choose the last month the cycle closes.",
    "deadline": "Give the deadline as a date (YYYY-MM-DD).",
    "comment": "Write the note to the teams as text of at most 2,000 characters.",
}
_BY = (("region", "Region"), ("channel", "Channel"), ("region,channel", "Region and channel"), ("team", "Team"))
_PERIODS = (("quarter", "By quarter"), ("year", "The year"), ("month", "By month"))


@bp.get("/budget")
@login_required
def budget_page() -> ResponseReturnValue:
    """The budget cycle: the reforecast cycle and each team's reforecast; budget against plan, estimate and actual."""
    return _budget_page()


def _budget_page(
    errors: FormErrors | None = None, typed: Typed | None = None, status: int = 200
) -> ResponseReturnValue:
    user = g.web_user
    if user.role == Role.ADMIN:
        abort(403, "admins manage users and tokens; finance and marketers plan budgets")
    schema = app_schema()
    every = cycles.cycles_json(app_store(), schema, user)
    current = next((c for c in every if c["status"] == "open"), None)
    by = request.args.get("by", "region")
    period = request.args.get("period", "quarter")
    try:
        view = baselines.budget_json(app_store(), schema, user, None, by, period)
    except NotFound:
        view = None  # no baseline locked yet: the page says so
    except ServiceError as exc:
        abort(400, exc.detail)
    fmt = formats()  # a cycle leaves at least the last month open
    months = [(c.name, fmt.month(c.name, schema.calendar)) for c in schema.month_columns[:-1]]
    return render_template(
        "budget.html",
        cycle=current,
        cycles=every,
        view=view,
        totals=_budget_totals(view["rows"]) if view else None,
        by=by,
        period=period,
        by_options=_BY,
        period_options=_PERIODS,
        months=months,
        currency=schema.config.reporting_currency,
        errors=errors or FormErrors(),
        typed=typed or {},
    ), status


def _budget_totals(rows: list[dict[str, Any]]) -> dict[str, int | None]:
    """The budget table's totals row: each column's sum, or None where a row of it has no figure."""
    totals: dict[str, int | None] = {}
    for key in ("budget", "plan", "estimate", "actual"):
        values = [row["cents"][key] for row in rows]
        totals[key] = None if any(v is None for v in values) else sum(values)
    return totals


@bp.post("/cycles")
@login_required
def open_cycle() -> ResponseReturnValue:
    """Open a reforecast cycle (the same call as POST /api/v1/cycles); a refusal re-renders the form."""
    typed = {name: request.form.get(name, "") for name in _CYCLE_FIELDS}
    errors = FormErrors()
    body = _model(contracts.CycleBody, typed, errors, _CYCLE_WORDS)
    if body is not None:
        schema = app_schema()
        try:
            answer = cycles.open_cycle(
                app_store(), schema, g.web_user, body.name, body.through, body.deadline, body.comment
            )
        except ServiceError as exc:
            _refusal(errors, exc, _CYCLE_FIELDS)
        else:
            through = formats().month(answer["closed_through"], schema.calendar)
            flash(f"{answer['name']} is open: the months through {through} are closed.", "ok")
            return redirect(url_for("web.budget_page"))
    return _budget_page(errors, typed, status=422)


@bp.post("/cycles/<int:cycle_id>/close")
@login_required
def close_cycle(cycle_id: int) -> ResponseReturnValue:
    with flashed_refusal():
        answer = cycles.close_cycle(app_store(), app_schema(), g.web_user, cycle_id)
        flash(f"{answer['name']} is closed.", "ok")
    return redirect(url_for("web.budget_page"))


# -- Allocations: finance's grid of region x quarter (x channel) --------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _grid(schema: PlanSchema) -> dict[str, tuple[str, str, str]]:
    """Every cell of the grid by its form field: "cell.emea.Q1.all" (all channels), "cell.emea.Q1.paid-search"."""
    channels: dict[str, str] = {ALL_CHANNELS: "all"}
    for channel in schema["channel"].choices:
        slug = _slug(channel)
        channels[channel] = slug if slug not in channels.values() and slug != "all" else f"{slug}-{len(channels)}"
    regions: dict[str, str] = {}
    for region in schema.config.regions:
        slug = _slug(region)
        regions[region] = slug if slug not in regions.values() else f"{slug}-{len(regions)}"
    return {
        f"cell.{regions[r]}.{q}.{channels[c]}": (r, q, c)
        for r in schema.config.regions
        for c in channels
        for q in QUARTERS
    }


def _cell_words(key: tuple[str, str, str], year: int) -> str:
    region, quarter, channel = key
    return f"{region} {formats().quarter(quarter, year)}, {'all channels' if channel == ALL_CHANNELS else channel}"


def _editable(cents: int | None, currency: str) -> str:
    """An amount as its input shows it: with separators when that reads back as the same cents, else plainly."""
    if cents is None:
        return ""
    shown = formats().amount(cents, currency)
    return shown if to_cents(shown) == cents else money_text(cents)


@bp.route("/allocations", methods=["GET", "POST"])
@login_required
def allocations_page() -> ResponseReturnValue:
    """The year's allocations as a grid finance edits; saving writes a revision of only the cells changed.

    The form carries the revision it shows and each cell's amount then; a cell counts as edited when
    its amount differs from that. When another revision was written since, nothing is saved (409)
    and the grid shows the revision in force. A success answers the page at the new revision, its
    changed cells marked (reloading it is refused as out of date, so it never saves twice).
    """
    _finance_only("sets allocations")
    if request.method == "GET":
        return _allocations_page()
    schema, form = app_schema(), request.form
    grid = _grid(schema)
    year = schema.calendar.year
    typed = {name: form[name] for name in grid if name in form}
    edits: list[tuple[str, tuple[str, str, str], str | None]] = []
    for name, text in typed.items():
        was_text = form.get(f"was.{name}", "")
        was = int(was_text) if was_text.isdigit() else None
        text = text.strip()
        if (not text and was is None) or (text and to_cents(text) == was):
            continue
        edits.append((name, grid[name], text or None))
    errors = FormErrors()
    with app_store().reading() as session:
        revision, before = current_allocations(session, schema)
    if form.get("revision", "") != str(revision):
        unsaved = "; ".join(f"{_cell_words(key, year)}: {text or 'empty'}" for _, key, text in edits)
        errors.add(
            "",
            f"Nothing was saved: the allocations were revised since this page was shown (it showed revision "
            f"{form.get('revision', '')}; revision {revision} is in force now). The grid shows revision {revision}; "
            f"make your changes again{': ' + unsaved if unsaved else ''}.",
        )
        return _allocations_page(errors, status=409)
    if not edits:
        flash(f"Nothing to save: no cell differs from revision {revision}.", "ok")
        return redirect(url_for("web.allocations_page"))
    body = {
        "allocations": [{"region": r, "quarter": q, "channel": c, "amount": text} for _, (r, q, c), text in edits],
        "comment": form.get("comment", ""),
        "revision": revision,  # the domain refuses it whole if another revision lands between the check and the write
    }
    model = _model(
        contracts.AllocationsBody, body, errors, {"comment": "Write the note as text of at most 1,000 characters."}
    )
    if model is not None:
        try:
            saved = allocation_rules.put_allocations(app_store(), schema, g.web_user, model.model_dump(), change=True)
        except ServiceError as exc:
            for issue in exc.issues or [{"at": "", "message": exc.detail}]:
                errors.add(str(issue.get("at", "")), _sentence(str(issue.get("message", ""))))
            _cells_at(errors, edits, year)
            return _allocations_page(errors, typed, status=exc.status)
        with app_store().reading() as session:
            after = allocations_at(session, schema, saved)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        done = {
            "revision": saved,
            "changes": [
                {"cell": _cell_words(k, year), "key": k, "before": before.get(k), "after": after.get(k)}
                for k in changed
            ],
        }
        return _allocations_page(saved=done)
    _cells_at(errors, edits, year)
    return _allocations_page(errors, typed, status=422)


def _cells_at(errors: FormErrors, edits: list[tuple[str, tuple[str, str, str], str | None]], year: int) -> None:
    """Errors the request's cells got ("allocations[3].amount", "allocations.3.amount") put at the grid's inputs."""
    placed = []
    for at, message in errors.items:
        found = re.match(r"allocations[\[.](\d+)", at)
        if found and int(found.group(1)) < len(edits):
            name, key, _ = edits[int(found.group(1))]
            message = message.replace("; or null to remove the cell", "; or leave it empty to remove the cell")
            placed.append((name, f"{_cell_words(key, year)}: {message[:1].lower()}{message[1:]}"))
        else:
            placed.append((at, message))
    errors.items = placed


def _allocations_page(
    errors: FormErrors | None = None,
    typed: Typed | None = None,
    saved: dict[str, Any] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    schema = app_schema()
    errors = errors or FormErrors()
    answer = reports.allocations_json(master_model.load(app_store(), schema, g.web_user))  # as GET /api/v1/allocations
    cells = {(a["region"], a["quarter"], a["channel"]): a["cents"] for a in answer["allocations"]}
    currency = answer["currency"]
    changed = {tuple(c["key"]) for c in saved["changes"]} if saved else set()
    names = {key: name for name, key in _grid(schema).items()}
    year = schema.calendar.year

    def cell(key: tuple[str, str, str]) -> dict[str, Any]:
        name = names[key]
        cents = cells.get(key)
        return {
            "name": name,
            "id": name.replace(".", "-"),
            "value": typed[name] if typed and name in typed else _editable(cents, currency),
            "was": "" if cents is None else cents,
            "label": _cell_words(key, year),
            "changed": key in changed,
            "error": errors.of(name),
        }

    regions = []
    for region in schema.config.regions:
        by_channel = []
        for channel in schema["channel"].choices:
            row = [cell((region, q, channel)) for q in QUARTERS]
            by_channel.append(
                {"channel": channel, "cells": row, "year": allocation_of(cells, region, QUARTERS, channel)}
            )
        channel_sums = [
            sum(cents for (r, q, c), cents in cells.items() if r == region and q == quarter and c != ALL_CHANNELS)
            for quarter in QUARTERS
        ]
        regions.append(
            {
                "region": region,
                "whole": [cell((region, q, ALL_CHANNELS)) for q in QUARTERS],
                "year": allocation_of(cells, region, QUARTERS),
                "channels": by_channel,
                "channel_sums": channel_sums,
                "channel_year": sum(channel_sums),
                "has_channels": any(
                    c["was"] != "" or c["error"] or c["changed"] for r in by_channel for c in r["cells"]
                ),
            }
        )
    quarter_totals = [
        sum(v for r in schema.config.regions if (v := allocation_of(cells, r, q)) is not None) for q in QUARTERS
    ]
    return render_template(
        "allocations.html",
        allocation=answer,
        regions=regions,
        quarters=[(q, formats().quarter(q, year)) for q in QUARTERS],
        quarter_totals=quarter_totals,
        currency=currency,
        saved=saved,
        errors=errors,
        comment=request.form.get("comment", "") if errors else "",
    ), status


# -- Months and baselines ------------------------------------------------------------------------------------------

_BASELINE_WORDS = {
    "name": "Give the baseline a name, e.g. 'FY2027 budget'.",
    "comment": "Write the comment as text of at most 2,000 characters.",
}


@bp.get("/periods")
@login_required
def periods_page() -> ResponseReturnValue:
    """The fiscal year's months with their locks (lock, reopen), and the budget baselines (see, lock one)."""
    _finance_only("locks months and budget baselines")
    return _periods_page()


def _periods_page(
    errors: FormErrors | None = None, typed: Typed | None = None, status: int = 200
) -> ResponseReturnValue:
    schema, user = app_schema(), g.web_user
    months = period_locks.periods_view(app_store(), schema)["periods"]
    every = cycles.cycles_json(app_store(), schema, user)
    for month in months:  # the reforecast cycles that closed the month, oldest first
        month["cycles"] = [c for c in reversed(every) if month["month"] in c["closed_months"]]
    with app_store().reading() as session:
        listed = baselines.baselines_json(session, schema.calendar.year)
    return render_template(
        "periods.html",
        months=months,
        baselines=listed,
        errors=errors or FormErrors(),
        typed=typed or {},
    ), status


@bp.post("/periods/<any(lock, unlock):action>")
@login_required
def change_months(action: str) -> ResponseReturnValue:
    """Lock or reopen a month, or lock every month through one (the same call as POST /api/v1/periods/...)."""
    _finance_only("locks and reopens months")
    schema, form = app_schema(), request.form
    lock = action == "lock"
    month, through = form.get("month", "").strip(), form.get("through", "").strip()
    reason = form.get("reason", "").strip()
    data: dict[str, Any] = {"through": through} if through else {"months": [month]}
    if not lock and reason:
        data |= {"reopen": True, "reason": reason}  # reopens a month an ended cycle closed (audited with the reason)
    at = "through" if through else f"month-{month}"
    errors = FormErrors()
    body = _model(contracts.PeriodsBody, data, errors, {})
    errors.items = [(f"reason-{month}" if where == "reason" else at, m) for where, m in errors.items]
    if body is not None:
        before = {p["month"]: p["locked"] for p in period_locks.periods_view(app_store(), schema)["periods"]}
        try:
            answer = period_locks.set_locks(
                app_store(), schema, g.web_user, body.model_dump(exclude_none=True), lock=lock
            )
        except Conflict as exc:
            reopen = exc.extra.get("months") or []
            if not reopen:
                _refusal(errors, exc, (), at)
            for closed in reopen:
                name = formats().month(closed, schema.calendar)
                errors.add(
                    f"reason-{closed}",
                    f"{name} was closed by a reforecast cycle that has ended; reopening it changes what that cycle "
                    "booked. Say why you reopen it (the reason is kept in the audit), or leave it locked.",
                )
        except ServiceError as exc:
            _refusal(errors, exc, (), at)
        else:
            moved = [p["month"] for p in answer["periods"] if p["locked"] != before.get(p["month"])]
            fmt = formats()
            named = ", ".join(fmt.month(m, schema.calendar) for m in moved)
            if moved:
                flash(f"{'Locked' if lock else 'Reopened'} {named}.", "ok")
            else:
                flash(f"Nothing changed: the months asked for are {'locked' if lock else 'open'} already.", "ok")
            return redirect(url_for("web.periods_page"))
    typed = {f"reason-{month}": reason} if month else {"through": through}
    return _periods_page(errors, typed, status=422)


@bp.post("/baselines")
@login_required
def lock_baseline() -> ResponseReturnValue:
    """Lock the master and allocations in force as a budget baseline (the same call as POST /api/v1/baselines)."""
    _finance_only("locks the budget baseline")
    typed = {"name": request.form.get("name", ""), "comment": request.form.get("comment", "")}
    errors = FormErrors()
    body = _model(contracts.BaselineBody, typed, errors, _BASELINE_WORDS)
    if body is not None:
        try:
            answer = baselines.lock_baseline(app_store(), app_schema(), g.web_user, body.name, body.comment)
        except ServiceError as exc:
            _refusal(errors, exc, ("name", "comment"))
        else:
            flash(
                f"Baseline “{answer['name']}” is locked: the budget is master version {answer['master_version']} "
                f"with allocation revision {answer['allocation_revision']}.",
                "ok",
            )
            return redirect(url_for("web.periods_page"))
    return _periods_page(errors, {f"baseline-{k}": v for k, v in typed.items()}, status=422)


# -- Transfers -----------------------------------------------------------------------------------------------------

_TRANSFER_FIELDS = {
    "from_region": "From region",
    "from_quarter": "From quarter",
    "from_channel": "From channel",
    "to_region": "To region",
    "to_quarter": "To quarter",
    "to_channel": "To channel",
    "amount": "Amount",
    "reason": "Why",
}

# The paths the API's model and the domain name a transfer's fields by ("from.region", "to" for a whole side).
_TRANSFER_PATHS = (
    "from",
    "to",
    "amount",
    "reason",
    *(f"{s}.{p}" for s in ("from", "to") for p in ("region", "quarter", "channel")),
)


def _step_words(step: str, transfer: Mapping[str, Any], schema: PlanSchema) -> str:
    if step == transfers.GIVING:
        return f"a marketer of {transfer['from']['region']}"
    if step == transfers.FINANCE:
        return "finance"
    return schema.config.approvals.label(step)


def _transfer_row(item: dict[str, Any], schema: PlanSchema) -> dict[str, Any]:
    """A transfer as the page shows it: quarters as "Q1 FY2027", amounts in cents, steps and moments in words."""
    fmt = formats()

    def side(end: Mapping[str, Any]) -> str:
        channel = "all channels" if end["channel"] == ALL_CHANNELS else end["channel"]
        return f"{end['region']} {fmt.quarter(end['quarter'], end.get('year') or item['year'])}, {channel}"

    return {
        **item,
        "cents": to_cents(item["amount"]),
        "from_words": side(item["from"]),
        "to_words": side(item["to"]),
        "waiting_words": [_step_words(s, item, schema) for s in item["waiting_for"]],
        "decided": [{**d, "step_words": _step_words(d["step"], item, schema)} for d in item["decisions"]],
    }


@bp.get("/transfers")
@login_required
def transfers_page() -> ResponseReturnValue:
    """Budget transfers: ask for one, and each the caller may read, with the approvals still open."""
    return _transfers_page()


def _transfers_page(
    errors: FormErrors | None = None, typed: Typed | None = None, status: int = 200
) -> ResponseReturnValue:
    user = g.web_user
    if user.role == Role.ADMIN:
        abort(403, "admins manage users and tokens; finance and marketers move budgets")
    schema = app_schema()
    with app_store().reading() as session:
        me = session.merge(user)
        items = transfers.transfers_json(session, me, schema.calendar.year)
        mine = {t.region for t in me.teams}
    regions = list(schema.config.regions) if user.role == Role.FINANCE else sorted(mine)
    home = regions[0] if regions else schema.config.regions[0]
    defaults = {"from_region": home, "from_quarter": "Q1", "from_channel": ALL_CHANNELS}
    defaults |= {"to_region": home, "to_quarter": "Q2", "to_channel": ALL_CHANNELS, "amount": "", "reason": ""}
    year = schema.calendar.year
    return render_template(
        "transfers.html",
        transfers=[_transfer_row(t, schema) for t in items],
        all_regions=list(schema.config.regions),
        quarters=[(q, formats().quarter(q, year)) for q in QUARTERS],
        channels=[(ALL_CHANNELS, "All channels"), *((c, c) for c in schema["channel"].choices)],
        currency=schema.config.reporting_currency,
        errors=errors or FormErrors(),
        typed={**defaults, **(typed or {})},
    ), status


@bp.post("/transfers")
@login_required
def ask_transfer() -> ResponseReturnValue:
    """Ask for a transfer (the same call as POST /api/v1/transfers); a refusal re-renders the form with its errors."""
    typed = {name: request.form.get(name, "") for name in _TRANSFER_FIELDS}
    body = {
        side: {
            "region": typed[f"{side}_region"],
            "quarter": typed[f"{side}_quarter"],
            "channel": typed[f"{side}_channel"] or ALL_CHANNELS,
        }
        for side in ("from", "to")
    } | {"amount": typed["amount"], "reason": typed["reason"]}
    errors = FormErrors()
    model = _model(contracts.TransferBody, body, errors, {})
    if model is not None:
        schema = app_schema()
        try:
            answer = transfers.request_transfer(
                app_store(),
                schema,
                g.web_user,
                model.model_dump(by_alias=True),
                transfers.finance_limit(current_app.config),
                current_app.config["OVER_ALLOCATION"],
            )
        except ServiceError as exc:
            _refusal(errors, exc, _TRANSFER_PATHS)
        else:
            waits = " and ".join(_step_words(s, answer, schema) for s in answer["waiting_for"])
            state = "made" if answer["status"] == "approved" else f"asked for; it waits for {waits}"
            flash(f"Transfer {answer['id']} {state}.", "ok")
            for message in answer["over_allocation"]:
                flash(f"Flagged: {message}", "error")
            return redirect(url_for("web.transfers_page"))
    errors.items = [_transfer_error(at, message) for at, message in errors.items]
    return _transfers_page(errors, typed, status=422)


def _transfer_error(at: str, message: str) -> tuple[str, str]:
    """An error at the API's path ("from.region", "to") as the form's field, its message naming the field."""
    field = {"from": "from_region", "to": "to_region"}.get(at, at.replace(".", "_"))
    if field not in _TRANSFER_FIELDS:
        return ("", message)
    label = _TRANSFER_FIELDS[field] if at not in ("from", "to") else at.capitalize()  # a whole side: "From"
    if message[1:2].islower():  # "Must be ...", "Say why ...": one sentence with the field's name
        message = message[:1].lower() + message[1:]
    joined = f"{label} {message}" if message.startswith(("must ", "is ", "has ")) else f"{label}: {message}"
    return (field, joined)


@bp.post("/transfers/<int:transfer_id>/decide")
@login_required
def decide_transfer(transfer_id: int) -> ResponseReturnValue:
    verdict = {"approve": "approved", "reject": "rejected"}.get(request.form.get("action", ""))
    if verdict is None:
        abort(400, "approve or reject")
    with flashed_refusal():
        answer = transfers.decide_transfer(
            app_store(),
            app_schema(),
            g.web_user,
            transfer_id,
            verdict,
            request.form.get("comment", ""),
            current_app.config["OVER_ALLOCATION"],
        )
        flash(
            f"Transfer {transfer_id} {verdict if answer['status'] != 'requested' else 'approved at your step'}.", "ok"
        )
        for message in answer["over_allocation"]:
            flash(f"Flagged: {message}", "error")
    return redirect(url_for("web.transfers_page"))
