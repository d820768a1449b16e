"""The live functions: answers from the sync service's current master budget, allocations and actuals.

They are declared here, with the pure functions, so every host binds them from one place
(xlwings UDFs, the Office.js functions.json, Apps Script); the answers come from the service
(`POST /api/v1/functions:batch`), which holds the data. In desktop Excel the UDFs call the
service over HTTP with the address and token from `PLANSHEET_SERVICE_URL` and
`PLANSHEET_TOKEN`, or from the `[service]` table of `~/.plansheet.toml`.

All are volatile, so desktop Excel and Sheets recalculate them on refresh, and streaming in
Office.js: the add-in re-evaluates every open live cell in one batch when the service's master
version changes. The service answers repeated cells from a cache keyed by that version.
"""

from __future__ import annotations

import json
import os
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from addin.hostvalues import ExcelError
from addin.registry import Arg, ArgType, Registry, Shape, SheetFunction

LIVE = Registry()
SCOPE = Arg("scope", "a region (EMEA) or a team (EMEA-ENTERPRISE)", ArgType.TEXT, Shape.SCALAR)
PERIOD = Arg("period", "FY (default), Q1..Q4, or a fiscal month m01..m12", ArgType.TEXT, Shape.SCALAR, True, "FY")
QUARTER = Arg("period", "FY (default) or Q1..Q4: allocations are by quarter", ArgType.TEXT, Shape.SCALAR, True, "FY")
CHANNEL = Arg("channel", "only this channel (default: all)", ArgType.TEXT, Shape.SCALAR, True, "")
CAMPAIGN = Arg("campaign", "only this campaign, by name or code (default: all)", ArgType.TEXT, Shape.SCALAR, True, "")
AS_OF = Arg("as_of", "the date that decides which months are closed (default today)", ArgType.ANY, Shape.SCALAR, True)
YEAR = Arg(
    "year",
    "the fiscal year, 2028 or FY2028 (default: the workbook's template year, else the year the service runs)",
    ArgType.ANY,
    Shape.SCALAR,
    True,
)


def _declare(name: str, help: str, *args: Arg, example: str) -> None:
    """A live function: its arguments, then the fiscal year it is about (every live function takes `year` last)."""
    every = (*args, YEAR)
    function = SheetFunction(
        name, help, every, _remote(name), Shape.SCALAR, volatile=True, example=example, stream=True
    )
    LIVE.register(function)


def service_settings() -> tuple[str | None, str | None]:
    """The service address and token: environment first, then ~/.plansheet.toml's [service] table."""
    url, token = os.environ.get("PLANSHEET_SERVICE_URL"), os.environ.get("PLANSHEET_TOKEN")
    path = Path(os.environ.get("PLANSHEET_CLIENT_CONFIG", Path.home() / ".plansheet.toml"))
    if (not url or not token) and path.is_file():
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("service", {})
        except (OSError, tomllib.TOMLDecodeError):
            table = {}
        url, token = url or table.get("url"), token or table.get("token")
    return url, token


def call_service(calls: list[dict[str, Any]], timeout: float = 30.0) -> list[Any]:
    """Evaluate calls on the service in one batch; each result a 2-D array or an ExcelError."""
    url, token = service_settings()
    if not url or not token:
        error = ExcelError("#N/A", "set PLANSHEET_SERVICE_URL and PLANSHEET_TOKEN (or ~/.plansheet.toml)")
        return [error] * len(calls)
    request = urllib.request.Request(
        url.rstrip("/") + "/api/v1/functions:batch",
        data=json.dumps({"calls": calls}, default=str).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            results = json.load(response)["results"]
    except urllib.error.HTTPError as exc:
        with exc:
            detail = _detail(exc)
        return [ExcelError("#N/A", f"the Plansheet service answered {exc.code}: {detail}")] * len(calls)
    except (OSError, ValueError, KeyError) as exc:
        return [ExcelError("#N/A", f"the Plansheet service at {url} cannot be reached ({exc})")] * len(calls)
    return [ExcelError(r["error"]["code"], r["error"]["message"]) if "error" in r else r["result"] for r in results]


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.load(exc).get("detail", ""))
    except (ValueError, OSError):
        return ""


def _remote(name: str) -> Any:
    def impl(*values: Any) -> Any:
        args = [[[v]] for v in values]
        result = call_service([{"name": name, "args": args}])[0]
        return result if isinstance(result, ExcelError) else result[0][0]

    impl.__name__ = name
    return impl


_declare(
    "PS_BUDGET",
    "Finance's allocation for a region (or a team's region) in a period, in the reporting currency",
    SCOPE,
    QUARTER,
    CHANNEL,
    example='=PS_BUDGET("EMEA", "Q2")',
)
_declare(
    "PS_PLANNED",
    "Planned spend in the approved master budget, in the reporting currency",
    SCOPE,
    PERIOD,
    CHANNEL,
    CAMPAIGN,
    example='=PS_PLANNED("EMEA", "Q2", "Events")',
)
_declare(
    "PS_ESTIMATE",
    "The latest estimate: actual spend of the closed months plus the current plan of the open ones, in the "
    "reporting currency (#N/A for a period with closed months when the finance export has no months)",
    SCOPE,
    PERIOD,
    CHANNEL,
    CAMPAIGN,
    example='=PS_ESTIMATE("EMEA", "FY")',
)
_declare(
    "PS_BASELINE",
    "Planned spend in the locked budget (the newest baseline), in the reporting currency",
    SCOPE,
    PERIOD,
    CHANNEL,
    CAMPAIGN,
    example='=PS_BASELINE("EMEA", "Q2", "Events")',
)
_declare(
    "PS_ACTUAL",
    "Actual spend to date (the finance system's import, else the plans'), in the reporting currency",
    SCOPE,
    CHANNEL,
    CAMPAIGN,
    example='=PS_ACTUAL("EMEA-ENTERPRISE")',
)
_declare(
    "PS_COMMITTED",
    "Committed spend: the open purchase order balance once POs are imported (else what the plans typed), in the "
    "reporting currency",
    SCOPE,
    CHANNEL,
    CAMPAIGN,
    example='=PS_COMMITTED("EMEA")',
)
_declare(
    "PS_INVOICED",
    "Invoiced against the purchase orders of the scope's lines, in the reporting currency",
    SCOPE,
    CHANNEL,
    CAMPAIGN,
    example='=PS_INVOICED("EMEA-ENTERPRISE")',
)
ACCRUAL_MONTH = Arg(
    "month",
    "the fiscal month m01..m12 whose month-end accrual (default: the month being closed)",
    ArgType.TEXT,
    Shape.SCALAR,
    True,
    "",
)
_declare(
    "PS_ACCRUED",
    "The month-end accrual: delivered but not yet invoiced on the scope's purchase orders, in the reporting currency",
    SCOPE,
    ACCRUAL_MONTH,
    CHANNEL,
    CAMPAIGN,
    example='=PS_ACCRUED("EMEA", "m03")',
)
_declare(
    "PS_LIVE_VARIANCE",
    "Planned spend of the closed months minus actual spend: positive is under plan (favourable)",
    SCOPE,
    AS_OF,
    CHANNEL,
    CAMPAIGN,
    example='=PS_LIVE_VARIANCE("EMEA", TODAY())',
)
_declare(
    "PS_REMAINING_LIVE",
    "The year's allocation minus committed and actual spend, in the reporting currency",
    SCOPE,
    CHANNEL,
    example='=PS_REMAINING_LIVE("EMEA")',
)


MEASURE = Arg(
    "measure",
    "leads, mqls, sals, opportunities, won, pipeline, revenue, crm_cost, spend, cost_difference, cost_per_lead, "
    "cost_per_mql, pipeline_roi, revenue_roi, roi, lead_to_mql, mql_to_opportunity or opportunity_to_won",
    ArgType.TEXT,
    Shape.SCALAR,
)
_declare(
    "PS_RESULT",
    "What the spend bought, from the results imported from the CRM: a result, a unit cost, ROI or a conversion "
    "(#N/A when no results cover the period)",
    MEASURE,
    SCOPE,
    PERIOD,
    CHANNEL,
    CAMPAIGN,
    example='=PS_RESULT("cost_per_lead", "EMEA", "Q2", "Events")',
)
_declare(
    "PS_EXPECTED",
    "What the approved plan expects of a measure: expected leads, MQLs, pipeline, revenue, planned spend, "
    "and the unit costs and ratios they give",
    MEASURE,
    SCOPE,
    PERIOD,
    CHANNEL,
    CAMPAIGN,
    example='=PS_EXPECTED("pipeline", "EMEA", "Q2")',
)
_declare(
    "PS_TARGET",
    "The target shared with sales for a region and quarter (or the year): leads, MQLs, pipeline, revenue, "
    "the allocation as spend, and the unit costs and conversions they give",
    MEASURE,
    SCOPE,
    QUARTER,
    example='=PS_TARGET("leads", "EMEA", "Q2")',
)


def catalog() -> Registry:
    """Every function a host binds: the pure ones, then the live ones."""
    from addin.sheet_functions import REGISTRY

    every = Registry()
    for function in (*REGISTRY, *LIVE):
        every.register(function)
    return every
