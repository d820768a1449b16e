"""The master read model: "the master at version N", loaded once, cached by what it was loaded from.

A `Master` holds each team's approved lines (with the finance system's imported actual spend
applied, when there is an import), the allocations in force, the locked months and the money of
every line in reporting cents at the one grain (`addin.reporting`). Every view is a projection
of it: the API's master, rollup, variance and allocations, the master workbook, team templates,
the dashboard, the Google push and the live functions. None of them reads the tables itself.

Its inputs are immutable rows (master versions, allocation revisions, actual imports, locks),
so a loaded master is keyed by their newest ids and never goes stale: an approval, a new
allocation revision or an import makes a new key, and the next read loads the new master.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sheet_templates.schema import PlanSchema
from sync_service.access.auth import visible_regions, visible_teams
from sync_service.master import parts
from sync_service.master.actuals import actual_amounts, actual_months
from sync_service.master.allocations import current_allocations
from sync_service.master.outcomes import in_force
from sync_service.master.spend import (
    LineIndex,
    book,
    closed_accruals,
    invoiced_side,
    invoices_in_force,
    over_plan,
    purchase_orders_in_force,
)
from sync_service.platform.exports import collector_paused
from sync_service.platform.storage import (
    AccrualClose,
    ActualImport,
    AllocationRevision,
    Baseline,
    MasterVersion,
    OutcomeImport,
    PeriodLock,
    SpendImport,
    Store,
    SubmissionLine,
    Team,
    User,
)


@dataclass(frozen=True)
class HeldPlan:
    """A team's plan in the master: which submission, since which version, approved when."""

    team: str
    region: str
    submission: int
    version: int
    approved_at: str


@dataclass(frozen=True)
class Master:
    """The master at one version, or the part of it one user may see (`scoped`)."""

    schema: PlanSchema
    version: int
    held: tuple[HeldPlan, ...]
    lines: parts.Lines  # stored values (cents, ISO dates) with team_id; actual and committed in force laid over
    table: pd.DataFrame  # the same lines as a typed plan table (cents), with team_id and _row
    months: np.ndarray  # planned spend per line and fiscal month, reporting cents (lines x 12)
    committed: np.ndarray  # per line, reporting cents
    actual: np.ndarray  # per line, reporting cents (imported when there is an import)
    allocation_revision: int
    allocation_info: Mapping[str, Any]  # source, set_by, set_at
    allocations: Mapping[tuple[str, str, str], int]  # (region, quarter, channel or "*") -> reporting cents
    actuals_import: int | None
    locked: frozenset[str]
    actual_months: np.ndarray | None  # per line and fiscal month, reporting cents; None: the import has no months
    outcomes: np.ndarray  # int64, lines x METRICS x 12: results in force (counts in hundredths, money in cents)
    outcome_cover: np.ndarray  # bool, METRICS x 12: which results some import in force covers
    outcomes_import: int | None  # the newest results import (None: none yet)
    regions: Mapping[str, str]  # team id -> region, every team
    # (team, line ID) -> {month: cents in the line's currency}: the import's spend by month ({} without months)
    actual_by_month: Mapping[tuple[str, str], Mapping[str, int]] = field(default_factory=dict)
    # Spend control (`sync_service.spend`): per line in reporting cents, and the POs themselves.
    po_tracked: bool = False  # some PO was imported: `committed` is the open PO balance
    po_amount: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # the POs' amounts per line
    invoiced: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # per line
    accrued: np.ndarray = field(default_factory=lambda: np.zeros((0, 12), dtype=np.int64))  # per line x month end
    purchase_orders: tuple[dict[str, Any], ...] = ()  # each PO in force, its match and figures (PO currency)
    unmatched_invoices: tuple[dict[str, Any], ...] = ()  # invoices whose PO number no PO in force has
    over_plan: tuple[dict[str, Any], ...] = ()  # lines whose POs add up to more than their planned spend
    accrual_closed: tuple[str, ...] = ()  # the fiscal months whose accrual finance closed
    spend_import: int | None = None  # the newest PO or invoice import
    visible: frozenset[str] | None = None  # teams in this view; None: every team (finance)
    allocation_regions: tuple[str, ...] = field(default=())  # regions whose allocations this view shows
    # What was computed from this master by scope (the live functions' index): never part of a view.
    derived: OrderedDict[Any, Any] = field(default_factory=OrderedDict, init=False, compare=False, repr=False)

    @property
    def about(self) -> dict[str, Any]:
        """What every answer says it was computed from."""
        return {
            "master_version": self.version,
            "actuals_import": self.actuals_import,
            "allocation_revision": self.allocation_revision,
            "outcomes_import": self.outcomes_import,
            "spend_import": self.spend_import,
        }

    def scoped(self, user: User) -> Master:
        """The part of the master `user` may see: finance all of it, a marketer their teams and regions."""
        teams = visible_teams(user)
        regions = visible_regions(user, self.schema.config.regions)
        if teams is None:
            return dataclasses.replace(self, allocation_regions=regions)
        keep = self.table["team_id"].isin(list(teams)).to_numpy() if len(self.table) else np.zeros(0, dtype=bool)
        kept = np.flatnonzero(keep)
        return dataclasses.replace(
            self,
            held=tuple(h for h in self.held if h.team in teams),
            lines=self.lines.take(kept),
            table=self.table[keep].reset_index(drop=True),
            months=self.months[keep],
            committed=self.committed[keep],
            actual=self.actual[keep],
            actual_months=None if self.actual_months is None else self.actual_months[keep],
            outcomes=self.outcomes[keep],
            actual_by_month={k: v for k, v in self.actual_by_month.items() if k[0] in teams},
            po_amount=self.po_amount[keep],
            invoiced=self.invoiced[keep],
            accrued=self.accrued[keep],
            purchase_orders=tuple(p for p in self.purchase_orders if p["team_id"] in teams),
            unmatched_invoices=(),
            over_plan=tuple(o for o in self.over_plan if o["team_id"] in teams),
            allocations={k: v for k, v in self.allocations.items() if k[0] in regions},
            visible=teams,
            allocation_regions=regions,
        )

    @property
    def closed_months(self) -> list[str]:
        """The closed months: m01 up to the first month not locked (what a reforecast shows as booked)."""
        return closed_prefix(self.schema, self.locked)

    def estimate(self) -> Estimate:
        """The latest estimate: actual spend in the closed months (`closed_months`), the plan in the open ones."""
        closed = tuple(range(len(self.closed_months)))
        months = self.months.copy()
        if closed:
            months[:, list(closed)] = self.actual_months[:, list(closed)] if self.actual_months is not None else 0
        return Estimate(months, closed, self.actual_months is not None, self.actual)

    def team_lines(self, team: str) -> list[dict[str, Any]]:
        """A team's approved lines in the master, in plan order."""
        if not len(self.table):
            return []
        return list(self.lines.take(np.flatnonzero(self.table["team_id"].to_numpy() == team)))

    def held_by(self, team: str) -> int | None:
        """The submission the master holds for `team` (None: no approved plan)."""
        return next((h.submission for h in self.held if h.team == team), None)


def closed_prefix(schema: PlanSchema, locked: frozenset[str] | set[str]) -> list[str]:
    """m01 up to the first fiscal month not locked: the months whose spend is booked, not planned.

    A locked month after an open one (finance locked m03 but not m02) is not closed for the
    estimate: spend is booked month after month, so the estimate's closed months are a prefix.
    """
    out = []
    for column in schema.month_columns:
        if column.name not in locked:
            break
        out.append(column.name)
    return out


@dataclass(frozen=True)
class Estimate:
    """The latest estimate of a view's lines: what the money will have been by the year's end, as known now.

    A closed month's estimate is the actual spend booked in it, an open month's the current
    (approved) plan: the forecast of what is left. When the finance export has no months, the
    closed months' spend is known only as the year to date (`actual`), so only a period that
    covers every closed month, the year, has an estimate, and one that covers some has none.
    """

    months: np.ndarray  # int64, lines x 12: actuals in closed months (0 when unknown by month), plan in open ones
    closed: tuple[int, ...]  # the closed months' indexes
    by_month: bool  # whether the closed months' actuals are known month by month
    actual: np.ndarray  # per line, the actual spend to date (reporting cents)

    def per_line(self, months: tuple[int, ...] | list[int]) -> np.ndarray | None:
        """Each line's estimate over `months` (indexes); None when it needs a closed month's unknown actual."""
        span = list(months)
        inside = set(span) & set(self.closed)
        total = self.months[:, span].sum(axis=1)
        if self.by_month or not inside:
            return total
        if inside == set(self.closed) and len(span) == self.months.shape[1]:  # the year: to date, then the plan
            return total + self.actual
        return None


class _Cache(parts.Cache):
    """A few loaded masters by the ids they were loaded at (immutable inputs: never stale)."""

    def clear(self) -> None:
        """Forget every master and every part this process keeps (as a fresh process would start)."""
        super().clear()
        parts.PARTS.clear()
        parts.INPUTS.clear()


CACHE = _Cache(8)


def current_submissions(session: Session, year: int, version: int | None = None) -> dict[str, int]:
    """Team -> the submission fiscal year `year`'s master holds for it at `version` (default: now)."""
    newest = select(func.max(MasterVersion.id)).where(MasterVersion.fiscal_year == year).group_by(MasterVersion.team_id)
    if version is not None:
        newest = newest.where(MasterVersion.id <= version)
    rows = session.execute(
        select(MasterVersion.team_id, MasterVersion.submission_id).where(MasterVersion.id.in_(newest))
    )
    return {team: submission for team, submission in rows}


def master_lines(
    session: Session, held: Mapping[str, int], schema: PlanSchema | None = None, shared: Any = None
) -> list[dict[str, Any]]:
    """The stored lines of the submissions `held` ({team: submission}), each with its team_id and sheet row.

    In submission order. With the `schema`, from the team parts the read model keeps (no read of
    the lines an earlier answer already read); the dicts are shared: read them, never change them.
    """
    if not held:
        return []
    if schema is not None:
        ordered = sorted(held.items(), key=lambda item: item[1])
        return parts.chained(parts.team_parts(session, schema, ordered, shared))
    team_of = {sid: tid for tid, sid in held.items()}
    rows = session.execute(
        select(SubmissionLine.submission_id, SubmissionLine.row, SubmissionLine.values)
        .where(SubmissionLine.submission_id.in_(list(team_of)))
        .order_by(SubmissionLine.submission_id, SubmissionLine.position)
    )
    return [{"team_id": team_of[sid], "_row": row, **values} for sid, row, values in rows]


def typed_lines(lines: list[dict[str, Any]], schema: PlanSchema) -> pd.DataFrame:
    """Stored lines as the plan table the reader makes: cents as int64, dates as datetime64, blanks as ''."""
    return pd.DataFrame(parts.typed_columns(lines, schema))


def _newest_ids(session: Session, year: int) -> tuple[int, ...]:
    """Fiscal year `year`'s newest master version, allocation revision, imports and baseline (0: none yet).

    The imports are the year's actuals and results, and the PO or invoice imports (a PO may serve
    several years); then the number of the year's closed accrual months. In one query. The baseline
    is part of it because live cells show the budget baseline too.
    """

    def newest(model: Any) -> Any:
        return select(func.max(model.id)).where(model.fiscal_year == year).scalar_subquery()

    row = session.execute(
        select(
            newest(MasterVersion),
            newest(AllocationRevision),
            newest(ActualImport),
            newest(OutcomeImport),
            newest(Baseline),
            select(func.max(SpendImport.id)).scalar_subquery(),
            select(func.count(AccrualClose.month)).where(AccrualClose.fiscal_year == year).scalar_subquery(),
        )
    ).one()
    return tuple(v or 0 for v in row)


def _key(session: Session, store: Store, year: int) -> tuple[Any, ...]:
    locks = session.scalars(select(PeriodLock.month).where(PeriodLock.fiscal_year == year))
    return (store.url, year, *_newest_ids(session, year), tuple(sorted(locks)))


def current_key(store: Store, year: int) -> dict[str, int]:
    """What `year`'s live answers are computed from, as ids: a cheap check hosts poll to know when to ask again."""
    with store.reading() as session:
        master_version, allocation_revision, actuals_import, outcomes_import, baseline, spend, closes = _newest_ids(
            session, year
        )
    return {
        "master_version": master_version,
        "allocation_revision": allocation_revision,
        "actuals_import": actuals_import,
        "outcomes_import": outcomes_import,
        "baseline": baseline,
        "spend_import": spend,
        "accruals_closed": closes,
    }


def load(store: Store, schema: PlanSchema, user: User | None = None) -> Master:
    """The current master (scoped to `user` when given), from the cache when its inputs have not changed.

    This process's few masters first, then the cache every worker shares (`store.shared`, on Redis
    when configured), then the database.
    """
    with store.reading() as session:
        whole = _current(session, store, schema)
        if user is None:
            return whole
        return whole.scoped(session.merge(user))


T = TypeVar("T")
DERIVED_PER_MASTER = 64  # scopes kept per master: a few hundred marketers' indexes stay small
_DERIVED_LOCK = threading.Lock()


@dataclass(frozen=True)
class Derived(Generic[T]):
    """A value made from one user's view of one master, with what it was made from."""

    key: tuple[Any, ...]  # the master's: newest master version, allocation revision, import, locks
    scope: tuple[Any, ...]  # the view's: (name, teams or None for all, readable regions)
    value: T


def derived(store: Store, schema: PlanSchema, user: User, name: str, make: Callable[[Master], T]) -> Derived[T]:
    """`make(user's view of the current master)`, made once per master and scope.

    The key and scope say what the value was computed from, so a cache of answers built on the
    value can be keyed by them too. The value is kept beside the master in this process, so it
    goes when the master does.
    """
    with store.reading() as session:
        key = _key(session, store, schema.calendar.year)
        whole = CACHE.through(key, lambda: _loaded(session, store, schema, key))
        user = session.merge(user)
        scope = (name, visible_teams(user), visible_regions(user, schema.config.regions))
        with _DERIVED_LOCK:
            if scope in whole.derived:
                whole.derived.move_to_end(scope)
                return Derived(key, scope, whole.derived[scope])
        value = make(whole.scoped(user))
    with _DERIVED_LOCK:
        whole.derived[scope] = value
        while len(whole.derived) > DERIVED_PER_MASTER:
            whole.derived.popitem(last=False)
    return Derived(key, scope, value)


def at_version(store: Store, schema: PlanSchema, version: int, user: User) -> Master:
    """`user`'s view of the master as it was at `version` (the plans approved then), read as the current one is.

    Actuals, results and allocations are today's (a baseline keeps its own allocation revision).
    Cached like the current master, by the ids it was loaded from.
    """
    with store.reading() as session:
        key = (store.url, "at", schema.calendar.year, version, *_newest_ids(session, schema.calendar.year)[1:])
        whole = CACHE.through(key, lambda: _load(session, schema, version, shared=store.shared))
        return whole.scoped(session.merge(user))


def _current(session: Session, store: Store, schema: PlanSchema) -> Master:
    key = _key(session, store, schema.calendar.year)
    return CACHE.through(key, lambda: _loaded(session, store, schema, key))


def _loaded(session: Session, store: Store, schema: PlanSchema, key: tuple[Any, ...]) -> Master:
    """The master at `key`, composed of its parts (each from this process, every worker's shared cache, or built)."""
    return _load(session, schema, version=key[2], shared=store.shared)


@collector_paused()  # tens of thousands of lines, POs and invoices read as rows: no cycles to look for
def _load(session: Session, schema: PlanSchema, version: int, shared: Any = None) -> Master:
    """The master at `version`, composed: each team's part and each import's part, built only where new."""
    year = schema.calendar.year
    where = str(session.get_bind().url)
    regions = {t.id: t.region for t in session.scalars(select(Team))}
    newest = (
        select(func.max(MasterVersion.id).label("version"))
        .where(MasterVersion.id <= version, MasterVersion.fiscal_year == year)
        .group_by(MasterVersion.team_id)
        .subquery()
    )
    rows = session.scalars(
        select(MasterVersion).join(newest, MasterVersion.id == newest.c.version).order_by(MasterVersion.team_id)
    )
    held = tuple(
        HeldPlan(r.team_id, regions.get(r.team_id, ""), r.submission_id, r.id, r.created_at.isoformat()) for r in rows
    )
    # The lines in submission order (the order they were approved in), as the master has always listed them.
    in_order = sorted((h.submission, h.team) for h in held)
    teams = parts.team_parts(session, schema, [(team, sid) for sid, team in in_order], shared)
    stored = parts.chained(teams)
    table = parts.composed_table(teams, schema)
    num = parts.concatenated(teams, lambda p: p.num, np.zeros(0, dtype=np.int64))
    den = parts.concatenated(teams, lambda p: p.den, np.zeros(0, dtype=np.int64))
    currencies = table["currency"].to_numpy(dtype=object)
    month_names = tuple(c.name for c in schema.month_columns)
    over: dict[str, np.ndarray] = {}  # what the read model lays over the stored lines

    actual_import = session.scalar(select(func.max(ActualImport.id)).where(ActualImport.fiscal_year == year))
    by_month: Mapping[tuple[str, str], Mapping[str, int]] = {}
    actual_grid = None
    if actual_import is not None:  # the finance system's year to date replaces what the plans typed
        actuals, by_month = parts.INPUTS.through(
            (where, "actuals", actual_import),
            lambda: (actual_amounts(session, actual_import), actual_months(session, actual_import)),
        )

        def aligned(part: parts.TeamPart) -> tuple[np.ndarray, np.ndarray | None]:
            ids = part.line_ids()
            line = np.array([actuals.get((part.team, i), 0) for i in ids], dtype=np.int64)
            grid = None
            if by_month:
                grid = np.zeros((len(ids), len(month_names)), dtype=np.int64)
                for k, i in enumerate(ids):
                    found = by_month.get((part.team, i))
                    if found:
                        grid[k] = [found.get(m, 0) for m in month_names]
                grid = _actual_months(grid, part.num, part.den)
            return line, grid

        done = [p.align("actuals", (where, actual_import), aligned) for p in teams]
        over["actual"] = np.concatenate([d[0] for d in done]) if done else np.zeros(0, dtype=np.int64)
        table["actual"] = over["actual"]
        if by_month:
            actual_grid = (
                np.concatenate([d[1] for d in done]) if done else np.zeros((0, len(month_names)), dtype=np.int64)
            )

    spend_import = session.scalar(select(func.max(SpendImport.id)))
    orders, invoices, side = parts.INPUTS.through(
        (where, "spend", spend_import, schema.version, repr(schema.config)),
        lambda: _spend_inputs(session, schema),
    )
    index = LineIndex(
        table["team_id"].to_numpy(dtype=object),
        table["line_id"].to_numpy(dtype=object),
        table["campaign_code"].to_numpy(dtype=object),
        currencies,
        keys=(
            parts.concatenated(teams, lambda p: p.id_keys, np.zeros(0, dtype=object)),
            parts.concatenated(teams, lambda p: p.code_keys, np.zeros(0, dtype=object)),
        ),
    )
    ledger = book(schema, stored, orders, invoices, closed_accruals(session, year), index=index, po_side=side)
    if ledger.tracked:  # the open PO balance replaces the committed spend the plans typed
        over["committed"] = ledger.committed
        table["committed"] = ledger.committed

    newest_results = session.scalar(select(func.max(OutcomeImport.id)).where(OutcomeImport.fiscal_year == year))
    results = parts.INPUTS.through(
        (where, "outcomes", year, newest_results), lambda: in_force(session, year, month_names)
    )
    shape = results.cover.shape

    def results_of(part: parts.TeamPart) -> np.ndarray:
        grid = np.zeros((len(part.lines), *shape), dtype=np.int64)
        for k, line_id in enumerate(part.line_ids()):
            found = results.amounts.get((part.team, line_id))
            if found is not None:
                grid[k] = found
        return grid

    outcomes = (
        np.concatenate([p.align("outcomes", (where, year, newest_results), results_of) for p in teams])
        if teams and results.amounts
        else np.zeros((len(stored), *shape), dtype=np.int64)
    )
    revision, cells = current_allocations(session, schema)
    info: dict[str, Any] = {"source": "organisation configuration", "set_by": None, "set_at": None}
    if revision:
        row = session.get(AllocationRevision, revision)
        by = session.get(User, row.user_id)
        info = {"source": "api", "set_by": by.name if by else None, "set_at": row.created_at.isoformat()}
    planned = parts.concatenated(teams, lambda p: p.planned, np.zeros(0, dtype=np.int64))
    return Master(
        schema=schema,
        version=version,
        held=held,
        lines=parts.Lines(stored, over),
        table=table,
        months=parts.concatenated(teams, lambda p: p.months, np.zeros((0, len(month_names)), dtype=np.int64)),
        committed=parts.to_reporting(table["committed"].to_numpy(dtype=np.int64), num, den),
        actual=parts.to_reporting(table["actual"].to_numpy(dtype=np.int64), num, den),
        actual_months=actual_grid,
        outcomes=outcomes,
        outcome_cover=results.cover,
        outcomes_import=results.newest,
        allocation_revision=revision,
        allocation_info=info,
        allocations=cells,
        actuals_import=actual_import,
        locked=frozenset(session.scalars(select(PeriodLock.month).where(PeriodLock.fiscal_year == year))),
        regions=regions,
        allocation_regions=tuple(schema.config.regions),
        actual_by_month=by_month,
        po_tracked=ledger.tracked,
        po_amount=parts.to_reporting(ledger.po_amount, num, den),
        invoiced=parts.to_reporting(ledger.invoiced, num, den),
        accrued=parts.to_reporting(ledger.accrued, num, den),
        purchase_orders=ledger.orders,
        unmatched_invoices=ledger.unmatched_invoices,
        over_plan=tuple(over_plan(stored, schema, ledger.po_amount, planned)),
        accrual_closed=ledger.closed_months,
        spend_import=spend_import,
    )


def _spend_inputs(session: Session, schema: PlanSchema) -> tuple[Any, Any, Any]:
    """The import part of spend control: the POs and invoices in force, and what they give each PO."""
    orders, invoices = purchase_orders_in_force(session), invoices_in_force(session)
    return orders, invoices, invoiced_side(schema, orders, invoices)


def _actual_months(grid: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Actual spend per line and fiscal month in reporting cents, adding up to each line's converted total exactly.

    `grid` is the spend booked per line and month in the line's currency. A line's months are
    converted cumulatively (the spend to the end of each month, at the plan rate, rounded once)
    and each month is the difference: so the months of a line sum to the line's actual spend as
    every other view converts it, and each month is within a cent of its own conversion.
    """
    converted = parts.to_reporting(np.cumsum(grid, axis=1), num, den)
    return np.diff(converted, axis=1, prepend=0) if len(grid) else grid
