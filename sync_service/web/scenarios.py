"""The what-if scenarios pages: make, change, compare side by side, promote through the chains, discard.

A scenario is read against its origin; several are compared with one column each. Scenarios are
finance's (the domain refuses anyone else, as the API does). Every form is checked with the API's
own request model, then by the same domain function the API calls; a refusal's issues
(`changes[0].factor`) land at the form's fields (`scale.factor`), and the page is shown again with
what was typed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from sheet_templates.calendar import QUARTERS
from sync_service.access.teams import team_id
from sync_service.api.contracts import DecisionBody, ScenarioBody, ScenarioChanges, ScenarioPromotion
from sync_service.planning import periods, scenarios, workflow
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.errors import ServiceError
from sync_service.web.base import bp, formats, login_required
from sync_service.web.forms import FormErrors, checked, refusal_into
from sync_service.web.refusals import refused_as_http

# What each change form sends (its fields are named "<op>.<field>"), as the API's change names them.
SELECTION = ("region", "business_unit", "channel", "team")
FIELDS = {
    "scale": ("factor", "period", *SELECTION),
    "move": ("line_id", "from", "to", "amount"),
    "drop": ("line_ids", *SELECTION),
}
LABELS = {"factor": "Factor", "period": "Period", "line_id": "Line ID", "from": "From", "to": "To",
          "amount": "Amount", "line_ids": "Line IDs", "region": "Region", "business_unit": "Business unit",
          "channel": "Channel", "team": "Team", "campaign": "Campaign", "campaign_code": "Campaign code"}  # fmt: skip
GROUPINGS = ("region", "channel", "business_unit", "team")
SPANS = ("quarter", "month", "year")


# --- the list, and making one ----------------------------------------------------------------------------------


@bp.get("/scenarios")
@login_required
def scenarios_page() -> ResponseReturnValue:
    """Every scenario of the year, a form to make one, and a form to compare several side by side."""
    return _list_page(FormErrors(), {})


def _list_page(errors: FormErrors, typed: Mapping[str, Any], status: int = 200) -> ResponseReturnValue:
    with refused_as_http():
        every = scenarios.list_json(app_store(), app_schema(), g.web_user)
    chosen = {str(i) for i in typed.get("ids", [])} if isinstance(typed.get("ids"), list) else set()
    return render_template(
        "scenarios.html", scenarios=every, errors=errors, typed=typed, chosen=chosen, **_choices()
    ), status


@bp.post("/scenarios")
@login_required
def create_scenario() -> ResponseReturnValue:
    """A new scenario from the master or the estimate, with its first change when the form names one."""
    form = request.form
    errors = FormErrors()
    body = checked(
        ScenarioBody,
        {"name": form.get("name", ""), "from": form.get("from", "master"), "comment": form.get("comment", "")},
        errors,
    )
    change = _change("scale", form)
    first = [change] if any(k in change for k in ("factor", *SELECTION)) else None  # a copy, when none is named
    if first is not None:
        checked(ScenarioChanges, {"changes": first}, errors)
    answer = None
    if body is not None and not errors:
        with refusal_into(errors):
            answer = scenarios.create(
                app_store(), app_schema(), g.web_user, body.name, body.origin, body.comment, changes=first
            )
    if answer is None:
        return _list_page(_at_fields(errors, "scale", own=False), form, 422)
    flash(f"Scenario {answer['name']} is made{' and changed' if first else ''}.", "ok")
    return redirect(url_for("web.scenario_page", scenario_id=answer["id"]))


# --- one scenario -----------------------------------------------------------------------------------------------


@bp.get("/scenarios/<int:scenario_id>")
@login_required
def scenario_page(scenario_id: int) -> ResponseReturnValue:
    """One scenario against its origin, what changed in it, and the forms that change, promote or discard it."""
    return _scenario_page(scenario_id, FormErrors(), {})


def _scenario_page(
    scenario_id: int, errors: FormErrors, typed: Mapping[str, Any], status: int = 200
) -> ResponseReturnValue:
    schema, user = app_schema(), g.web_user
    by = request.args.get("by", "region")
    span = request.args.get("period", "quarter")
    with refused_as_http():
        about = scenarios.detail(app_store(), schema, user, scenario_id)
        table = scenarios.side_by_side(app_store(), schema, user, [scenario_id], by, span if span in SPANS else None)
    ended = about["scenario"]["ended"] or {}
    submitted = []
    for team, sid in sorted((ended.get("submissions") or {}).items()):
        try:  # where each plan the promotion submitted stands in its approval chain
            submitted.append({"team": team, "id": sid, **workflow.get_submission(app_store(), user, sid)})
        except ServiceError:
            submitted.append({"team": team, "id": sid, "status": None, "approval": None})
    revisions = [{**r, "said": [_said(c) for c in r["changes"]]} for r in about["revisions"]]
    return render_template(
        "scenario.html",
        s=about["scenario"],
        revisions=revisions,
        lines=about["lines"],
        table=table,
        submitted=submitted,
        labels={c.name: c.label for c in schema.input_columns},
        month_keys={c.name for c in schema.month_columns},
        errors=errors,
        typed=typed,
        by=table["by"][0] if table["by"] else by,
        span=table["period"],
        groupings=GROUPINGS,
        **_choices(),
    ), status


@bp.post("/scenarios/<int:scenario_id>/changes")
@login_required
def change_scenario(scenario_id: int) -> ResponseReturnValue:
    """One change (scale, move or drop) as a new revision of the scenario, refused whole when any field is bad."""
    form = request.form
    op = form.get("op", "")
    errors = FormErrors()
    if op not in FIELDS:
        errors.add("", "Choose a change: scale, move or drop.")
        return _scenario_page(scenario_id, errors, form, 422)
    revision = form.get("revision") or None
    body = checked(ScenarioChanges, {"revision": revision, "changes": [_change(op, form)]}, errors)
    answer = None
    if body is not None:
        with refusal_into(errors):  # the API's call, closed months refused
            answer = scenarios.change(
                app_store(), app_schema(), g.web_user, scenario_id, body.model_dump(), open_months_only=True
            )
    if answer is None:
        return _scenario_page(scenario_id, _at_fields(errors, op), form, 422)
    flash(f"Scenario {answer['name']} is changed (revision {answer['revision']}).", "ok")
    return redirect(url_for("web.scenario_page", scenario_id=scenario_id))


@bp.post("/scenarios/<int:scenario_id>/promote")
@login_required
def promote_scenario(scenario_id: int) -> ResponseReturnValue:
    """Promote the scenario as the API does: its teams' plans into their approval chains, or the allocations."""
    form = request.form
    errors = FormErrors()
    typed = {"as": form.get("promote.as", ""), "comment": form.get("promote.comment", "")}
    body = checked(ScenarioPromotion, typed, errors)
    answer = None
    if body is not None:
        with refusal_into(errors):
            answer = scenarios.promote(
                app_store(),
                app_schema(),
                g.web_user,
                scenario_id,
                body.target,
                body.comment,
                over_allocation=current_app.config["OVER_ALLOCATION"],
            )
    if answer is None:
        return _scenario_page(scenario_id, _at_fields(errors, "promote"), form, 409)
    ended = answer["ended"] or {}
    if body.target == "master":
        teams = ", ".join(sorted(ended.get("submissions") or {}))
        flash(f"Scenario {answer['name']} is promoted: the plans of {teams} wait in their approval chains.", "ok")
    else:
        flash(
            f"Scenario {answer['name']} is promoted to the allocations "
            f"(allocation revision {ended.get('allocation_revision')}).",
            "ok",
        )
    for message in ended.get("over_allocation") or ():
        flash(f"Flagged: {message}", "error")
    return redirect(url_for("web.scenario_page", scenario_id=scenario_id))


@bp.post("/scenarios/<int:scenario_id>/discard")
@login_required
def discard_scenario(scenario_id: int) -> ResponseReturnValue:
    """Discard the scenario: it changes no more, and nothing of it reaches the master."""
    errors = FormErrors()
    body = checked(DecisionBody, {"comment": request.form.get("discard.comment", "")}, errors)
    answer = None
    if body is not None:
        with refusal_into(errors):
            answer = scenarios.discard(app_store(), g.web_user, scenario_id, body.comment)
    if answer is None:
        return _scenario_page(scenario_id, _at_fields(errors, "discard"), request.form, 409)
    flash(f"Scenario {answer['name']} is discarded.", "ok")
    return redirect(url_for("web.scenarios_page"))


# --- several side by side ---------------------------------------------------------------------------------------


@bp.get("/scenarios/compare")
@login_required
def compare_scenarios() -> ResponseReturnValue:
    """Two or more scenarios side by side: one column each, each later one's difference from the first, totals."""
    ids = sorted({int(i) for i in request.args.getlist("ids") if i.isdigit()})  # the oldest first: the reference
    by = request.args.get("by", "region")
    span = request.args.get("period", "quarter")
    errors = FormErrors()
    if len(ids) < 2:
        errors.add("ids", "Choose two or more scenarios to compare.")
        return _list_page(errors, {"ids": ids}, 422)
    with refused_as_http():
        table = scenarios.side_by_side(app_store(), app_schema(), g.web_user, ids, by, span if span in SPANS else None)
    return render_template(
        "scenarios_compare.html",
        table=table,
        ids=ids,
        by=table["by"][0] if table["by"] else by,
        span=table["period"],
        groupings=GROUPINGS,
    )


# --- between the form and the domain ----------------------------------------------------------------------------


def _change(op: str, form: Mapping[str, Any]) -> dict[str, Any]:
    """The change a form sends, as the API's body names it: only the fields filled in."""
    change: dict[str, Any] = {"op": op}
    for name in FIELDS[op]:
        value = str(form.get(f"{op}.{name}", "")).strip()
        if value:
            change[name] = value
    if "line_ids" in change:
        change["line_ids"] = [i for i in re.split(r"[\s,;]+", change["line_ids"]) if i]
    return change


def _at_fields(errors: FormErrors, form: str, *, own: bool = True) -> FormErrors:
    """The errors at the page's fields: the domain's paths ("changes[0].factor") as the form's ("scale.factor").

    `own`: every field of the form is named "<form>.<field>", and its errors without a field are the form's.
    A message saying what a field must be names the field ("Factor must be a number ...").
    """
    out = FormErrors()
    for at, message in errors.items:
        found = re.fullmatch(r"changes(?:\[0\]|\.0)(?:\.(\w+))?", at)
        if found is not None:
            name = found.group(1)
            at = f"{form}.{name}" if name and name != "op" else form
        elif own:
            at = form if at in ("", "changes", "revision") else f"{form}.{at}"
        label = LABELS.get(at.rpartition(".")[2])
        if label and message.lower().startswith("must "):
            message = f"{label} {message[0].lower()}{message[1:]}"
        out.add(at, message[:1].upper() + message[1:])
    return out


def _choices() -> dict[str, Any]:
    """What the forms offer: the periods (closed months marked), regions, business units, channels and teams."""
    schema = app_schema()
    months = periods.periods_view(app_store(), schema)["periods"]
    shut = {m["month"] for m in months if m["locked"]}
    quarters = [(q, [m["month"] for m in months if m["quarter"] == q]) for q in QUARTERS]
    f, calendar = formats(), schema.calendar
    spans = [("FY", f"The whole year ({calendar.label}){' (holds closed months)' if shut else ''}")]
    spans += [
        (q, f"{f.period(q, calendar)}{' (holds a closed month)' if shut & set(ms) else ''}") for q, ms in quarters
    ]
    in_months = [(m["month"], f"{f.period(m['month'], calendar)}{' (closed)' if m['locked'] else ''}") for m in months]
    config = schema.config
    return {
        "choices": {
            "spans": spans + in_months,  # (key, as people read it, closed months marked)
            "months": in_months,
            # what the forms offer first: the whole year, or the first quarter and month still open
            "span": next(
                (k for k, ms in [("FY", [m["month"] for m in months]), *quarters] if not shut & set(ms)),
                next((m["month"] for m in months if not m["locked"]), "FY"),
            ),
            "month": next((m["month"] for m in months if not m["locked"]), months[0]["month"]),
            "regions": list(config.regions),
            "business_units": list(config.business_units),
            "channels": list(schema["channel"].choices),
            "teams": [team_id(r, b) for r in config.regions for b in config.business_units],
            "currency": config.reporting_currency,
        }
    }


def _said(change: Mapping[str, Any]) -> str:
    """A change of a revision in words, with its periods and amounts as people read them."""
    f, calendar = formats(), app_schema().calendar

    def period(key: Any) -> str:
        text = str(key or "FY").strip()
        return "the whole year" if text.upper() in ("", "FY", "YEAR") else f.period(text, calendar)

    def number(value: Any) -> str:
        try:
            return f.ratio(Decimal(str(value).replace(",", "")), 2)
        except (InvalidOperation, ValueError):
            return str(value)

    chosen = [f"{k.replace('_', ' ')} {change[k]}" for k in ("region", "business_unit", "team", "channel",
                                                             "campaign", "campaign_code") if change.get(k)]  # fmt: skip
    lines = ", ".join(chosen) or "every line"
    op = change.get("op")
    if op == "scale":
        return f"Scaled {lines} by {change.get('factor')} in {period(change.get('period'))}"
    if op == "move":
        return (
            f"Moved {number(change.get('amount'))} (in the line's currency) of line {change.get('line_id')} "
            f"from {period(change.get('from'))} to {period(change.get('to'))}"
        )
    if op == "drop":
        ids = change.get("line_ids") or []
        return f"Dropped line{'s' if len(ids) != 1 else ''} {', '.join(ids)}" if ids else f"Dropped {lines}"
    return "Changed"
