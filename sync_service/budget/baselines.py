"""The budget baseline: the master and allocations finance locks as the year's budget, and views against it.

A baseline names the master version and the allocation revision in force when finance locked
it. Both are immutable, so the baseline is too, and its figures are read back through the same
read model as today's master (`master.at_version`): the budget is the planned spend of the plans
approved at that version, at the money grain of docs/money.md. A re-baseline is a new baseline
(and an audit event); the newest is "the budget" unless a view names another.

`GET /api/v1/budget` sets, per group and period, the budget (and its allocation) against the
current plan (and the allocations in force) and the actual spend.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sheet_templates.master_workbook import Table, ValuesSheet
from sheet_templates.money import money_text, to_cents
from sheet_templates.schema import PlanSchema
from sync_service.access.auth import require_finance
from sync_service.master import model as master_model
from sync_service.master.allocations import allocation_of, allocations_at, current_allocations
from sync_service.master.grouping import dimensions, periods, sums
from sync_service.platform import years
from sync_service.platform.errors import Conflict, NotFound, ServiceError
from sync_service.platform.storage import AuditEvent, Baseline, MasterVersion, Store, User, aware

MAX_NAME = 120


def lock_baseline(store: Store, schema: PlanSchema, user: User, name: str, comment: str) -> dict[str, Any]:
    """Lock the master and allocations in force now as the baseline `name` (201); 409 when nothing is approved."""
    require_finance(user, "locks the budget baseline")
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ServiceError(f"name: give the baseline a name of 1 to {MAX_NAME} characters, e.g. 'FY2027 budget'")
    with store.transaction() as session:
        years.require_open(session, schema.calendar.year, "lock a budget baseline")
        version = session.scalar(
            select(func.max(MasterVersion.id)).where(MasterVersion.fiscal_year == schema.calendar.year)
        )
        if version is None:
            raise Conflict("no plan is approved yet: there is no master to lock as the budget")
        if session.scalar(select(Baseline.id).where(Baseline.name == name)) is not None:
            raise Conflict(f"a baseline is already named {name!r}; baselines never change, so give the new one its own")
        revision, _ = current_allocations(session, schema)
        row = Baseline(
            name=name,
            fiscal_year=schema.calendar.year,
            user_id=user.id,
            master_version=version,
            allocation_revision=revision,
            comment=comment.strip(),
        )
        session.add(row)
        session.flush()
        earlier = session.scalar(
            select(func.count())
            .select_from(Baseline)
            .where(Baseline.fiscal_year == row.fiscal_year, Baseline.id < row.id)
        )
        session.add(
            AuditEvent(
                user_id=user.id,
                action="baseline.rebaselined" if earlier else "baseline.locked",
                target=f"baseline:{row.id}",
                detail={"name": name, "master_version": version, "allocation_revision": revision, "comment": comment},
            )
        )
        session.flush()
        return _json(session, row)


def _json(session: Session, row: Baseline) -> dict[str, Any]:
    by = session.get(User, row.user_id)
    return {
        "id": row.id,
        "name": row.name,
        "locked_by": by.name if by else None,
        "locked_at": aware(row.created_at).isoformat(),
        "master_version": row.master_version,
        "allocation_revision": row.allocation_revision,
        "comment": row.comment,
    }


def baselines_json(session: Session, year: int) -> list[dict[str, Any]]:
    """Every baseline of fiscal year `year`, newest first (the first is the budget in force)."""
    query = select(Baseline).where(Baseline.fiscal_year == year).order_by(Baseline.id.desc())
    return [_json(session, b) for b in session.scalars(query)]


def _baseline(session: Session, year: int, baseline_id: int | None) -> Baseline:
    if baseline_id is None:
        query = select(Baseline).where(Baseline.fiscal_year == year).order_by(Baseline.id.desc())
        row = session.scalars(query.limit(1)).first()
        if row is None:
            raise NotFound("no budget baseline is locked yet; finance locks one with POST /api/v1/baselines")
        return row
    row = session.get(Baseline, baseline_id)
    if row is None or row.fiscal_year != year:
        raise NotFound(f"there is no baseline {baseline_id} of FY{year}")
    return row


def budget_json(
    store: Store, schema: PlanSchema, user: User, baseline_id: int | None, by: str | None, period: str | None
) -> dict[str, Any]:
    """The budget (a baseline) against the current plan and actual spend, by the `by` dimensions and period."""
    with store.reading() as session:
        row = _baseline(session, schema.calendar.year, baseline_id)
        baseline = _json(session, row)
        budget_cells = allocations_at(session, schema, row.allocation_revision)
    now = master_model.load(store, schema, user)
    then = master_model.at_version(store, schema, row.master_version, user)
    dims = dimensions(now.schema, by, "region")
    kind = period or "quarter"
    if kind not in ("year", "quarter", "month"):
        raise ServiceError(f"unknown period {kind!r}; use year, quarter or month")
    budget = sums(then, dims, kind, then.months)
    plan = sums(now, dims, kind, now.months)
    actual = sums(now, dims, kind, now.actual_months)
    estimate = sums(now, dims, kind, now.estimate())
    regions = set(now.allocation_regions)
    with_allocation = kind != "month" and "region" in dims and set(dims) <= {"region", "channel"}
    spans = {span.label: span for span in periods(now.schema, kind)}
    order = {label: k for k, label in enumerate(spans)}
    rows = []
    for key in sorted(set(budget) | set(plan), key=lambda k: (tuple(map(str, k[:-1])), order[k[-1]])):
        group, label = dict(zip(dims, key[:-1], strict=True)), key[-1]
        b, p, a, e = budget.get(key) or 0, plan.get(key) or 0, actual.get(key), estimate.get(key)
        item: dict[str, Any] = {**group, "period": label}
        item |= {"budget": money_text(b), "plan": money_text(p), "plan_vs_budget": money_text(p - b)}
        item["estimate"] = None if e is None else money_text(e)
        item["estimate_vs_budget"] = None if e is None else money_text(e - b)
        item["actual"] = None if a is None else money_text(a)
        item["actual_vs_budget"] = None if a is None else money_text(a - b)
        if with_allocation and group["region"] in regions:
            quarters = spans[label].quarters or ()
            for name, cells in (("budget_allocation", budget_cells), ("allocation", now.allocations)):
                found = allocation_of(cells, group["region"], quarters, group.get("channel"))
                item[name] = None if found is None else money_text(found)
        item["cents"] = {"budget": b, "plan": p, "estimate": e, "actual": a}
        rows.append(item)
    return {
        **now.about,
        "baseline": baseline,
        "by": dims,
        "period": kind,
        "currency": schema.config.reporting_currency,
        "actual_spend_by_month": now.actual_months is not None,
        "closed_months": now.closed_months,  # m01 up to the first open month: what the estimate books as actual
        "locked_months": sorted(now.locked),  # every locked month, a closed one or one locked after an open one
        "rows": rows,
    }


BUDGET_COLUMNS = (
    ("budget", "Budget"),
    ("plan", "Plan"),
    ("plan_vs_budget", "Plan vs budget"),
    ("estimate", "Latest estimate"),
    ("estimate_vs_budget", "Estimate vs budget"),
    ("actual", "Actual"),
    ("actual_vs_budget", "Actual vs budget"),
    ("budget_allocation", "Allocation then"),
    ("allocation", "Allocation now"),
)


def budget_table(
    store: Store, schema: PlanSchema, user: User
) -> tuple[dict[str, Any], tuple[list[str], list[str], list[list[Any]]]] | None:
    """(the baseline, (header, kinds, rows)) by region, each quarter then the year; None before any baseline.

    Money in reporting cents, None where there is no figure: the master workbook's Budget sheet and
    the Google push's show the same table.
    """
    with store.reading() as session:
        year = schema.calendar.year
        if session.scalar(select(func.count()).select_from(Baseline).where(Baseline.fiscal_year == year)) == 0:
            return None  # no baseline of this year (another year's is not this one's budget)
    rows: list[list[Any]] = []
    answers = [budget_json(store, schema, user, None, "region", kind) for kind in ("quarter", "year")]
    by_region: dict[str, list[dict[str, Any]]] = {}
    for answer in answers:
        for row in answer["rows"]:
            by_region.setdefault(row["region"], []).append(row)
    for region in sorted(by_region):
        for row in by_region[region]:
            cells: list[Any] = [region, row["period"]]
            for key, _ in BUDGET_COLUMNS:
                value = row.get(key)
                cells.append(None if value is None else _cents(value))
            rows.append(cells)
    header = ["Region", "Period", *(label for _, label in BUDGET_COLUMNS)]
    kinds = ["text", "text", *("money" for _ in BUDGET_COLUMNS)]
    return answers[0]["baseline"], (header, kinds, rows)


def sheets(store: Store, schema: PlanSchema, user: User) -> list[Any]:
    """The master workbook's Budget sheet (by region, each quarter then the year), when a baseline is locked."""
    found = budget_table(store, schema, user)
    if found is None:
        return []
    baseline, (header, kinds, rows) = found
    note = (
        f"The budget: baseline {baseline['id']} {baseline['name']!r}, locked {baseline['locked_at'][:10]} by "
        f"{baseline['locked_by']}, against the current plan, the latest estimate (actual spend of the closed "
        f"months, the plan of the open ones) and actual spend ({schema.config.reporting_currency}; "
        "blank where there is no figure)"
    )
    return [ValuesSheet("Budget", note, [Table("By region", header, kinds, rows)])]


def _cents(text: str) -> int:
    cents = to_cents(text)
    assert cents is not None, text
    return cents
