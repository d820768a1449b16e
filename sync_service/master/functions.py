"""The spreadsheet functions over HTTP: every catalogue function, evaluated for the caller.

Arguments arrive as 2-D arrays (a single value as `[[v]]`), as Office.js and Apps Script
pass ranges; each result is a 2-D array, or an Excel error with a message. The pure
functions run as in the cell; the live ones read the master read model (`sync_service.master`,
cached by the versions it was loaded at, so an approval shows at once), scoped to the caller
by the same rule as the API, with its money at the one grain, through an index of that view
(`sync_service.master.index`) that makes each cell a look-up. A batch's answers are kept by
what they were computed from, so a recalculation asked again is answered without evaluating.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select

from addin import hostvalues as hv
from addin.forecast import closed_months
from addin.hostvalues import ExcelError
from addin.live import LIVE, catalog
from addin.registry import Registry, Shape
from sheet_templates.calendar import MONTH_KEYS, QUARTERS, fiscal_year, period_months
from sheet_templates.money import units
from sheet_templates.schema import PlanSchema
from sync_service.access.auth import require_plan_reader
from sync_service.master import index as master_index
from sync_service.master import model as master
from sync_service.master import performance
from sync_service.master.allocations import allocation_of
from sync_service.master.index import LiveIndex
from sync_service.platform.errors import ServiceError
from sync_service.platform.storage import Baseline, Store, User

MAX_CALLS = 5000
CATALOG: Registry = catalog()


@dataclass
class LiveData:
    """What a batch's live calls read: the caller's index of the master, and what a batch shares."""

    index: LiveIndex
    schema: PlanSchema
    closed: dict[dt.date, int]  # fiscal months closed by a day, worked out once per batch
    load_performance: Callable[[], Any] | None = None  # the performance index, made when a cell first asks
    _performance: Any = None
    load_baseline: Callable[[], LiveIndex | None] | None = None  # the budget baseline's index (None: no baseline)
    _baseline: Any = False

    @property
    def performance(self) -> Any:
        if self._performance is None:
            assert self.load_performance is not None, "a batch with performance calls can load their index"
            self._performance = self.load_performance()
        return self._performance

    @property
    def baseline(self) -> LiveIndex | None:
        if self._baseline is False:
            assert self.load_baseline is not None, "a batch with baseline calls can load its index"
            self._baseline = self.load_baseline()
        return self._baseline


# --- the live functions ------------------------------------------------------------------------------


def _err(code: str, message: str) -> hv.HostValueError:
    return hv.HostValueError(message, code)


def _scope(data: LiveData, scope: Any) -> tuple[str, str]:
    """(region, scope key) for a region or a team the caller may see."""
    name = hv.text(scope, "scope").strip().casefold()
    index = data.index
    team = index.teams.get(name)
    if team is not None:
        return index.team_region[team], master_index.TEAM + team
    region = index.regions.get(name)
    if region is not None:
        if region not in index.readable:  # the same rule as the API: a marketer reads their own regions only
            raise _err("#N/A", f"{region} is not one of your regions; you may see {index.readable_text}")
        return region, master_index.REGION + region
    raise _err("#N/A", f"scope {hv.text(scope, 'scope').strip()!r} is not a region or one of your teams")


def _key(data: LiveData, scope: Any, channel: Any, campaign: Any = "") -> tuple[str, tuple[str, str, str]]:
    """(region, index key) of a scope, a channel and a campaign (name or code; blank: all)."""
    region, where = _scope(data, scope)
    channel = hv.text(channel, "channel").strip().casefold()
    campaign = hv.text(campaign, "campaign").strip().casefold()
    return region, (where, channel, campaign)


@functools.lru_cache(maxsize=64)
def _span(text: str) -> tuple[int, int] | None:
    """The fiscal months a period names, as [first, end) column indexes: every period is a run of months."""
    keys = period_months(text)
    if keys is None:
        return None
    first = MONTH_KEYS.index(keys[0])
    return first, first + len(keys)


def _months(period: Any) -> tuple[int, int]:
    text = hv.text(period, "period", "FY").strip()
    span = _span(text)
    if span is None:
        raise _err("#VALUE!", f"period {text!r}: use FY, Q1..Q4 or m01..m12")
    return span


def ps_planned(data: LiveData, scope: Any, period: Any = "FY", channel: Any = "", campaign: Any = "") -> float:
    _, key = _key(data, scope, channel, campaign)
    return units(data.index.planned_cents(key, *_months(period)))


def ps_actual(data: LiveData, scope: Any, channel: Any = "", campaign: Any = "") -> float:
    _, key = _key(data, scope, channel, campaign)
    return units(data.index.spent_cents(key, master_index.ACTUAL))


def _allocation(data: LiveData, region: str, quarters: tuple[str, ...], channel: Any) -> int:
    channel = hv.text(channel, "channel").strip()
    found = allocation_of(data.index.allocations, region, quarters, channel or None)
    if found is None:
        raise _err("#N/A", f"no allocation is set for {region} {' '.join(quarters)} {channel}".strip())
    return found


def ps_budget(data: LiveData, scope: Any, period: Any = "FY", channel: Any = "") -> float:
    region, _ = _scope(data, scope)
    text = hv.text(period, "period", "FY").strip().upper()
    if text in ("", "FY", "YEAR"):
        quarters = QUARTERS
    elif text in QUARTERS:
        quarters = (text,)
    else:
        raise _err("#VALUE!", f"period {text!r}: allocations are by quarter; use FY or Q1..Q4")
    return units(_allocation(data, region, quarters, channel))


def ps_estimate(data: LiveData, scope: Any, period: Any = "FY", channel: Any = "", campaign: Any = "") -> float:
    _, key = _key(data, scope, channel, campaign)
    found = data.index.estimate_cents(key, *_months(period))
    if found is None:
        raise _err(
            "#N/A",
            "the finance export has no months, so the closed months' spend is known as the year to date only: "
            "ask for FY, or for a period of open months",
        )
    return units(found)


def ps_baseline(data: LiveData, scope: Any, period: Any = "FY", channel: Any = "", campaign: Any = "") -> float:
    _, key = _key(data, scope, channel, campaign)  # the scope as today's master knows it, for the caller
    baseline = data.baseline
    if baseline is None:
        raise _err("#N/A", "no budget baseline is locked yet; finance locks one (POST /api/v1/baselines)")
    return units(baseline.planned_cents(key, *_months(period)))


def ps_committed(data: LiveData, scope: Any, channel: Any = "", campaign: Any = "") -> float:
    _, key = _key(data, scope, channel, campaign)
    return units(data.index.spent_cents(key, master_index.COMMITTED))


def ps_invoiced(data: LiveData, scope: Any, channel: Any = "", campaign: Any = "") -> float:
    _, key = _key(data, scope, channel, campaign)
    return units(data.index.invoiced_cents(key))


def ps_accrued(data: LiveData, scope: Any, month: Any = "", channel: Any = "", campaign: Any = "") -> float:
    _, key = _key(data, scope, channel, campaign)
    text = hv.text(month, "month", "").strip().lower()
    if not text:
        j = data.index.accrual_month
    elif text in MONTH_KEYS:
        j = MONTH_KEYS.index(text)
    else:
        raise _err(
            "#VALUE!", f"month {text!r}: use a fiscal month m01..m12 (or leave it blank for the month being closed)"
        )
    return units(data.index.accrued_cents(key, j))


def ps_live_variance(data: LiveData, scope: Any, as_of: Any = None, channel: Any = "", campaign: Any = "") -> float:
    _, key = _key(data, scope, channel, campaign)
    day = hv.date(as_of, "as_of", dt.date.today())
    closed = data.closed.get(day)
    if closed is None:
        closed = data.closed[day] = closed_months(data.schema.calendar, day)
    index = data.index
    return units(index.planned_cents(key, 0, closed) - index.spent_cents(key, master_index.ACTUAL))


def ps_remaining_live(data: LiveData, scope: Any, channel: Any = "") -> float:
    region, key = _key(data, scope, channel)
    index = data.index
    spent = index.spent_cents(key, master_index.COMMITTED) + index.spent_cents(key, master_index.ACTUAL)
    return units(_allocation(data, region, QUARTERS, channel) - spent)


def _measure(text: Any) -> Any:
    name = hv.text(text, "measure").strip().casefold()
    found = performance.BY_NAME.get(name)
    if found is None:
        raise _err("#VALUE!", f"measure {name!r}: use {', '.join(m.name for m in performance.MEASURES)}")
    return found


def _performance_figure(data: LiveData, measure: Any, scope: Any, period: Any, channel: Any, campaign: Any) -> Any:
    which = _measure(measure)
    region, key = _key(data, scope, channel, campaign)
    index = data.performance
    try:
        span = performance.period_named(index.view, hv.text(period, "period", "FY"))
    except ServiceError as exc:
        raise _err("#VALUE!", str(exc)) from None
    whole = key[0].startswith(master_index.REGION) and not key[1] and not key[2]
    if whole:
        target_scope = performance.TargetScope(region, whole_region=index.view.visible is None)
    else:
        target_scope = performance.TargetScope(
            None, reason="targets are per region: ask for the region, without a channel or campaign"
        )
    return which, index.figure(key, span, which, target_scope)


def _shown(measure: Any, value: Any, fig: Any) -> float:
    if value is None:
        raise _err("#N/A", "; ".join(fig.notes) or "no data")
    return performance.units(measure, value)


def ps_result(
    data: LiveData, measure: Any, scope: Any, period: Any = "FY", channel: Any = "", campaign: Any = ""
) -> float:
    which, fig = _performance_figure(data, measure, scope, period, channel, campaign)
    return _shown(which, fig.actual, fig)


def ps_expected(
    data: LiveData, measure: Any, scope: Any, period: Any = "FY", channel: Any = "", campaign: Any = ""
) -> float:
    which, fig = _performance_figure(data, measure, scope, period, channel, campaign)
    return _shown(which, fig.expected, fig)


def ps_target(data: LiveData, measure: Any, scope: Any, period: Any = "FY") -> float:
    which, fig = _performance_figure(data, measure, scope, period, "", "")
    return _shown(which, fig.target, fig)


LIVE_IMPLS: dict[str, Callable[..., Any]] = {
    "PS_RESULT": ps_result,
    "PS_EXPECTED": ps_expected,
    "PS_TARGET": ps_target,
    "PS_BUDGET": ps_budget,
    "PS_PLANNED": ps_planned,
    "PS_ESTIMATE": ps_estimate,
    "PS_BASELINE": ps_baseline,
    "PS_ACTUAL": ps_actual,
    "PS_COMMITTED": ps_committed,
    "PS_INVOICED": ps_invoiced,
    "PS_ACCRUED": ps_accrued,
    "PS_LIVE_VARIANCE": ps_live_variance,
    "PS_REMAINING_LIVE": ps_remaining_live,
}
assert set(LIVE_IMPLS) == {f.name for f in LIVE}, "every declared live function has an implementation"


# --- evaluation --------------------------------------------------------------------------------------


ANSWERS_KEPT = 64  # batches of answers a process keeps when there is no shared cache
_ANSWERS: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
_ANSWERS_LOCK = threading.Lock()


def evaluate(
    store: Store, schema: PlanSchema, user: User, calls: list[Any], fingerprint: bytes | None = None
) -> list[dict[str, Any]]:
    """Each call ({"name", "args"}) as {"result": 2-D array} or {"error": {"code", "message"}}, in order.

    A live call is about the fiscal year of its `year` argument, else `schema`'s (the request's
    `?year=`, which the add-ins set from the workbook's template year, else the year the
    organisation file runs): one batch may read several years, each from its own master.

    A batch with live calls is answered from the answer cache when the same calls were answered for
    the same view of the same masters today: a workbook recalculated again, or by a colleague with the
    same scope, costs a look-up. The key is each year's master key (its newest version, allocation
    revision, import and locks: an approval makes a new one, so nothing stale is served), the caller's
    scope, today's date (the default as-of day), the schema and `fingerprint` (the calls as sent; by
    default their canonical JSON). The cache is Redis's, shared by every worker, when the service has one.
    """
    require_plan_reader(user)
    live = [call for call in calls if _is_live(call)]
    if not live:
        return _evaluate(calls, None)
    years = sorted({_year_asked(call, schema) for call in live} - {None}) or [schema.calendar.year]
    loaded = {year: _year_data(store, schema.for_year(year), user) for year in years}
    digest = hashlib.sha256(fingerprint if fingerprint is not None else _canonical(calls)).hexdigest()
    masters = tuple((year, derived.key) for year, (derived, _) in loaded.items())
    scope = loaded[years[0]][0].scope
    key = repr(("live-answers", _schema_digest(schema), masters, scope, dt.date.today(), digest))
    found = _cached(store, key)
    if found is not None:
        return found

    def data_of(year: Any) -> LiveData:
        return loaded[_year_of(year, schema)][1]

    out = _evaluate(calls, data_of)
    _keep(store, key, out)
    return out


def _year_of(value: Any, schema: PlanSchema) -> int:
    """The fiscal year a call's `year` argument names (blank: `schema`'s); a cell's error for any other."""
    try:
        year = fiscal_year(value)
    except ValueError as exc:
        raise _err("#VALUE!", str(exc)) from None
    if year is None:
        return schema.calendar.year
    if year not in schema.config.years:
        described = ", ".join(f"FY{y}" for y in schema.config.years)
        raise _err(
            "#N/A",
            f"FY{year} is not described in the organisation file (it describes {described}); "
            f"finance adds a [years.{year}] table to plan it",
        )
    return year


def _year_asked(call: dict[str, Any], schema: PlanSchema) -> int | None:
    """The fiscal year a live call reads, when its arguments name one the service describes (else None)."""
    function = CATALOG.functions.get(call["name"].upper())
    args = call.get("args")
    if function is None or not isinstance(args, list):
        return schema.calendar.year
    position = len(function.args) - 1  # every live function takes `year` last
    try:
        value = _unwrap(args[position], Shape.SCALAR) if len(args) > position else None
        return _year_of(value, schema)
    except hv.HostValueError:
        return None  # the call answers its own error when it is evaluated


def _year_data(store: Store, schema: PlanSchema, user: User) -> tuple[Any, LiveData]:
    """(the master's key and scope, the live data) of `schema`'s fiscal year as `user` sees it."""
    derived = master.derived(store, schema, user, "live-index", master_index.build)

    def load_performance() -> Any:
        return master.derived(store, schema, user, "performance-index", performance.build_index).value

    def load_baseline() -> LiveIndex | None:
        with store.reading() as session:
            version = session.scalar(
                select(Baseline.master_version)
                .where(Baseline.fiscal_year == schema.calendar.year)
                .order_by(Baseline.id.desc())
                .limit(1)
            )
        if version is None:
            return None
        return master_index.build(master.at_version(store, schema, version, user))

    return derived, LiveData(derived.value, schema, {}, load_performance, load_baseline=load_baseline)


def _evaluate(calls: list[Any], data_of: Callable[[Any], LiveData] | None) -> list[dict[str, Any]]:
    out = []
    for call in calls:
        try:
            name, args = _parse(call)
            function = CATALOG.functions.get(name)
            if function is None:
                raise _err("#NAME?", f"there is no function {call['name']!r}")
            values = [_unwrap(a, arg.shape) for a, arg in zip(args, function.args, strict=False)]
            if len(args) > len(function.args):
                raise _err("#VALUE!", f"{name} takes at most {len(function.args)} arguments")
            if name in LIVE_IMPLS:
                assert data_of is not None, "a batch with live calls has the live data"
                filled = values + [a.default for a in function.args[len(values) :]]
                filled = [
                    a.default if v is None and a.optional else v for a, v in zip(function.args, filled, strict=True)
                ]
                *given, year = filled  # every live function takes `year` last
                result = LIVE_IMPLS[name](data_of(year), *given)
            else:
                result = function.call(*values)
            out.append(_answer(result))
        except hv.HostValueError as exc:
            out.append(_answer(exc.as_error()))
    return out


def _is_live(call: Any) -> bool:
    return isinstance(call, dict) and isinstance(call.get("name"), str) and call["name"].upper() in LIVE_IMPLS


def _canonical(calls: list[Any]) -> bytes:
    return json.dumps(calls, sort_keys=True, separators=(",", ":"), default=str).encode()


_SCHEMA_DIGESTS: dict[int, tuple[PlanSchema, str]] = {}


def _schema_digest(schema: PlanSchema) -> str:
    """The schema's version and configuration as a short digest, worked out once per schema object."""
    kept = _SCHEMA_DIGESTS.get(id(schema))
    if kept is None or kept[0] is not schema:
        kept = _SCHEMA_DIGESTS[id(schema)] = (
            schema,
            hashlib.sha256(repr((schema.version, schema.config)).encode()).hexdigest(),
        )
    return kept[1]


def _cached(store: Store, key: str) -> list[dict[str, Any]] | None:
    if store.shared is not None:
        return store.shared.get(store.shared.name(key))
    with _ANSWERS_LOCK:
        found = _ANSWERS.get(key)
        if found is not None:
            _ANSWERS.move_to_end(key)
        return found


def _keep(store: Store, key: str, answers: list[dict[str, Any]]) -> None:
    if store.shared is not None:
        store.shared.put(store.shared.name(key), answers)
        return
    with _ANSWERS_LOCK:
        _ANSWERS[key] = answers
        while len(_ANSWERS) > ANSWERS_KEPT:
            _ANSWERS.popitem(last=False)


def _parse(call: Any) -> tuple[str, list[Any]]:
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise _err("#VALUE!", 'each call is {"name": "PS_...", "args": [[[...]], ...]}')
    args = call.get("args", [])
    if not isinstance(args, list):
        raise _err("#VALUE!", "args must be a list of 2-D arrays")
    return call["name"].upper(), args


def _unwrap(value: Any, shape: Shape) -> Any:
    """A 2-D argument as the function takes it: a range stays 2-D, a single value is unwrapped."""
    if shape is Shape.SCALAR and isinstance(value, list):
        flat = [v for row in value for v in (row if isinstance(row, list) else [row])]
        if len(flat) != 1:
            raise _err("#VALUE!", "this argument takes a single value, not a range")
        return _blank(flat[0])
    if isinstance(value, list):
        return [[_blank(v) for v in (row if isinstance(row, list) else [row])] for row in value]
    return _blank(value)


def _blank(value: Any) -> Any:
    return None if value == "" else value


def _answer(result: Any) -> dict[str, Any]:
    if isinstance(result, ExcelError):
        return {"error": {"code": result.code, "message": result.message}}
    grid = result if isinstance(result, list) else [[result]]
    return {"result": [[_json(v) for v in (row if isinstance(row, list) else [row])] for row in grid]}


def _json(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
