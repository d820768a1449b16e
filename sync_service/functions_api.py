"""The spreadsheet functions over HTTP: every catalogue function, evaluated for the caller.

Arguments arrive as 2-D arrays (a single value as `[[v]]`), as Office.js and Apps Script
pass ranges; each result is a 2-D array, or an Excel error with a message. The pure
functions run as in the cell; the live ones read the current master, allocations and
actuals, which are loaded once per (master version, actuals import, allocation revision,
caller's teams) and kept in a small cache: an approval changes the version, so it shows at
once, and a sheet of repeated cells costs one load.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from addin import hostvalues as hv
from addin.forecast import closed_months
from addin.fx import convert_cents
from addin.hostvalues import ExcelError
from addin.live import LIVE, catalog
from addin.registry import Registry, Shape
from sheet_templates.schema import PlanSchema
from sync_service import budget
from sync_service.auth import require_plan_reader
from sync_service.storage import ActualImport, AllocationRevision, MasterVersion, Role, Store, Team, User

QUARTERS = ("Q1", "Q2", "Q3", "Q4")
MAX_CALLS = 5000
CATALOG: Registry = catalog()


@dataclass(frozen=True)
class LiveData:
    """The caller's view of the master, in reporting-currency cents, ready to sum."""

    lines: pd.DataFrame  # team_id, region, channel, campaign, campaign_code, m01..m12, committed, actual
    allocations: dict[tuple[str, str, str], int]
    teams: dict[str, str]  # team id -> region, of the teams the caller may see
    schema: PlanSchema


class _Cache:
    """A few LiveData by the versions they were loaded at: immutable inputs, so never stale."""

    def __init__(self, size: int = 32) -> None:
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: tuple[Any, ...], load: Callable[[], LiveData]) -> LiveData:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = load()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


CACHE = _Cache()


def live_data(store: Store, schema: PlanSchema, user: User) -> LiveData:
    with store.reading() as session:
        user = session.merge(user)
        key = (
            store.url,
            session.scalar(select(func.max(MasterVersion.id))) or 0,
            session.scalar(select(func.max(ActualImport.id))) or 0,
            session.scalar(select(func.max(AllocationRevision.id))) or 0,
            user.role,
            tuple(sorted(t.id for t in user.teams)) if user.role == Role.MARKETER else (),
        )

        def load() -> LiveData:
            table, _ = budget.master_frame(session, schema, user)
            _, cells = budget.current_allocations(session, schema)
            all_teams = {t.id: t.region for t in session.scalars(select(Team))}
            visible = all_teams if user.role == Role.FINANCE else {t.id: t.region for t in user.teams}
            return LiveData(_reporting(table, schema), cells, visible, schema)

        return CACHE.get(key, load)


def _reporting(table: pd.DataFrame, schema: PlanSchema) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "team_id": table["team_id"],
            "region": table["region"],
            "channel": table["channel"].str.casefold(),
            "campaign": table["campaign"].astype(str).str.casefold(),
            "campaign_code": table["campaign_code"].astype(str).str.casefold(),
        }
    )
    currencies = table["currency"].to_numpy(dtype=object)
    rates = schema.config.plan_rates
    for name in [*(c.name for c in schema.month_columns), "committed", "actual"]:
        values = table[name].to_numpy(dtype=np.int64)
        out[name] = convert_cents(values, currencies, rates) if len(table) else values
    return out


# --- the live functions ------------------------------------------------------------------------------


def _err(code: str, message: str) -> hv.HostValueError:
    return hv.HostValueError(message, code)


def _scope(data: LiveData, scope: Any) -> tuple[str, np.ndarray]:
    """(region, mask of lines) for a region or a team the caller may see."""
    name = hv.text(scope, "scope").strip()
    regions = {r.casefold(): r for r in data.schema.config.regions}
    teams = {t.casefold(): t for t in data.teams}
    lines = data.lines
    if name.casefold() in teams:
        team = teams[name.casefold()]
        return data.teams[team], (lines["team_id"] == team).to_numpy()
    if name.casefold() in regions:
        return regions[name.casefold()], (lines["region"] == regions[name.casefold()]).to_numpy()
    raise _err("#N/A", f"scope {name!r} is not a region or one of your teams")


def _filter(data: LiveData, mask: np.ndarray, channel: Any, campaign: Any) -> np.ndarray:
    lines = data.lines
    channel = hv.text(channel, "channel").strip().casefold()
    campaign = hv.text(campaign, "campaign").strip().casefold()
    if channel:
        mask = mask & (lines["channel"] == channel).to_numpy()
    if campaign:
        mask = mask & ((lines["campaign"] == campaign) | (lines["campaign_code"] == campaign)).to_numpy()
    return mask


def _months(data: LiveData, period: Any) -> list[str]:
    keys = [c.name for c in data.schema.month_columns]
    text = hv.text(period, "period", "FY").strip()
    if text.upper() in ("", "FY", "YEAR"):
        return keys
    if text.upper() in QUARTERS:
        q = QUARTERS.index(text.upper())
        return keys[3 * q : 3 * q + 3]
    if text.lower() in keys:
        return [text.lower()]
    raise _err("#VALUE!", f"period {text!r}: use FY, Q1..Q4 or m01..m12")


def _money(cents: int) -> float:
    return round(cents / 100, 2)


def ps_planned(data: LiveData, scope: Any, period: Any = "FY", channel: Any = "", campaign: Any = "") -> float:
    _, mask = _scope(data, scope)
    mask = _filter(data, mask, channel, campaign)
    return _money(int(data.lines.loc[mask, _months(data, period)].to_numpy().sum()))


def ps_actual(data: LiveData, scope: Any, channel: Any = "", campaign: Any = "") -> float:
    _, mask = _scope(data, scope)
    return _money(int(data.lines.loc[_filter(data, mask, channel, campaign), "actual"].sum()))


def _allocation(data: LiveData, region: str, quarters: tuple[str, ...], channel: Any) -> int:
    channel = hv.text(channel, "channel").strip()
    cells = data.allocations
    if channel:
        found = [
            v for (r, q, c), v in cells.items() if r == region and q in quarters and c.casefold() == channel.casefold()
        ]
    else:
        found = [v for (r, q, c), v in cells.items() if r == region and q in quarters and c == budget.ALL_CHANNELS]
        found = found or [v for (r, q, _), v in cells.items() if r == region and q in quarters]
    if not found:
        raise _err("#N/A", f"no allocation is set for {region} {' '.join(quarters)} {channel}".strip())
    return sum(found)


def ps_budget(data: LiveData, scope: Any, period: Any = "FY", channel: Any = "") -> float:
    region, _ = _scope(data, scope)
    text = hv.text(period, "period", "FY").strip().upper()
    if text in ("", "FY", "YEAR"):
        quarters = QUARTERS
    elif text in QUARTERS:
        quarters = (text,)
    else:
        raise _err("#VALUE!", f"period {text!r}: allocations are by quarter; use FY or Q1..Q4")
    return _money(_allocation(data, region, quarters, channel))


def ps_live_variance(data: LiveData, scope: Any, as_of: Any = None, channel: Any = "", campaign: Any = "") -> float:
    _, mask = _scope(data, scope)
    mask = _filter(data, mask, channel, campaign)
    day = hv.date(as_of, "as_of", dt.date.today())
    closed = [c.name for c in data.schema.month_columns][: closed_months(data.schema.calendar, day)]
    planned = int(data.lines.loc[mask, closed].to_numpy().sum()) if closed else 0
    return _money(planned - int(data.lines.loc[mask, "actual"].sum()))


def ps_remaining_live(data: LiveData, scope: Any, channel: Any = "") -> float:
    region, mask = _scope(data, scope)
    mask = _filter(data, mask, channel, "")
    spent = int(data.lines.loc[mask, "committed"].sum()) + int(data.lines.loc[mask, "actual"].sum())
    return _money(_allocation(data, region, QUARTERS, channel) - spent)


LIVE_IMPLS: dict[str, Callable[..., Any]] = {
    "PS_BUDGET": ps_budget,
    "PS_PLANNED": ps_planned,
    "PS_ACTUAL": ps_actual,
    "PS_LIVE_VARIANCE": ps_live_variance,
    "PS_REMAINING_LIVE": ps_remaining_live,
}
assert set(LIVE_IMPLS) == {f.name for f in LIVE}, "every declared live function has an implementation"


# --- evaluation --------------------------------------------------------------------------------------


def evaluate(store: Store, schema: PlanSchema, user: User, calls: list[Any]) -> list[dict[str, Any]]:
    """Each call ({"name", "args"}) as {"result": 2-D array} or {"error": {"code", "message"}}, in order."""
    require_plan_reader(user)
    data: LiveData | None = None
    out = []
    for call in calls:
        try:
            name, args = _parse(call)
            function = CATALOG[name]
            values = [_unwrap(a, arg.shape) for a, arg in zip(args, function.args, strict=False)]
            if len(args) > len(function.args):
                raise _err("#VALUE!", f"{name} takes at most {len(function.args)} arguments")
            if name in LIVE_IMPLS:
                data = data or live_data(store, schema, user)
                filled = values + [a.default for a in function.args[len(values) :]]
                filled = [
                    a.default if v is None and a.optional else v for a, v in zip(function.args, filled, strict=True)
                ]
                result = LIVE_IMPLS[name](data, *filled)
            else:
                result = function.call(*values)
            out.append(_answer(result))
        except hv.HostValueError as exc:
            out.append(_answer(exc.as_error()))
        except KeyError:
            out.append(_answer(ExcelError("#NAME?", f"there is no function {call.get('name')!r}")))
    return out


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
