"""What-if scenarios: finance tries changes on a copy of the master before moving money.

A scenario starts as a copy of the master's approved lines (`origin="master"`) or of the latest
estimate (`origin="estimate"`: the closed months carry the spend booked in them). Its states are
revisions, appended and never changed; revision 1 is the origin it is compared with. Finance
changes it through the API (scale the planned spend of a channel, region or team in a period;
move an amount of a line from one month to another; drop lines) or by downloading it as an xlsx
workbook, editing any cell and uploading it again (refused with 409 when the scenario changed
since the download, and with every bad cell named when the workbook is not valid).

Nothing of it touches the master until it is promoted:

- `as="master"`: every team whose lines differ is submitted as the team's new plan (one submission
  per team, in one transaction), checked as a plan is (the team's plan unchanged since the scenario
  was made, locked months kept, line IDs its own, the allocation policy) and sent into the region's
  approval chain; the master changes when the last step of each chain approves, and never on the
  word of the promoter, who submitted it;
- `as="allocations"`: a new allocation revision whose cells are the scenario's planned spend by
  region, quarter and channel (and each region's quarter for all channels), promoted by a finance
  user other than whoever made the scenario's newest revision.

Or it is discarded. Either ends it; both are audited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from addin import reporting as grain
from addin.issues import UnreadableWorkbook
from addin.reader import plan_from_rows
from addin.safety import Limits
from addin.untrusted import open_untrusted
from sheet_templates.calendar import QUARTERS, period_months
from sheet_templates.formatting import Formats
from sheet_templates.money import display_money, money_text, to_cents
from sheet_templates.schema import ColumnType, PlanSchema
from sync_service.access import approvals
from sync_service.access.auth import require_finance
from sync_service.access.teams import team_id
from sync_service.budget import allocations
from sync_service.master import model as master
from sync_service.master.allocations import current_allocations
from sync_service.master.grouping import dimensions
from sync_service.master.grouping import periods as spans_of
from sync_service.planning import periods
from sync_service.planning.submissions import current_submission
from sync_service.planning.workflow import allocation_issue, check_line_ids, lines_by_id, stored_lines
from sync_service.platform import outbox, years
from sync_service.platform.errors import Conflict, Forbidden, NotFound, ServiceError, Unprocessable
from sync_service.platform.storage import (
    AuditEvent,
    Scenario,
    ScenarioEnd,
    ScenarioRevision,
    Store,
    Submission,
    Team,
    User,
    add_submission_lines,
    aware,
)

MAX_NAME = 120
MAX_CHANGES = 200  # changes in one request
SHEET = "Scenario"
NAME_SCENARIO, NAME_REVISION = "PS_SCENARIO", "PS_SCENARIO_REVISION"
MATCH = ("region", "business_unit", "team", "channel", "campaign", "campaign_code")  # what a change may select by


# --- reading ------------------------------------------------------------------------------------------------------


def _scenario(session: Session, scenario_id: int, *, lock: bool = False) -> Scenario:
    row = session.get(Scenario, scenario_id, with_for_update=lock)
    if row is None:
        raise NotFound(f"there is no scenario {scenario_id}")
    return row


def _revision(session: Session, scenario_id: int, number: int | None = None) -> ScenarioRevision:
    query = select(ScenarioRevision).where(ScenarioRevision.scenario_id == scenario_id)
    query = query.where(ScenarioRevision.number == number) if number else query.order_by(ScenarioRevision.number.desc())
    found = session.scalars(query.limit(1)).first()
    assert found is not None, "a scenario has its origin revision"
    return found


def _open(session: Session, row: Scenario) -> None:
    """409 unless the scenario is open (neither promoted nor discarded) and its year too."""
    years.require_open(session, row.fiscal_year, "change, promote or discard a scenario")
    ended = session.get(ScenarioEnd, row.id)
    if ended is not None:
        raise Conflict(
            f"scenario {row.id} ({row.name!r}) was {ended.action}; it changes no more", current_status=ended.action
        )


def _json(session: Session, row: Scenario) -> dict[str, Any]:
    newest = _revision(session, row.id)
    ended = session.get(ScenarioEnd, row.id)
    by = session.get(User, row.user_id)
    return {
        "id": row.id,
        "name": row.name,
        "origin": row.origin,
        "master_version": row.master_version,
        "status": ended.action if ended else "open",
        "revision": newest.number,
        "lines": len(newest.lines),
        "made_by": by.name if by else None,
        "made_at": aware(row.created_at).isoformat(),
        "comment": row.comment,
        "ended": None if ended is None else {"at": aware(ended.at).isoformat(), **ended.detail},
    }


def list_json(store: Store, schema: PlanSchema, user: User) -> list[dict[str, Any]]:
    require_finance(user, "tries what-if scenarios")
    with store.reading() as session:
        query = select(Scenario).where(Scenario.fiscal_year == schema.calendar.year).order_by(Scenario.id.desc())
        return [_json(session, s) for s in session.scalars(query)]


def get_json(store: Store, user: User, scenario_id: int) -> dict[str, Any]:
    require_finance(user, "tries what-if scenarios")
    with store.reading() as session:
        return _json(session, _scenario(session, scenario_id))


# --- making one -------------------------------------------------------------------------------------------------


def _amount_words(cents: int, currency: str | None) -> str:
    """An amount in a message a person reads ("EUR 1,000.00")."""
    return Formats().money(cents, currency, code=True) if currency else display_money(cents)


def create(
    store: Store,
    schema: PlanSchema,
    user: User,
    name: str,
    origin: str = "master",
    comment: str = "",
    *,
    changes: list[Any] | None = None,
) -> dict[str, Any]:
    """A scenario from the master's approved lines or the latest estimate (201); 409 when the name is taken.

    With `changes`, they are its revision 2, made in the same transaction and checked as `change`
    checks them (closed months refused): a refused change leaves no scenario behind.
    """
    require_finance(user, "tries what-if scenarios")
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ServiceError(f"name: give the scenario a name of 1 to {MAX_NAME} characters, e.g. 'Events cut 20%'")
    if origin not in ("master", "estimate"):
        raise ServiceError("from: a scenario starts from the 'master' (the approved plans) or the 'estimate'")
    view = master.load(store, schema, user)
    with store.reading() as session:
        lines = [
            {k: v for k, v in line.items() if k != "_row"}
            for line in master.master_lines(
                session, master.current_submissions(session, schema.calendar.year, view.version), schema, store.shared
            )
        ]
    if origin == "estimate":  # the closed months carry what was booked in them, as the latest estimate does
        closed = [c.name for c in schema.month_columns if c.name in view.locked]
        for line in lines:
            booked = view.actual_by_month.get((line["team_id"], line["line_id"]), {})
            if view.actual_months is not None:
                line.update({m: int(booked.get(m, 0)) for m in closed})
    with store.transaction() as session:
        years.require_open(session, schema.calendar.year, "make a what-if scenario")
        if session.scalar(select(Scenario.id).where(Scenario.name == name)) is not None:
            raise Conflict(f"a scenario is already named {name!r}; give this one its own name")
        row = Scenario(
            name=name,
            fiscal_year=schema.calendar.year,
            user_id=user.id,
            origin=origin,
            master_version=view.version,
            comment=comment.strip(),
        )
        changed = None
        if changes is not None:  # checked before anything is written: a refusal leaves no scenario
            changed = _apply(schema, lines, changes, periods.locked_months(session, schema.calendar.year))
        session.add(row)
        session.flush()
        first = ScenarioRevision(
            scenario_id=row.id, number=1, user_id=user.id, change={"made": f"from the {origin}"}, lines=lines
        )
        session.add(first)
        session.add(
            AuditEvent(
                user_id=user.id,
                action="scenario.created",
                target=f"scenario:{row.id}",
                detail={"name": name, "origin": origin, "master_version": view.version, "lines": len(lines)},
            )
        )
        session.flush()
        if changed is not None:
            after, done = changed
            return _store_revision(session, row, first, user, {"changes": changes, "done": done}, after)
        return _json(session, row)


# --- changing one through the API ------------------------------------------------------------------------------


def _decimal(value: Any, where: str, problems: list[dict[str, str]], *, low: str = "0", high: str = "100") -> Decimal:
    try:
        number = Decimal(str(value).strip().replace(",", "")) if isinstance(value, str | int | float) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or not Decimal(low) <= number <= Decimal(high):
        problems.append({"at": where, "message": f"must be a number from {low} to {high}, e.g. 0.8"})
        return Decimal(1)
    return number


def _months_of(schema: PlanSchema, value: Any, where: str, problems: list[dict[str, str]]) -> list[str]:
    keys = period_months(str(value).strip()) if isinstance(value, str) else None
    if keys is None:
        labels = {c.label.casefold(): c.name for c in schema.month_columns}
        found = labels.get(str(value).strip().casefold()) if isinstance(value, str) else None
        keys = [found] if found else None
    if keys is None:
        problems.append({"at": where, "message": "must be FY, Q1..Q4, a fiscal month m01..m12 or its label"})
        return []
    return list(keys)


def _matches(change: Mapping[str, Any], where: str, problems: list[dict[str, str]]) -> dict[str, str]:
    chosen = {}
    for key in MATCH:
        if key in change:
            value = change[key]
            if not isinstance(value, str) or not value.strip():
                problems.append({"at": f"{where}.{key}", "message": "must be a name"})
                continue
            chosen[key] = value.strip().casefold()
    return chosen


def _selected(line: Mapping[str, Any], chosen: Mapping[str, str]) -> bool:
    for key, value in chosen.items():
        got = line.get("team_id") if key == "team" and "-" in value else line.get(key)
        if str(got or "").casefold() != value:
            return False
    return True


def _closed_issue(schema: PlanSchema, months: Any, closed: Collection[str], where: str) -> dict[str, str] | None:
    """The issue of a change touching closed months (named as people read them), or None."""
    shut = [schema[m].label for m in months if m in closed]
    if not shut:
        return None
    named = shut[0] if len(shut) == 1 else f"{', '.join(shut[:-1])} and {shut[-1]}"
    verb = "is" if len(shut) == 1 else "are"
    return {"at": where, "message": f"{named} {verb} closed; a scenario changes open months only"}


def _apply(
    schema: PlanSchema, lines: list[dict[str, Any]], changes: Any, closed: Collection[str] = ()
) -> tuple[list[dict[str, Any]], list[str]]:
    """The lines after `changes`, and what each did; 422 naming every bad field, before anything changes.

    A change touching one of the `closed` months (scaling a period that holds one, moving money out of
    or into one, dropping a line that plans spend in one) is refused naming the month.
    """
    if not isinstance(changes, list) or not changes:
        raise ServiceError('changes: send a list of changes, e.g. [{"op": "scale", "channel": "Events", ...}]')
    if len(changes) > MAX_CHANGES:
        raise ServiceError(f"changes: at most {MAX_CHANGES} changes at once")
    problems: list[dict[str, str]] = []
    out = [dict(line) for line in lines]
    done = []
    by_id = {line["line_id"]: line for line in out}
    for n, change in enumerate(changes):
        where = f"changes[{n}]"
        if not isinstance(change, dict):
            problems.append({"at": where, "message": "must be an object with an op"})
            continue
        op = change.get("op")
        if op == "scale":
            factor = _decimal(change.get("factor"), f"{where}.factor", problems)
            months = _months_of(schema, change.get("period", "FY"), f"{where}.period", problems)
            chosen = _matches(change, where, problems)
            shut = _closed_issue(schema, months, closed, f"{where}.period")
            if shut is not None:
                problems.append(shut)
                continue
            hit = 0
            for line in out:
                if _selected(line, chosen):
                    hit += 1
                    for m in months:
                        cents = int(line.get(m) or 0)
                        line[m] = int((Decimal(cents) * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            if not hit and not problems:
                problems.append({"at": where, "message": "no line of the scenario is selected by it"})
            done.append(f"scaled {hit} line(s) by {factor} in {change.get('period', 'FY')}")
        elif op == "move":
            line = by_id.get(change.get("line_id")) if isinstance(change.get("line_id"), str) else None
            if line is None:
                problems.append({"at": f"{where}.line_id", "message": "must be the Line ID of a line of the scenario"})
                continue
            source = _months_of(schema, change.get("from"), f"{where}.from", problems)
            target = _months_of(schema, change.get("to"), f"{where}.to", problems)
            if len(source) != 1 or len(target) != 1:
                if source and target:
                    problems.append({"at": where, "message": "from and to are each one fiscal month (m01..m12)"})
                continue
            shut = [
                i
                for i in (
                    _closed_issue(schema, m, closed, f"{where}.{k}") for k, m in (("from", source), ("to", target))
                )
                if i is not None
            ]
            if shut:
                problems.extend(shut)
                continue
            cents = to_cents(change.get("amount"))
            if cents is None or cents <= 0:
                problems.append({"at": f"{where}.amount", "message": "must be an amount above zero"})
                continue
            held = int(line.get(source[0]) or 0)
            if cents > held:
                problems.append(
                    {
                        "at": f"{where}.amount",
                        "message": f"line {line['line_id']} plans {_amount_words(held, line.get('currency'))} in "
                        f"{schema[source[0]].label}; it cannot give {_amount_words(cents, line.get('currency'))}",
                    }
                )
                continue
            line[source[0]] = held - cents
            line[target[0]] = int(line.get(target[0]) or 0) + cents
            done.append(
                f"moved {_amount_words(cents, line.get('currency'))} of {line['line_id']} "
                f"from {schema[source[0]].label} to {schema[target[0]].label}"
            )
        elif op == "drop":
            ids = change.get("line_ids")
            chosen = _matches(change, where, problems)
            if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
                problems.append({"at": f"{where}.line_ids", "message": "must be a list of Line IDs"})
                continue
            if not ids and not chosen:
                problems.append({"at": where, "message": "say which lines: line_ids, or region, channel, team, ..."})
                continue
            if ids and chosen:
                problems.append(
                    {"at": where, "message": "give line_ids or a selection (region, channel, ...), not both"}
                )
                continue
            unknown = [i for i in ids or () if i not in by_id]
            if unknown:
                problems.append({"at": f"{where}.line_ids", "message": f"not lines of the scenario: {unknown[:5]}"})
                continue
            drop = {x["line_id"] for x in out if (ids and x["line_id"] in ids) or (chosen and _selected(x, chosen))}
            if not drop:
                problems.append({"at": where, "message": "no line of the scenario is selected by it"})
                continue
            planned = [
                m for m in schema.month_columns if any(int(x.get(m.name) or 0) for x in out if x["line_id"] in drop)
            ]
            shut = _closed_issue(schema, [m.name for m in planned], closed, f"{where}.line_ids" if ids else where)
            if shut is not None:
                problems.append(shut)
                continue
            out = [x for x in out if x["line_id"] not in drop]
            by_id = {x["line_id"]: x for x in out}
            done.append(f"dropped {len(drop)} line(s)")
        else:
            problems.append({"at": f"{where}.op", "message": "must be scale, move or drop"})
    if problems:
        raise Unprocessable(f"{len(problems)} change(s) are not valid; the scenario was not changed", issues=problems)
    return out, done


def change(
    store: Store, schema: PlanSchema, user: User, scenario_id: int, body: Any, *, open_months_only: bool = False
) -> dict[str, Any]:
    """Apply `body["changes"]` to the scenario's newest lines as a new revision (all or nothing).

    With `open_months_only`, a change touching a month finance has closed is refused naming it.
    """
    require_finance(user, "tries what-if scenarios")
    if not isinstance(body, dict):
        raise ServiceError('send {"changes": [...]}')
    with store.transaction() as session:
        row = _scenario(session, scenario_id, lock=True)
        _open(session, row)
        newest = _revision(session, scenario_id)
        expected = body.get("revision")
        if expected is not None and expected != newest.number:
            raise Conflict(
                f"scenario {scenario_id} is at revision {newest.number}, not {expected}: read it again",
                revision=newest.number,
            )
        closed = periods.locked_months(session, row.fiscal_year) if open_months_only else set()
        lines, done = _apply(schema, newest.lines, body.get("changes"), closed)
        return _store_revision(session, row, newest, user, {"changes": body["changes"], "done": done}, lines)


def _store_revision(
    session: Session,
    row: Scenario,
    newest: ScenarioRevision,
    user: User,
    what: dict[str, Any],
    lines: list[dict[str, Any]],
) -> dict[str, Any]:
    _open(session, row)
    session.add(
        ScenarioRevision(scenario_id=row.id, number=newest.number + 1, user_id=user.id, change=what, lines=lines)
    )
    session.add(
        AuditEvent(
            user_id=user.id,
            action="scenario.changed",
            target=f"scenario:{row.id}",
            detail={"revision": newest.number + 1, **{k: v for k, v in what.items() if k != "changes"}},
        )
    )
    session.flush()
    return _json(session, row)


# --- the xlsx round trip ---------------------------------------------------------------------------------------


def workbook(store: Store, schema: PlanSchema, user: User, scenario_id: int, path: Path) -> Path:
    """The scenario's newest lines as a workbook to edit: one Scenario sheet with the plan's columns."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.workbook.defined_name import DefinedName

    from sheet_templates import printing
    from sheet_templates.formatting import excel_money_format

    require_finance(user, "tries what-if scenarios")
    with store.reading() as session:
        row = _scenario(session, scenario_id)
        newest = _revision(session, scenario_id)
        name, number, lines = row.name, newest.number, newest.lines
    book = Workbook()
    sheet = book.active
    sheet.title = SHEET
    columns = schema.input_columns
    for j, c in enumerate(columns, start=1):
        cell = sheet.cell(1, j, c.label)
        cell.font, cell.fill = Font(bold=True, color="FFFFFF"), PatternFill("solid", fgColor="1F4E78")
        sheet.column_dimensions[c.letter].width = c.width
    for r, line in enumerate(lines, start=2):
        for j, c in enumerate(columns, start=1):
            value = line.get(c.name)
            if value is None or value == "":
                continue
            if c.type is ColumnType.MONEY:
                value = Decimal(int(value)) / 100
                sheet.cell(r, j, float(value)).number_format = excel_money_format()
            elif c.type is ColumnType.DATE:
                sheet.cell(r, j, dt.date.fromisoformat(value)).number_format = "yyyy-mm-dd"
            else:
                sheet.cell(r, j, value).data_type = "s" if isinstance(value, str) else "n"
    sheet.freeze_panes = "B2"
    book.defined_names[NAME_SCENARIO] = DefinedName(NAME_SCENARIO, attr_text=str(scenario_id))
    book.defined_names[NAME_REVISION] = DefinedName(NAME_REVISION, attr_text=str(number))
    book.properties.title = f"Scenario {scenario_id}: {name} (revision {number})"
    printing.setup_openpyxl(sheet, f"{schema.config.org_name}, scenario {name}, revision {number}", (1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def upload(store: Store, schema: PlanSchema, user: User, scenario_id: int, raw: bytes, filename: str) -> dict[str, Any]:
    """The scenario's lines as the uploaded workbook holds them: a new revision; 409 when it changed since."""
    require_finance(user, "tries what-if scenarios")
    limits = Limits(max_rows=schema.config.max_lines + 1_000)
    try:
        opened = open_untrusted(raw, sheet=SHEET, limits=limits, display_name=filename)
    except UnreadableWorkbook as exc:
        raise Unprocessable(exc.message, issues=[exc.as_issue().to_dict()]) from None
    package, grid = opened.package, opened.grid
    names = package.defined_names
    made_for = names.get(NAME_SCENARIO, "").strip().removeprefix("=")
    base = names.get(NAME_REVISION, "").strip().removeprefix("=")
    if made_for != str(scenario_id) or not base.isdigit():
        raise Unprocessable(
            f"{filename} is not scenario {scenario_id}'s workbook: download it from the scenario and edit that",
            issues=[{"severity": "error", "rule": "template.identity", "sheet": None, "cell": None,
                     "message": "the workbook does not name this scenario and its revision"}],
        )  # fmt: skip
    read = plan_from_rows(grid, schema, sheet=SHEET, file=filename)
    if not read.ok:
        errors = len(read.errors)
        raise Unprocessable(
            f"the scenario has {errors} error{'s' if errors != 1 else ''}; it was not changed",
            issues=[i.to_dict() for i in read.issues],
        )

    lines = stored_lines(read.table)
    letters = read.letters
    with store.transaction() as session:
        teams = set(session.scalars(select(Team.id)))
        # A line keeps the team it had in the scenario; a new line's team is its region and business unit.
        had = {x["line_id"]: x["team_id"] for x in _revision(session, scenario_id).lines}
        problems = []
        seen: set[str] = set()
        for line, sheet_row in zip(lines, read.table["_row"].tolist(), strict=True):
            line["team_id"] = had.get(line["line_id"]) or team_id(line["region"], line["business_unit"])
            if line["team_id"] not in teams:
                cell = f"{letters.get('business_unit', schema['business_unit'].letter)}{sheet_row}"
                problems.append({"severity": "error", "rule": "scenario.team", "sheet": SHEET, "cell": cell,
                                 "message": f"no team plans {line['region']} {line['business_unit']}"})  # fmt: skip
            if line["line_id"].casefold() in seen:
                cell = f"{letters.get('line_id', schema['line_id'].letter)}{sheet_row}"
                problems.append({"severity": "error", "rule": "line_id.duplicate", "sheet": SHEET, "cell": cell,
                                 "message": f"Line ID {line['line_id']} is on two rows"})  # fmt: skip
            seen.add(line["line_id"].casefold())
        if problems:
            raise Unprocessable(
                f"{len(problems)} row(s) of the scenario are not valid; it was not changed", issues=problems
            )
        row = _scenario(session, scenario_id, lock=True)
        _open(session, row)
        newest = _revision(session, scenario_id)
        if int(base) != newest.number:
            raise Conflict(
                f"scenario {scenario_id} changed since this workbook was downloaded (revision {base}; now "
                f"{newest.number}): download it again and make your changes there",
                revision=newest.number,
            )
        what = {"uploaded": filename[:255], "sha256": hashlib.sha256(raw).hexdigest(), "done": ["edited in Excel"]}
        return _store_revision(session, row, newest, user, what, lines)


# --- comparing ----------------------------------------------------------------------------------------------------


def _money(lines: list[dict[str, Any]], schema: PlanSchema) -> tuple[Any, np.ndarray]:
    table = master.typed_lines(lines, schema)
    return table, grain.month_cents(table, schema)


def _totals(lines: list[dict[str, Any]], schema: PlanSchema, dims: list[str], kind: str) -> dict[tuple, int]:
    table, months = _money(lines, schema)
    spans = [(p.label, list(p.months)) for p in spans_of(schema, kind)]
    out: dict[tuple, int] = defaultdict(int)
    if not len(table):
        return out
    keys = [tuple(str(v) for v in row) for row in table[dims].itertuples(index=False)] if dims else [()] * len(table)
    for label, span in spans:
        sums = months[:, span].sum(axis=1)
        for key, cents in zip(keys, sums.tolist(), strict=True):
            out[(*key, label)] += int(cents)
    return out


def compare(
    store: Store, schema: PlanSchema, user: User, scenario_id: int, by: str | None, period: str | None
) -> dict[str, Any]:
    """The scenario against its origin: planned spend by group and period, and every line added, dropped or changed."""
    require_finance(user, "tries what-if scenarios")
    dims = dimensions(schema, by, "region")
    kind = period or "quarter"
    with store.reading() as session:
        row = _scenario(session, scenario_id)
        about = _json(session, row)
        origin = _revision(session, scenario_id, 1).lines
        now = _revision(session, scenario_id).lines
    before, after = _totals(origin, schema, dims, kind), _totals(now, schema, dims, kind)
    order = {p.label: k for k, p in enumerate(spans_of(schema, kind))}
    rows = []
    for key in sorted(set(before) | set(after), key=lambda k: (k[:-1], order[k[-1]])):
        b, a = before.get(key, 0), after.get(key, 0)
        rows.append(
            {
                **dict(zip(dims, key[:-1], strict=True)),
                "period": key[-1],
                "origin": money_text(b),
                "scenario": money_text(a),
                "change": money_text(a - b),
                "cents": {"origin": b, "scenario": a},
            }
        )
    old = {(x["team_id"], x["line_id"]): x for x in origin}
    new = {(x["team_id"], x["line_id"]): x for x in now}
    changed = []
    for key in sorted(set(old) & set(new)):
        fields = {
            c.name: {"origin": _shown(c, old[key].get(c.name)), "scenario": _shown(c, new[key].get(c.name))}
            for c in schema.input_columns
            if (old[key].get(c.name) or None) != (new[key].get(c.name) or None)
        }
        if fields:
            changed.append({"team": key[0], "line_id": key[1], "fields": fields})
    totals_before = sum(v for k, v in before.items())
    totals_after = sum(v for k, v in after.items())
    return {
        "scenario": about,
        "by": dims,
        "period": kind,
        "currency": schema.config.reporting_currency,
        "total": {"origin": money_text(totals_before), "scenario": money_text(totals_after),
                  "change": money_text(totals_after - totals_before)},
        "rows": rows,
        "lines": {
            "added": [{"team": t, "line_id": i} for t, i in sorted(set(new) - set(old))],
            "dropped": [{"team": t, "line_id": i} for t, i in sorted(set(old) - set(new))],
            "changed": changed,
        },
    }  # fmt: skip


def _shown(column: Any, value: Any) -> Any:
    if column.type is ColumnType.MONEY:
        return None if value is None else money_text(int(value))
    return value


MAX_SIDE_BY_SIDE = 6  # scenarios compared at once


def side_by_side(
    store: Store, schema: PlanSchema, user: User, scenario_ids: Sequence[int], by: str | None, period: str | None
) -> dict[str, Any]:
    """Scenarios' planned spend side by side by group and period, in reporting cents, with a totals row.

    Each row holds the first scenario's origin (revision 1), each scenario's planned spend, each
    scenario's change from its own origin, and each later scenario's difference from the first.
    `same_origin` says whether every scenario was made from the same lines (then one origin column
    is the base of them all).
    """
    require_finance(user, "tries what-if scenarios")
    ids = list(dict.fromkeys(scenario_ids))
    if not ids or len(ids) > MAX_SIDE_BY_SIDE:
        raise ServiceError(
            f"scenarios: choose 1 to {MAX_SIDE_BY_SIDE} scenarios to compare",
            issues=[{"at": "ids", "message": f"choose 1 to {MAX_SIDE_BY_SIDE} scenarios to compare"}],
        )
    dims = dimensions(schema, by, "region")
    kind = period or "quarter"
    order = {p.label: k for k, p in enumerate(spans_of(schema, kind))}
    with store.reading() as session:
        about = [_json(session, _scenario(session, i)) for i in ids]
        origins = [_revision(session, i, 1).lines for i in ids]
        newest = [_revision(session, i).lines for i in ids]
    bases = [_totals(x, schema, dims, kind) for x in origins]
    each = [_totals(x, schema, dims, kind) for x in newest]
    keys = sorted(set().union(*bases, *each), key=lambda k: (k[:-1], order[k[-1]]))

    def cells(key: tuple | None) -> dict[str, Any]:
        def of(table: dict[tuple, int]) -> int:
            return table.get(key, 0) if key is not None else sum(table.values())

        spend = [of(t) for t in each]
        return {
            "origin": of(bases[0]),
            "scenarios": spend,
            "change": [of(t) - of(b) for t, b in zip(each, bases, strict=True)],
            "difference": [x - spend[0] for x in spend[1:]],
        }

    rows = [{**dict(zip(dims, key[:-1], strict=True)), "period": key[-1], **cells(key)} for key in keys]
    return {
        "scenarios": about,
        "same_origin": all(x == origins[0] for x in origins[1:]),
        "by": dims,
        "period": kind,
        "currency": schema.config.reporting_currency,
        "rows": rows,
        "total": cells(None),
    }


def detail(store: Store, schema: PlanSchema, user: User, scenario_id: int) -> dict[str, Any]:
    """One scenario with its revisions (who changed what, when) and its lines against its origin, in cents.

    Each line added or dropped with its planned spend for the year in its own currency; each line
    changed with every field that differs, with the column's type (money in the line's cents, other
    fields as stored).
    """
    require_finance(user, "tries what-if scenarios")
    months = [c.name for c in schema.month_columns]
    with store.reading() as session:
        row = _scenario(session, scenario_id)
        about = _json(session, row)
        query = select(ScenarioRevision).where(ScenarioRevision.scenario_id == scenario_id)
        revisions = []
        for r in session.scalars(query.order_by(ScenarioRevision.number)):
            by = session.get(User, r.user_id)
            revisions.append(
                {"number": r.number, "by": by.name if by else None, "at": aware(r.created_at).isoformat(),
                 "changes": r.change.get("changes") or [], "uploaded": r.change.get("uploaded"),
                 "made": r.change.get("made")}
            )  # fmt: skip
        old = {(x["team_id"], x["line_id"]): x for x in _revision(session, scenario_id, 1).lines}
        new = {(x["team_id"], x["line_id"]): x for x in _revision(session, scenario_id).lines}

    def summary(line: Mapping[str, Any]) -> dict[str, Any]:
        return {"team": line["team_id"], "line_id": line["line_id"], "campaign": line.get("campaign"),
                "channel": line.get("channel"), "currency": line.get("currency"),
                "planned": sum(int(line.get(m) or 0) for m in months)}  # fmt: skip

    changed = []
    for key in sorted(set(old) & set(new)):
        fields = [
            {"column": c.name, "type": c.type.value, "origin": old[key].get(c.name),
             "scenario": new[key].get(c.name)}
            for c in schema.input_columns
            if (old[key].get(c.name) or None) != (new[key].get(c.name) or None)
        ]  # fmt: skip
        if fields:
            changed.append({**summary(new[key]), "fields": fields})
    return {
        "scenario": about,
        "revisions": revisions,
        "lines": {
            "added": [summary(new[k]) for k in sorted(set(new) - set(old))],
            "dropped": [summary(old[k]) for k in sorted(set(old) - set(new))],
            "changed": changed,
        },
    }


# --- promoting or discarding ----------------------------------------------------------------------------------


def discard(store: Store, user: User, scenario_id: int, comment: str = "") -> dict[str, Any]:
    require_finance(user, "tries what-if scenarios")
    with store.transaction() as session:
        row = _scenario(session, scenario_id, lock=True)
        _open(session, row)
        session.add(ScenarioEnd(scenario_id=row.id, action="discarded", user_id=user.id, detail={"comment": comment}))
        session.add(AuditEvent(user_id=user.id, action="scenario.discarded", target=f"scenario:{row.id}",
                               detail={"comment": comment}))  # fmt: skip
        session.flush()
        return _json(session, row)


def promote(
    store: Store,
    schema: PlanSchema,
    user: User,
    scenario_id: int,
    target: str,
    comment: str = "",
    *,
    over_allocation: str = "flag",
) -> dict[str, Any]:
    """Submit the scenario's changed teams' plans into their approval chains, or make it the allocations.

    One transaction either way. To the master, the promoter is each plan's submitter: the master
    changes when the last step of a plan's chain approves it (`workflow.decide`). To the
    allocations, whoever made the scenario's newest revision is refused (403): another finance
    user promotes it.
    """
    require_finance(user, "promotes what-if scenarios")
    if target not in ("master", "allocations"):
        raise ServiceError("as: promote a scenario to the 'master' or to the 'allocations'")
    with store.transaction() as session:
        session.scalars(select(Team.id).order_by(Team.id).with_for_update()).all()  # approvals wait for this one
        row = _scenario(session, scenario_id, lock=True)
        schema = schema.for_year(row.fiscal_year)  # promoted into its own year
        _open(session, row)
        newest = _revision(session, scenario_id)
        lines = newest.lines
        if target == "allocations":
            if newest.user_id == user.id:
                raise Forbidden(
                    f"you made scenario {scenario_id}'s lines as they are (revision {newest.number}); another "
                    "finance user must promote it to the allocations, so that two people agree to every budget change"
                )
            detail = _to_allocations(session, store, schema, user, row, lines, over_allocation)
        else:  # the approval chains hold the four eyes: the promoter submits, and takes no step of them
            detail = _to_master(session, schema, user, row, lines, comment, over_allocation)
        detail["comment"] = comment
        session.add(
            ScenarioEnd(scenario_id=row.id, action="promoted", user_id=user.id, detail={"as": target, **detail})
        )
        session.add(AuditEvent(user_id=user.id, action="scenario.promoted", target=f"scenario:{row.id}",
                               detail={"as": target, **detail}))  # fmt: skip
        session.flush()
        return _json(session, row)


def _to_allocations(
    session: Session,
    store: Store,
    schema: PlanSchema,
    user: User,
    row: Scenario,
    lines: list[dict[str, Any]],
    over_allocation: str,
) -> dict[str, Any]:
    """A new allocation revision: each region of the scenario gets its planned spend by quarter and channel.

    Its cells replace the region's (and each quarter's all-channels cell is the quarter's total);
    the regions without a line in the scenario keep theirs. Checked against the approved plans as
    a transfer is: flagged, or refused under OVER_ALLOCATION=refuse.
    """
    table, months = _money(lines, schema)
    quarters = grain.quarter_cents(months)
    store.serialise(session, allocations.ALLOCATIONS_LOCK)  # read the cells in force under the writers' lock
    _, in_force = current_allocations(session, schema)
    regions = sorted(set(table["region"].tolist())) if len(table) else []
    cells: dict[tuple[str, str, str], int] = {k: v for k, v in in_force.items() if k[0] not in regions}
    for region in regions:
        for quarter in QUARTERS:
            cells[region, quarter, "*"] = 0
    for k, (region, channel) in enumerate(zip(table["region"].tolist(), table["channel"].tolist(), strict=True)):
        for q, quarter in enumerate(QUARTERS):
            cells[region, quarter, channel] = cells.get((region, quarter, channel), 0) + int(quarters[k, q])
            cells[region, quarter, "*"] += int(quarters[k, q])
    findings = [f for region in regions for f in allocations.region_findings(session, schema, region, cells)]
    if findings and over_allocation == "refuse":
        raise Conflict(
            f"promoting scenario {row.id} to the allocations would leave approved plans over them",
            issues=[allocation_issue(f) for f in findings],
        )
    revision = allocations.write_revision(
        session, user, row.fiscal_year, cells, f"promoted from scenario {row.id} {row.name!r}"
    )
    return {"allocation_revision": revision, "regions": regions, "over_allocation": [f["message"] for f in findings]}


def _to_master(
    session: Session,
    schema: PlanSchema,
    user: User,
    row: Scenario,
    lines: list[dict[str, Any]],
    comment: str,
    over_allocation: str,
) -> dict[str, Any]:
    """Submit each team whose lines the scenario changes, as if the team had sent the plan.

    Each submission is based on the team's approved plan, checked as a plan is, and waits in its
    region's approval chain (thresholds included), audited and announced as a submission is;
    nothing is decided here, so the master is as it was.
    """
    year = row.fiscal_year
    made_from = master.current_submissions(session, year, row.master_version) if row.master_version else {}
    origin: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in _revision(session, row.id, 1).lines:
        origin[line["team_id"]].append(line)
    by_team: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        by_team[line["team_id"]].append(line)
    locked = periods.locked_months(session, year)
    submitted: dict[str, int] = {}
    issues: list[dict[str, Any]] = []
    over: list[str] = []
    for team in sorted(set(by_team) | set(origin)):
        if by_team.get(team, []) == origin.get(team, []):
            continue  # the scenario leaves this team's lines as they were
        current = current_submission(session, team, year)
        if current != made_from.get(team):
            raise Conflict(
                f"team {team}'s approved plan changed since scenario {row.id} was made (submission "
                f"{made_from.get(team) or 'none'}; now {current}): make a new scenario from today's master",
                team=team,
            )
        held = lines_by_id(session, current)
        mine = [{k: v for k, v in line.items() if k != "team_id"} for line in by_team.get(team, [])]
        if row.origin == "estimate":  # its closed months show what was booked: the plan keeps its own there
            for line in mine:
                before = held.get(line["line_id"], {})
                line.update({m: before.get(m) for m in locked})
        for line_, month, old, new in periods.locked_changes(schema, locked, held, mine):
            issues.append({"severity": "error", "rule": "period.locked", "team": team, "line_id": line_["line_id"],
                           "column": month, "message": f"{schema[month].label} is closed: line {line_['line_id']} "
                           f"must keep {_amount_words(old, line_.get('currency'))} (the scenario has "
                           f"{_amount_words(new, line_.get('currency'))})"})  # fmt: skip
        if issues:
            continue
        found = session.get(Team, team)
        _validated(schema, found, mine)
        rows_ = {line["line_id"]: None for line in mine}
        try:  # as a submitted plan is: neither another team's approved IDs nor those of its plans waiting
            check_line_ids(session, schema, team, rows_, SHEET, pending=True)
        except Unprocessable as exc:
            raise Conflict(f"the scenario gives team {team} line IDs of another team", issues=exc.issues) from None
        table = master.typed_lines([{**line, "team_id": team} for line in mine], schema)
        totals = allocations.plan_totals(table, schema)
        findings = allocations.allocation_findings(session, schema, found, totals)
        if findings and over_allocation == "refuse":
            raise Conflict(
                f"promoting scenario {row.id} would put {team}'s region over its allocation",
                issues=[allocation_issue(f) for f in findings],
            )
        over += [f["message"] for f in findings]
        raw = json.dumps(mine, sort_keys=True, separators=(",", ":")).encode()
        submission = Submission(
            fiscal_year=row.fiscal_year,
            team_id=team,
            user_id=user.id,
            source="scenario",
            filename=f"scenario {row.id}: {row.name}"[:255],
            raw=raw,
            raw_sha256=hashlib.sha256(raw).hexdigest(),
            valid=True,
            line_count=len(mine),
            # The stored report is read by the team's marketers: other teams' approved spend is not theirs to see.
            report=[allocation_issue(allocations.redacted(f)) for f in findings],
            based_on_submission=current,
            base={"submission": current},
            cycle_id=None,  # a promotion is finance's, not the team's reforecast
        )
        session.add(submission)
        session.flush()
        add_submission_lines(session, submission.id, mine, [None] * len(mine), totals)
        change = approvals.plan_change(session, current, totals)
        approvals.record_chain(session, schema.config.approvals, submission.id, found.region, change)
        submitted[team] = submission.id
        session.add(
            AuditEvent(
                user_id=user.id,
                action="submission.create",
                target=f"submission:{submission.id}",
                detail={"team": team, "lines": len(mine), "source": "scenario", "based_on": current,
                        "scenario": row.id, "scenario_name": row.name, "comment": comment},
            )
        )  # fmt: skip
        outbox.stage(session, "submission.submitted", user, submission=submission.id)
    if issues:
        raise Conflict(f"scenario {row.id} changes {len(issues)} amount(s) in closed months", issues=issues)
    if not submitted:
        raise Conflict(f"scenario {row.id} changes no team's plan: there is nothing to promote to the master")
    return {"submissions": submitted, "over_allocation": over}


def _validated(schema: PlanSchema, team: Team, lines: list[dict[str, Any]]) -> None:
    """409 with every issue when a team's lines from a scenario are not a valid plan (as a JSON plan is checked)."""
    columns = [c.name for c in schema.input_columns]
    grid = [columns, *([_cell(c, line.get(c.name)) for c in schema.input_columns] for line in lines)]
    read = plan_from_rows(grid, schema, sheet="lines", region=team.region)
    if not read.ok:
        raise Conflict(
            f"the scenario's lines for team {team.id} are not a valid plan; nothing was promoted",
            issues=[i.to_dict() for i in read.errors],
        )


def _cell(column: Any, value: Any) -> Any:
    """A stored value as a JSON plan's cell: money in units, dates as ISO text."""
    if value is None:
        return ""
    if column.type is ColumnType.MONEY:
        return str(Decimal(int(value)) / 100)
    return value
