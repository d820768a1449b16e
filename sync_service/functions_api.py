"""The spreadsheet functions over HTTP: every catalogue function, evaluated for the caller.

Arguments arrive as 2-D arrays (a single value as `[[v]]`), as Office.js and Apps Script
pass ranges; each result is a 2-D array, or an Excel error with a message. The pure
functions run as in the cell; the live ones read the master read model (`sync_service.master`,
cached by the versions it was loaded at, so an approval shows at once), scoped to the caller
by the same rule as the API, with its money at the one grain.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from addin import hostvalues as hv
from addin.forecast import closed_months
from addin.hostvalues import ExcelError
from addin.live import LIVE, catalog
from addin.registry import Registry, Shape
from sheet_templates.calendar import MONTH_KEYS, QUARTERS, period_months
from sheet_templates.money import units
from sheet_templates.schema import PlanSchema
from sync_service import master
from sync_service.allocations import allocation_of
from sync_service.auth import require_plan_reader
from sync_service.storage import Store, User

MAX_CALLS = 5000
CATALOG: Registry = catalog()


@dataclass(frozen=True)
class LiveData:
    """The caller's view of the master (the read model, scoped), as arrays ready to mask and sum."""

    lines: pd.DataFrame  # team_id, region, channel, campaign, campaign_code (case-folded)
    months: np.ndarray  # reporting cents per line and fiscal month: the read model's, the one grain
    committed: np.ndarray
    actual: np.ndarray
    allocations: dict[tuple[str, str, str], int]
    regions: tuple[str, ...]  # the regions whose allocations the caller may read
    teams: dict[str, str]  # team id -> region, of the teams the caller may see
    schema: PlanSchema


def live_data(store: Store, schema: PlanSchema, user: User) -> LiveData:
    """The master read model as `user` may see it, indexed for the live functions."""
    view = master.load(store, schema, user)
    table = view.table
    lines = pd.DataFrame(
        {
            "team_id": table["team_id"],
            "region": table["region"],
            "channel": table["channel"].astype(str).str.casefold(),
            "campaign": table["campaign"].astype(str).str.casefold(),
            "campaign_code": table["campaign_code"].astype(str).str.casefold(),
        }
    )
    teams = {t: r for t, r in view.regions.items() if view.visible is None or t in view.visible}
    return LiveData(
        lines, view.months, view.committed, view.actual, dict(view.allocations), view.allocation_regions, teams, schema
    )


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
        region = regions[name.casefold()]
        if region not in data.regions:  # the same rule as the API: a marketer reads their own regions only
            raise _err("#N/A", f"{region} is not one of your regions; you may see {', '.join(data.regions) or 'none'}")
        return region, (lines["region"] == region).to_numpy()
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


def _months(data: LiveData, period: Any) -> list[int]:
    """The fiscal months (as column indexes of `months`) a period names."""
    text = hv.text(period, "period", "FY").strip()
    keys = period_months(text)
    if keys is None:
        raise _err("#VALUE!", f"period {text!r}: use FY, Q1..Q4 or m01..m12")
    return [MONTH_KEYS.index(k) for k in keys]


def ps_planned(data: LiveData, scope: Any, period: Any = "FY", channel: Any = "", campaign: Any = "") -> float:
    _, mask = _scope(data, scope)
    mask = _filter(data, mask, channel, campaign)
    return units(int(data.months[mask][:, _months(data, period)].sum()))


def ps_actual(data: LiveData, scope: Any, channel: Any = "", campaign: Any = "") -> float:
    _, mask = _scope(data, scope)
    return units(int(data.actual[_filter(data, mask, channel, campaign)].sum()))


def _allocation(data: LiveData, region: str, quarters: tuple[str, ...], channel: Any) -> int:
    channel = hv.text(channel, "channel").strip()
    found = allocation_of(data.allocations, region, quarters, channel or None)
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


def ps_live_variance(data: LiveData, scope: Any, as_of: Any = None, channel: Any = "", campaign: Any = "") -> float:
    _, mask = _scope(data, scope)
    mask = _filter(data, mask, channel, campaign)
    day = hv.date(as_of, "as_of", dt.date.today())
    closed = closed_months(data.schema.calendar, day)
    planned = int(data.months[mask][:, :closed].sum())
    return units(planned - int(data.actual[mask].sum()))


def ps_remaining_live(data: LiveData, scope: Any, channel: Any = "") -> float:
    region, mask = _scope(data, scope)
    mask = _filter(data, mask, channel, "")
    spent = int(data.committed[mask].sum()) + int(data.actual[mask].sum())
    return units(_allocation(data, region, QUARTERS, channel) - spent)


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
