"""The oracle: every surface of Plansheet shows the same figure, equal to the cent to an independent computation.

One scenario, built here through the real service on 127.0.0.1: five teams in four regions and
three business units, lines in five currencies (with per-month actual rates configured, which
planned figures do not use), one plan uploaded as a workbook in which LibreOffice inserted rows
inside the table, an allocation revised through the API, an actuals import with a campaign code
shared by lines of two teams, a locked month, a rejected and a stale submission.

The expected cents are computed below in plain Python with Decimal and Fraction over the
scenario's inputs, following the rules written in docs/money.md (each line's each month at the
plan rate, to the cent; the shared code split by planned spend, largest remainder), and using
none of Plansheet's functions. Every surface must equal them: the API (master, rollup for every
dimension and period, variance, allocations), the master workbook from the service and from
`plansheet consolidate` and each team's template from the service, each read twice: as written
(the cached values a preview, pandas or Power BI reads) and after LibreOffice recalculates it;
the dashboard's pages, the Google master sheet read back with gspread, and the live functions
through HTTP, the xlwings UDFs, Office.js and Apps Script.

Next fiscal year is planned beside this one (two teams' plans at next year's own plan rates and
allocations): its rollup, its master workbook (as written and recalculated), its dashboard
pages, its Google push and the live functions naming its year equal the oracle too, and so does
the year-over-year view (next year's plan against this year's plan, actual and estimate) on
each surface that shows it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import time
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import gspread
import pytest
from sheets_standin import SheetsFake

from sheet_templates import build_schema, load_config
from sheet_templates.config import default_config_path
from sheet_templates.excel_template import build_template
from sheet_templates.formatting import Formats
from sync_service.app import create_app
from sync_service.platform.context import STORE
from sync_service.platform.storage import User, WebSession
from tests.addin.xlwings_harness import MISSING, call_like_excel, udfs, xlwings_windows  # noqa: F401
from tests.libreoffice import cached_differences, insert_rows_in_libreoffice, recalculate, sheet_values
from tests.sync_service.live_server import call, init, service_env, start, stop, token, upload

SCHEMA = build_schema(load_config())
CFG = SCHEMA.config
RATES = CFG.plan_rates
CENT = Decimal("0.01")
MONTHS = [f"m{i:02d}" for i in range(1, 13)]
QUARTER_MONTHS = {f"Q{q}": MONTHS[3 * (q - 1) : 3 * q] for q in range(1, 5)}
AS_OF = dt.date(2026, 7, 15)  # FY2027 starts in February 2026: Feb..Jun (5 months) are closed
CLOSED = 5
DEADLINE = (dt.date.today() + dt.timedelta(days=30)).isoformat()  # a cycle's deadline is never in the past
REFORECAST_THROUGH = 2  # the Q1 reforecast closes m01 and m02: their estimate is what was booked
HOSTS = Path(__file__).resolve().parent / "hosts"
# The last day of each fiscal month of FY2027 (February 2026 to January 2027).
MONTH_ENDS = [dt.date(2026 + (k + 1) // 12, (k + 1) % 12 + 1, 1) - dt.timedelta(days=1) for k in range(1, 13)]


def line(line_id: str, region: str, unit: str, channel: str, currency: str, **values: Any) -> dict[str, Any]:
    """A plan line as a planner types it (amounts as Decimal units in the line's currency)."""
    return {
        "line_id": line_id,
        "region": region,
        "business_unit": unit,
        "team": "Demand",
        "campaign": f"Campaign {line_id}",
        "channel": channel,
        "owner": "Kim",
        "currency": currency,
        "status": "Planned",
        **values,
    }


D = Decimal
# Amounts chosen so that rounding per month differs from rounding per quarter or per year.
EMEA_ENT = [
    line("EE-1", "EMEA", "Enterprise", "Events", "EUR", m01=D("999.99"), m02=D("999.99"), m07=D("1234.565")),
    line("EE-2", "EMEA", "Enterprise", "Paid Search", "GBP", m03=D("333.33"), m04=D("333.33"), committed=D("100")),
    line(
        "EE-3",
        "EMEA",
        "Enterprise",
        "Content",
        "USD",
        m05=D("10000"),
        m12=D("0.10"),
        campaign_code="EE3-CODE",
        leads=1000,
        mqls=300,
        pipeline=D("40000"),
        revenue=D("8000"),
    ),
]
EMEA_ENT_INSERTED = [  # typed into rows LibreOffice inserted inside the table
    line("EE-4", "EMEA", "Enterprise", "Events", "GBP", m01=D("1000.50"), m06=D("0.01")),
    line("EE-5", "EMEA", "Enterprise", "Webinars", "EUR", m09=D("77.77"), m11=D("12.345")),
]
EMEA_SMB = [
    line(
        "ES-1",
        "EMEA",
        "SMB",
        "Email",
        "EUR",
        m02=D("5000.05"),
        m08=D("45.55"),
        campaign_code="SHARED-1",
        leads=80,
        pipeline=D("9000.99"),
    ),
    line("ES-2", "EMEA", "SMB", "Events", "GBP", m01=D("12.34"), m10=D("2000")),
]
NA_V1 = [line("NA-1", "NA", "Enterprise", "ABM", "USD", m01=D("1000"), m02=D("1000"), campaign_code="SHARED-1")]
NA_V2 = [
    line(
        "NA-1",
        "NA",
        "Enterprise",
        "ABM",
        "USD",
        m01=D("1000"),
        m02=D("1500.25"),
        campaign_code="SHARED-1",
        leads=120,
        mqls=50,
    ),
    line("NA-2", "NA", "Enterprise", "Paid Social", "USD", m04=D("777.77"), m05=D("0.99"), committed=D("250.50")),
]
NA_STALE = [line("NA-1", "NA", "Enterprise", "ABM", "USD", m01=D("999999"))]  # edited from v1: stays stale
APAC = [
    line(
        "AP-1",
        "APAC",
        "Mid-Market",
        "Partners",
        "JPY",
        m03=D(123457),
        m04=D(99),
        m11=D(1000001),
        leads=33,
        pipeline=D(5000000),
    ),
    line("AP-2", "APAC", "Mid-Market", "Events", "USD", m06=D("4321.09")),
]
LATAM_BAD = [line("LA-1", "LATAM", "SMB", "Events", "BRL", m01=D("100"))]  # rejected
LATAM = [line("LA-1", "LATAM", "SMB", "Events", "BRL", m01=D("100.05"), m02=D("0.05"), m12=D("999.99"))]
NEXT = SCHEMA.calendar.year + 1  # next year, planned while this one runs, at its own plan rates
NEXT_RATES = CFG.for_year(NEXT).plan_rates
NEXT_PLANS = {  # the same teams' plans of next year: line IDs kept, other amounts, currencies and phasing
    "EMEA-SMB": [
        line("ES-1", "EMEA", "SMB", "Email", "EUR", m01=D("5100.05"), m06=D("0.05"), m12=D("333.335")),
        line("ES-9", "EMEA", "SMB", "Webinars", "GBP", m03=D("999.99"), m04=D("0.01")),
    ],
    "NA-ENTERPRISE": [
        line("NA-1", "NA", "Enterprise", "ABM", "USD", m02=D("1500"), m11=D("0.10")),
        line("NA-9", "NA", "Enterprise", "Events", "JPY", m05=D("150000"), m07=D("33333")),
    ],
}
FINAL = {  # what the master holds in the end, by team
    "EMEA-ENTERPRISE": EMEA_ENT + EMEA_ENT_INSERTED,
    "EMEA-SMB": EMEA_SMB,
    "NA-ENTERPRISE": NA_V2,
    "APAC-MIDMARKET": APAC,
    "LATAM-SMB": LATAM,
}
# The revised allocations (reporting units): EMEA Q1 changed, one channel cell, LATAM Q4 left unset.
ALLOCATIONS = [
    *({"region": r, "quarter": q, "amount": str(CFG.allocation(r, q))} for r in CFG.regions for q in QUARTER_MONTHS),
]
ALLOCATIONS = [a for a in ALLOCATIONS if (a["region"], a["quarter"]) not in {("EMEA", "Q1"), ("LATAM", "Q4")}]
ALLOCATIONS += [
    {"region": "EMEA", "quarter": "Q1", "amount": "123456.78"},
    {"region": "EMEA", "quarter": "Q2", "channel": "Events", "amount": "5000.55"},
]
# The finance system's export: by line ID, by campaign code (shared by an EMEA-SMB and an NA line), other currencies.
# Each row has its posting month (dates, some as text): unit costs use the spend of the months results cover.
ACTUALS = [
    ("EE-1", "", "1000.05", "EUR", "2026-02-14"),
    ("EE-1", "", "500.05", "EUR", "Mar 2026"),
    ("EE-2", "", "400.00", "EUR", "30/04/2026"),  # booked in EUR against a GBP line
    ("", "EE3-CODE", "9999.99", "USD", "2026-03-31"),
    ("", "SHARED-1", "3000.01", "EUR", "2026-02-27"),
    ("AP-1", "", "100000", "JPY", "2026-04-02"),
    ("LA-1", "", "50.5", "BRL", "Feb 2026"),
]
SALESFORCE_HEADER = [
    "Campaign Name",
    "Campaign ID",
    "Month",
    "Campaign Currency",
    "Leads in Campaign",
    "MQLs in Campaign",
    "Opportunities in Campaign",
    "Won Opportunities in Campaign",
    "Value Opportunities in Campaign",
    "Value Won Opportunities in Campaign",
]
# The CRM's campaign report for Feb and Mar, the usual mess: a title, symbols, separators, a blank and a totals row.
RESULTS_A = [
    ["Campaign results FY2027 (Salesforce report)"],
    [],
    SALESFORCE_HEADER,
    ["Shared one", "SHARED-1", "2026-02-20", "USD", "1,001", "40", "7", "2", "$12,345.67", "$1,000.01"],
    ["Content", "EE3-CODE", "March 2026", "EUR", "1,234", "300", "20", "5", "€50,000.00", "€0.00"],
    ["Campaign AP-1", "", "Mar 2026", "JPY", "55", "10", "1", "0", "¥1,000,000", ""],
    [],
    ["Nobody's", "NOPE-9", "2026-03-01", "USD", "5", "", "", "", "", ""],
    ["Grand Total", "", "", "", "2,295", "350", "28", "7", "", ""],
]
# A newer report for March alone replaces the first one's March (AP-1's March results go with it).
RESULTS_B = [
    SALESFORCE_HEADER,
    ["Content", "EE3-CODE", "Mar 2026", "EUR", "1,300", "310", "21", "6", "€51,000.00", "€2,500.50"],
    ["Shared one", "SHARED-1", "15/03/2026", "USD", "3", "1", "0", "0", "$0.00", "$0.00"],
]
# Marketing automation for April, matched by program name; no currency column (the reporting currency).
RESULTS_C = [
    ["Program Name", "New Names", "Success", "Opportunities Created", "Pipeline Created"],
    ["Campaign EE-2", "10", "4", "1", "2,500"],
    ["Campaign LA-1", "7", "2", "0", "0"],
]
# What each import's rows hold, as the independent computation reads them: source, month, row key, figures.
RESULT_METRICS = ("leads", "mqls", "sals", "opportunities", "won", "pipeline", "revenue", "crm_cost")
IN_FORCE = {  # (source, month) -> the rows in force: (line ID, code, campaign, currency, {metric: text})
    ("salesforce", "m01"): [
        (
            "",
            "SHARED-1",
            "",
            "USD",
            dict(leads=1001, mqls=40, opportunities=7, won=2, pipeline="12345.67", revenue="1000.01"),
        )
    ],
    ("salesforce", "m02"): [
        (
            "",
            "EE3-CODE",
            "",
            "EUR",
            dict(leads=1300, mqls=310, opportunities=21, won=6, pipeline="51000", revenue="2500.50"),
        ),
        ("", "SHARED-1", "", "USD", dict(leads=3, mqls=1, opportunities=0, won=0, pipeline="0", revenue="0")),
    ],
    ("marketo", "m03"): [
        ("", "", "Campaign EE-2", "USD", dict(leads=10, mqls=4, opportunities=1, pipeline="2500")),
        ("", "", "Campaign LA-1", "USD", dict(leads=7, mqls=2, opportunities=0, pipeline="0")),
    ],
}
COVERED = {  # month -> the results some import in force has a column for
    "m01": {"leads", "mqls", "opportunities", "won", "pipeline", "revenue"},
    "m02": {"leads", "mqls", "opportunities", "won", "pipeline", "revenue"},
    "m03": {"leads", "mqls", "opportunities", "pipeline"},
}


# Spend control: the procurement system's purchase orders and the invoices against them, for lines of every team.
PO_HEADER = ["PO number", "Vendor", "Amount", "Currency", "Service start", "Service end", "Line ID", "Campaign code",
             "Status", "Accrual method"]  # fmt: skip
PURCHASE_ORDERS = [
    ("PO-E1", "Stand & Hall GmbH", "1500.00", "EUR", "2026-02-10", "2026-03-25", "EE-1", "", "Open", ""),
    ("PO-E2", "Search Ads Inc", "500.00", "USD", "2026-03-15", "2026-05-14", "EE-2", "", "Open", ""),  # USD, GBP line
    ("PO-C1", "Content Studio", "2000.00", "USD", "2026-02-01", "2026-07-31", "", "EE3-CODE", "Open", ""),  # by code
    ("PO-S1", "Mailers Ltd", "4000.00", "EUR", "2026-02-01", "2026-09-30", "ES-1", "SHARED-1", "Open", "plan"),
    ("PO-N1", "ABM Partners", "2500.00", "USD", "2026-02-01", "2026-03-31", "NA-1", "", "Open", ""),  # invoiced over
    ("PO-N2", "Social Co", "400.00", "USD", "2026-02-01", "2026-04-30", "NA-2", "", "Cancelled", ""),
    ("PO-N3", "Social Co", "300.00", "USD", "2026-04-01", "2026-05-31", "NA-2", "", "Open", ""),  # not started yet
    ("PO-A1", "Tokyo Partners KK", "150000", "JPY", "2026-02-16", "2026-03-15", "AP-1", "", "Open", ""),
    ("PO-L1", "Eventos Ltda", "500.00", "BRL", "2026-01-15", "2026-02-14", "LA-1", "", "Open", ""),  # began before
    ("PO-X1", "Nobody's vendor", "700.00", "USD", "2026-02-01", "2026-02-28", "ZZ-9", "", "Open", ""),  # no such line
    ("PO-X2", "Shared vendor", "200.00", "EUR", "2026-02-01", "2026-02-28", "", "SHARED-1", "Open", ""),  # two lines
]
INVOICE_HEADER = ["Invoice number", "PO number", "Amount", "Currency", "Invoice date"]
INVOICES = [
    ("INV-E1a", "PO-E1", "400.00", "EUR", "2026-02-20"),
    ("INV-E1b", "PO-E1", "300.00", "", "2026-03-05"),  # no currency: the PO's
    ("INV-E2", "PO-E2", "100.00", "GBP", "2026-03-20"),  # GBP against a USD PO
    ("INV-C1", "PO-C1", "250.00", "USD", "2026-02-28"),  # on the month's last day: invoiced by its end
    ("INV-S1", "PO-S1", "1000.00", "EUR", "2026-03-10"),
    ("INV-N1", "PO-N1", "2600.00", "USD", "2026-03-31"),  # over its PO
    ("INV-N2", "PO-N2", "120.00", "USD", "2026-02-25"),  # against the cancelled PO
    ("INV-A1", "PO-A1", "50000", "JPY", "2026-03-01"),
    ("INV-Z1", "PO-NOPE", "99.99", "USD", "2026-02-15"),  # no such PO
]
# Imported once m01's accrual is closed, dated in m01: the closed month keeps its accrual, m02 moves.
LATE_INVOICES = [("INV-L1", "PO-L1", "200.00", "BRL", "2026-02-10")]
ACCRUAL_CLOSED = 1  # m01 is closed; m02 is the month being closed


# --- the independent computation -------------------------------------------------------------------------


def half_up(value: Fraction | Decimal) -> int:
    """A cent amount rounded half away from zero (amounts here are never negative)."""
    value = Fraction(value)
    return int(value + Fraction(1, 2)) if value >= 0 else -int(-value + Fraction(1, 2))


def month_of(text: str) -> int:
    """The fiscal month (0-based) of a posting date or month label, read here as a person reads it."""
    for fmt in ("%Y-%m-%d", "%b %Y", "%B %Y", "%d/%m/%Y"):
        try:
            day = dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        return (day.year - 2026) * 12 + day.month - 2  # FY2027 starts in February 2026
    raise AssertionError(text)


def cents(amount: Any) -> int:
    return int((D(str(amount)) * 100).quantize(D(1), rounding=ROUND_HALF_UP)) if amount is not None else 0


def next_allocation(region: str, quarter: str) -> int:
    """Next year's allocation, as the organisation file writes it ([years.N.allocations.REGION] Q1..Q4), in cents."""
    described = tomllib.loads(default_config_path().read_text(encoding="utf-8"))["years"][str(NEXT)]
    return cents(described["allocations"][region][quarter])


def to_reporting(amount_cents: int, currency: str) -> int:
    return half_up(Fraction(amount_cents) * Fraction(RATES[currency]))


class Expected:
    """Every figure of the scenario in reporting cents, from the inputs alone."""

    def __init__(self) -> None:
        self.lines = [(team, ln) for team, lines in FINAL.items() for ln in lines]
        self.month = {
            ln["line_id"]: [to_reporting(cents(ln.get(m)), ln["currency"]) for m in MONTHS] for _, ln in self.lines
        }
        self.team_of = {ln["line_id"]: team for team, ln in self.lines}
        self.by_id = {ln["line_id"]: ln for _, ln in self.lines}
        self.actual_line = self._actuals()  # line currency cents
        self.outcomes = self._outcomes()
        self.actual = {i: to_reporting(c, self.by_id[i]["currency"]) for i, c in self.actual_line.items()}
        # Once POs are imported, a line's committed spend is its open PO balance, not what its plan typed.
        self.typed_committed = {
            i: to_reporting(cents(ln.get("committed")), ln["currency"]) for i, ln in self.by_id.items()
        }
        self.open_line = {i: self.spend_line(i, 0)["committed"] for i in self.by_id}  # line currency cents
        self.committed = {i: self.spend(i, 0)["committed"] for i in self.by_id}
        self.alloc = defaultdict(int)  # (region, quarter) -> cents, all channels
        for a in ALLOCATIONS:
            if not a.get("channel"):
                self.alloc[a["region"], a["quarter"]] += cents(a["amount"])
        # A quarter with only channel cells counts their sum (EMEA Q2 has a * cell from the file: it wins).

    def split(self, amount: int, targets: list[str]) -> list[int]:
        """`amount` over `targets` by their planned spend for the year in reporting cents, largest remainder."""
        weights = [sum(self.month[t]) for t in targets]
        total = sum(weights)
        shares = [Fraction(amount * w, total) for w in weights]
        parts = [int(s) for s in shares]
        for k in sorted(range(len(parts)), key=lambda k: shares[k] - parts[k], reverse=True)[: amount - sum(parts)]:
            parts[k] += 1
        return parts

    def _actuals(self) -> dict[str, int]:
        out = dict.fromkeys(self.by_id, 0)
        self.actual_month_line = {i: [0] * 12 for i in self.by_id}  # line currency cents by posting month
        for line_id, code, amount, currency, posted in ACTUALS:
            targets = [line_id] if line_id else [i for i, ln in self.by_id.items() if ln.get("campaign_code") == code]
            month = month_of(posted)
            for t, part in zip(targets, self.split(cents(amount), targets), strict=True):
                target_currency = self.by_id[t]["currency"]
                converted = half_up(Fraction(part) * Fraction(RATES[currency]) / Fraction(RATES[target_currency]))
                out[t] += converted
                self.actual_month_line[t][month] += converted
        return out

    def actual_months(self, line_id: str) -> list[int]:
        """A line's actual spend by month in reporting cents: the cumulative spend converted, month by month."""
        currency, running, before, out = self.by_id[line_id]["currency"], 0, 0, []
        for value in self.actual_month_line[line_id]:
            running += value
            now = to_reporting(running, currency)
            out.append(now - before)
            before = now
        return out

    def _outcomes(self) -> dict[str, dict[str, list[int]]]:
        """Results in force per line, metric and month: counts in hundredths, money in reporting cents."""
        out = {i: {m: [0] * 12 for m in RESULT_METRICS} for i in self.by_id}
        for (_, month), rows in IN_FORCE.items():
            k = MONTHS.index(month)
            for line_id, code, campaign, currency, figures in rows:
                key, value = (
                    ("line_id", line_id) if line_id else ("campaign_code", code) if code else ("campaign", campaign)
                )
                targets = [i for i, ln in self.by_id.items() if ln.get(key) == value]
                assert targets, value
                for metric, figure in figures.items():
                    if metric in ("pipeline", "revenue"):
                        parts = [to_reporting(p, currency) for p in self.split(cents(figure), targets)]
                    else:
                        parts = self.split(int(figure) * 100, targets)
                    for t, part in zip(targets, parts, strict=True):
                        out[t][metric][k] += part
        return out

    def expected_result(self, line_id: str, metric: str, period: str) -> int:
        """A line's expected leads (hundredths) or pipeline (reporting cents) in a period, spread by planned spend."""
        ln = self.by_id[line_id]
        if metric in ("leads", "mqls"):
            total = int(ln.get(metric) or 0) * 100
        else:
            total = to_reporting(cents(ln.get(metric)), ln["currency"])
        if period.startswith("FY"):
            return total
        q = int(period[1]) - 1
        weights = [sum(self.month[line_id][3 * j : 3 * j + 3]) for j in range(4)]
        if not sum(weights):
            weights = [1, 1, 1, 1]
        shares = [Fraction(total * w, sum(weights)) for w in weights]
        parts = [int(x) for x in shares]
        for j in sorted(range(4), key=lambda j: shares[j] - parts[j], reverse=True)[: total - sum(parts)]:
            parts[j] += 1
        return parts[q]

    def performance(self, by: str, period: str, teams: set[str] | None = None) -> dict[str, dict[str, Any]]:
        """{group: {measure: (actual, expected, target)}} over the lines of `teams` (all when None).

        Money and unit costs in cents, counts in hundredths, ratios as Fractions; None is no data.
        """
        groups: dict[str, list[str]] = defaultdict(list)
        for team, ln in self.lines:
            if teams is None or team in teams:
                groups[ln[by]].append(ln["line_id"])
        return {key: self._figures(by, key, ids, period) for key, ids in groups.items()}

    def _figures(self, by: str, key: str, ids: list[str], period: str) -> dict[str, Any]:
        if period.startswith("FY"):
            months, quarters = list(range(12)), list(QUARTER_MONTHS)
        else:
            months, quarters = [MONTHS.index(m) for m in QUARTER_MONTHS[period]], [period]

        def covered(*metrics: str) -> list[int]:
            return [k for k in months if all(x in COVERED.get(MONTHS[k], ()) for x in metrics)]

        def result(metric: str, over: list[int]) -> int:
            return sum(self.outcomes[i][metric][k] for i in ids for k in over)

        def spend(over: list[int]) -> int:
            return sum(self.actual_months(i)[k] for i in ids for k in over)

        planned = sum(self.month[i][k] for i in ids for k in months)

        def target(metric: str) -> int | None:  # targets are per region (a marketer sees their region's)
            if by != "region":
                return None
            if metric == "spend":  # the allocations set for these quarters; none set: no target
                found = [self.alloc.get((key, q), 0) for q in quarters]
                return sum(found) if any(found) else None
            found = [CFG.target(key, q, metric) for q in quarters]
            return None if None in found else sum(int(v * 100) for v in found)

        def per_unit(num: int | None, den: int | None) -> int | None:
            return None if num is None or not den else half_up(Fraction(num * 100, den))

        def ratio(num: int | None, den: int | None) -> Fraction | None:
            return None if num is None or not den else Fraction(num, den)

        figures: dict[str, Any] = {"spend": (spend(months), planned, target("spend"))}
        for metric in RESULT_METRICS:
            over = covered(metric)
            expected = (
                sum(self.expected_result(i, metric, period) for i in ids)
                if metric in ("leads", "mqls", "pipeline", "revenue")
                else None
            )
            figures[metric] = (
                result(metric, over) if over else None,
                expected,
                target(metric) if expected is not None else None,
            )
        over = covered("leads")
        figures["cost_per_lead"] = (
            per_unit(spend(over), result("leads", over)) if over else None,
            per_unit(planned, figures["leads"][1]),
            per_unit(target("spend"), target("leads")),
        )

        over = covered("crm_cost")  # the CRM's own cost against finance's actual spend of the months it covers
        figures["cost_difference"] = (result("crm_cost", over) - spend(over) if over else None, None, None)

        def roi(revenue: int | None, cost: int | None) -> Fraction | None:  # Salesforce's: (revenue - cost) / cost
            return None if revenue is None or not cost else Fraction(revenue - cost, cost)

        over = covered("revenue")
        figures["roi"] = (
            roi(result("revenue", over), spend(over)) if over else None,
            roi(figures["revenue"][1], planned),
            roi(target("revenue"), target("spend")),
        )
        over = covered("pipeline")
        figures["pipeline_roi"] = (
            ratio(result("pipeline", over), spend(over)) if over else None,
            ratio(figures["pipeline"][1], planned),
            ratio(target("pipeline"), target("spend")),
        )
        over = covered("opportunities", "won")
        figures["opportunity_to_won"] = (
            ratio(result("won", over), result("opportunities", over)) if over else None,
            None,
            None,
        )
        return figures

    def planned(self, by: str, period: str) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = defaultdict(int)
        for team, ln in self.lines:
            key = team if by == "team_id" else (ln.get(by) or "")
            for j, m in enumerate(MONTHS):
                label = {"month": m, "quarter": f"Q{j // 3 + 1}", "year": "FY2027"}[period]
                out[key, label] += self.month[ln["line_id"]][j]
        return dict(out)

    def region_sum(self, what: dict[str, int], region: str) -> int:
        return sum(v for i, v in what.items() if self.by_id[i]["region"] == region)

    def to_date(self, region: str, closed: int = CLOSED) -> int:
        return sum(sum(m[:closed]) for i, m in self.month.items() if self.by_id[i]["region"] == region)

    def team_quarters(self, team: str) -> list[int]:
        ids = [ln["line_id"] for ln in FINAL[team]]
        return [sum(sum(self.month[i][3 * q : 3 * q + 3]) for i in ids) for q in range(4)]

    def estimate(self, line_id: str) -> list[int]:
        """A line's latest estimate by month: the booked spend of the closed months, then the plan."""
        closed = REFORECAST_THROUGH
        return self.actual_months(line_id)[:closed] + self.month[line_id][closed:]

    def team_estimate_quarters(self, team: str) -> list[int]:
        ids = [ln["line_id"] for ln in FINAL[team]]
        return [sum(sum(self.estimate(i)[3 * q : 3 * q + 3]) for i in ids) for q in range(4)]

    def region_estimate(self, region: str, months: list[int]) -> int:
        return sum(sum(self.estimate(i)[j] for j in months) for i in self.by_id if self.by_id[i]["region"] == region)

    # --- spend control: purchase orders, invoices and the month-end accrual

    def po_line(self, po: tuple[str, ...]) -> str | None:
        """The line a PO is for: its line ID, else a campaign code exactly one line has (a PO is never split)."""
        if po[6] in self.by_id:
            return po[6]
        coded = [i for i, ln in self.by_id.items() if po[7] and ln.get("campaign_code") == po[7]]
        return coded[0] if len(coded) == 1 else None

    @staticmethod
    def cross(amount: int, source: str, target: str) -> int:
        """Cents of `source` in `target` at the plan rates' cross rate, rounded once, half away from zero."""
        if source == target:
            return amount
        return half_up(Fraction(amount) * Fraction(RATES[source]) / Fraction(RATES[target]))

    def po_invoiced(self, po: tuple[str, ...], invoices: list[tuple[str, ...]], through: dt.date | None = None) -> int:
        """What `invoices` bill against a PO (dated by `through`, when given), in the PO's currency."""
        return sum(
            self.cross(cents(i[2]), i[3] or po[3], po[3])
            for i in invoices
            if i[1] == po[0] and (through is None or dt.date.fromisoformat(i[4]) <= through)
        )

    def accrual(self, po: tuple[str, ...], month: int) -> int:
        """A PO's accrual at fiscal month `month`'s end (0-based), its currency: delivered less invoiced by then.

        A closed month's accrual was worked out from the invoices imported when it was closed.
        """
        invoices = INVOICES if month < ACCRUAL_CLOSED else INVOICES + LATE_INVOICES
        start, stop, end, amount = (
            dt.date.fromisoformat(po[4]),
            dt.date.fromisoformat(po[5]),
            MONTH_ENDS[month],
            cents(po[2]),
        )
        if po[8] == "Cancelled" or end < start:
            return 0
        line_id = self.po_line(po)
        planned = [cents(self.by_id[line_id].get(m)) for m in MONTHS] if line_id else [0]
        if po[9] == "plan" and sum(planned):  # in step with the line's planned spend for the year
            delivered = half_up(Fraction(amount * sum(planned[: month + 1]), sum(planned)))
        elif end >= stop:
            delivered = amount
        else:  # straight-line over the service period's days, both ends included
            delivered = half_up(Fraction(amount * ((end - start).days + 1), (stop - start).days + 1))
        return max(delivered - self.po_invoiced(po, invoices, end), 0)

    def spend_line(self, line_id: str, month: int) -> dict[str, int]:
        """A line's open PO balance, invoiced and accrual at `month`'s end: each PO to the line's currency alone."""
        currency = self.by_id[line_id]["currency"]
        out = dict.fromkeys(("committed", "invoiced", "accrued"), 0)
        for po in PURCHASE_ORDERS:
            if self.po_line(po) != line_id:
                continue
            billed = self.po_invoiced(po, INVOICES + LATE_INVOICES)
            left = 0 if po[8] == "Cancelled" else max(cents(po[2]) - billed, 0)
            out["committed"] += self.cross(left, po[3], currency)
            out["invoiced"] += self.cross(billed, po[3], currency)
            out["accrued"] += self.cross(self.accrual(po, month), po[3], currency)
        return out

    def spend(self, line_id: str, month: int) -> dict[str, int]:
        """A line's plan for the year, committed, invoiced, accrued and remaining, reporting cents at the plan rate."""
        currency = self.by_id[line_id]["currency"]
        out = {"plan": sum(self.month[line_id])}
        out |= {k: to_reporting(v, currency) for k, v in self.spend_line(line_id, month).items()}
        out["remaining"] = out["plan"] - out["committed"] - out["invoiced"]
        return out

    def spend_by(self, by: str, month: int) -> dict[str, dict[str, int]]:
        """The spend figures by line ID, team or region at fiscal month `month`'s end."""
        out: dict[str, dict[str, int]] = {}
        for team, ln in self.lines:
            key = {"line": ln["line_id"], "team": team, "region": ln["region"]}[by]
            sums = out.setdefault(key, dict.fromkeys(SPEND_MEASURES, 0))
            for name, value in self.spend(ln["line_id"], month).items():
                sums[name] += value
        return out

    def accruals(self, month: int) -> dict[str, int]:
        """Each PO's accrual at `month`'s end (its currency), the POs accruing nothing left out."""
        return {po[0]: a for po in PURCHASE_ORDERS if (a := self.accrual(po, month))}

    def accrued_off_lines(self, month: int) -> int:
        """The accrual of the POs no line (or more than one) matches, each PO to reporting cents."""
        return sum(to_reporting(self.accrual(po, month), po[3]) for po in PURCHASE_ORDERS if self.po_line(po) is None)


SPEND_MEASURES = ("plan", "committed", "invoiced", "accrued", "remaining")
EXPECTED = Expected()


# --- the scenario, through the real service ---------------------------------------------------------------


def as_json(ln: dict[str, Any]) -> dict[str, Any]:
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in ln.items()}


def cells_of(ln: dict[str, Any], row: int) -> dict[str, Any]:
    return {f"{SCHEMA[name].letter}{row}": value for name, value in ln.items()}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("oracle")
    fake_server = SheetsFake.serve()
    fake = fake_server.__enter__()
    from sync_service.integrations.google.client import GoogleSettings, client

    gc = client(GoogleSettings(credentials_info=fake.service_account_info(), api_base=fake.base_url, backoff=0.01))
    master_sheet = gc.create("Marketing master budget")
    database = folder / "oracle.db"
    env = service_env(f"sqlite:///{database}")
    env |= {
        "PLANSHEET_GOOGLE_CREDENTIALS_JSON": json.dumps(fake.service_account_info()),
        "PLANSHEET_GOOGLE_API_BASE": fake.base_url,
        "PLANSHEET_GOOGLE_BACKOFF": "0.01",
        "PLANSHEET_GOOGLE_MASTER_SPREADSHEET_ID": master_sheet.id,
    }
    init(env)
    finance = token(env, "fiona", "finance")
    marketers = {team: token(env, f"m-{team}", "marketer", team) for team in FINAL}
    process, base = start(env)
    try:

        def submit(team: str, lines: list[dict[str, Any]], based_on: int | None = None) -> int:
            body: dict[str, Any] = {"team": team, "lines": [as_json(x) for x in lines]}
            if based_on is not None:
                body["based_on"] = {"submission": based_on}
            status, answer = call(base, marketers[team], "POST", "/api/v1/submissions", body)
            assert status == 201, answer
            return answer["id"]

        def approve(sid: int) -> None:
            status, answer = call(base, finance, "POST", f"/api/v1/submissions/{sid}/approve", {})
            assert status == 200, answer

        # EMEA-ENTERPRISE plans in the workbook: LibreOffice inserts two rows inside the table, typed there.
        source = build_template(SCHEMA, "EMEA", folder / "plan-EMEA.xlsx", lines=EMEA_ENT, spare_rows=0, based_on=0)
        cells: dict[str, Any] = {}
        for k, ln in enumerate(EMEA_ENT_INSERTED):
            cells |= cells_of(ln, 3 + k)  # above the second line
        plan_xlsx = insert_rows_in_libreoffice(source, folder / "filled" / "plan-EMEA.xlsx", 3, 2, cells)
        status, answer = upload(
            base, marketers["EMEA-ENTERPRISE"], "/api/v1/submissions", plan_xlsx.read_bytes(), team="EMEA-ENTERPRISE"
        )
        assert status == 201, answer
        approve(answer["id"])
        approve(submit("EMEA-SMB", EMEA_SMB))
        first = submit("NA-ENTERPRISE", NA_V1)
        approve(first)
        # The budget is locked here (the organisation file's allocations); the plans move on after it.
        status, answer = call(base, finance, "POST", "/api/v1/baselines", {"name": "FY2027 budget"})
        assert status == 201, answer
        second = submit("NA-ENTERPRISE", NA_V2, based_on=first)
        stale = submit("NA-ENTERPRISE", NA_STALE, based_on=first)  # overtaken when the second is approved
        approve(second)
        approve(submit("APAC-MIDMARKET", APAC))
        bad = submit("LATAM-SMB", LATAM_BAD)
        assert call(base, finance, "POST", f"/api/v1/submissions/{bad}/reject", {"comment": "too small"})[0] == 200
        approve(submit("LATAM-SMB", LATAM))  # after a rejection the team still has no approved plan
        status, answer = call(
            base, finance, "PUT", "/api/v1/allocations", {"allocations": ALLOCATIONS, "replace": True}
        )
        assert status == 200, answer
        export = io.StringIO()
        writer = csv.writer(export)
        writer.writerow(["Line ID", "Campaign code", "Amount", "Currency", "Posting date"])
        writer.writerows(ACTUALS)
        status, answer = upload(base, finance, "/api/v1/actuals", export.getvalue().encode(), filename="actuals.csv")
        assert status == 201, answer
        assert answer["unmatched"] == [] and answer["spread"], answer
        imports = import_results(base, finance)
        # The Q1 reforecast: finance opens it, which closes (locks) its months; every team's template is its reforecast.
        through = MONTHS[REFORECAST_THROUGH - 1]
        cycle = {"name": "Q1 reforecast", "through": through, "deadline": DEADLINE}
        assert call(base, finance, "POST", "/api/v1/cycles", cycle)[0] == 201
        status, answer = call(base, finance, "GET", f"/api/v1/submissions/{stale}")
        assert answer["status"] == "stale", answer
        closed = close_a_month(base, finance)
        for team, lines in NEXT_PLANS.items():  # next year's plans, each into next year's master
            body = {"team": team, "lines": [as_json(x) for x in lines]}
            status, answer = call(base, marketers[team], "POST", f"/api/v1/submissions?year={NEXT}", body)
            assert status == 201, answer
            approve(answer["id"])
        yield {
            "base": base,
            "finance": finance,
            "marketers": marketers,
            "env": env,
            "database": database,
            "folder": folder,
            "gc": gc,
            "master_sheet": master_sheet.id,
            "plan_xlsx": plan_xlsx,
            "imports": imports,
            "closed": closed,
        }
    finally:
        stop(process)
        fake_server.__exit__(None, None, None)


def csv_of(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def import_results(base: str, finance: str) -> list[dict[str, Any]]:
    """The CRM's report, a newer one for March, marketing automation's April (sent twice): the answers."""
    answers = []
    for rows, query in (
        (RESULTS_A, "preset=salesforce&source=salesforce"),
        (RESULTS_B, "preset=salesforce&source=salesforce"),
        (RESULTS_C, "preset=marketo&source=marketo&month=Apr%202026"),
        (RESULTS_C, "preset=marketo&source=marketo&month=Apr%202026"),
    ):
        status, answer = upload(base, finance, f"/api/v1/outcomes?{query}", csv_of(rows))
        assert status in (200, 201), answer
        answers.append((status, answer))
    (_, a), (_, b), (_, c), (again, same) = answers
    assert [r["crm_campaign_id"] for r in a["unmatched"]] == ["NOPE-9"] and a["rows"] == 4, a
    assert [s["row"] for s in a["skipped"]] == [9], a  # the totals row (blank rows are not rows)
    assert b["replaces"] == [{"import": a["id"], "months": ["m02"]}], b
    assert (again, same["id"], same["unchanged"]) == (200, c["id"], True), same
    return [a, b, c]


def close_a_month(base: str, finance: str) -> dict[str, Any]:
    """Import the POs and their invoices, close m01's accrual, then a late invoice dated in m01: the close's answer."""
    status, answer = upload(
        base, finance, "/api/v1/purchase-orders", csv_of([PO_HEADER, *PURCHASE_ORDERS]), filename="po.csv"
    )
    assert status == 201, answer
    assert [u["po_number"] for u in answer["unmatched"]] == ["PO-X1"], answer
    assert [(a["po_number"], a["teams"]) for a in answer["ambiguous"]] == [("PO-X2", ["EMEA-SMB", "NA-ENTERPRISE"])]
    assert answer["over_plan"] == [], answer
    status, answer = upload(base, finance, "/api/v1/invoices", csv_of([INVOICE_HEADER, *INVOICES]), filename="inv.csv")
    assert status == 201, answer
    assert [u["invoice_number"] for u in answer["unmatched"]] == ["INV-Z1"], answer
    over = {po[0]: EXPECTED.po_invoiced(po, INVOICES) - cents(po[2]) for po in PURCHASE_ORDERS}
    assert [(o["po_number"], cents(o["over_by"])) for o in answer["over_po"]] == [
        (n, c) for n, c in over.items() if c > 0
    ], answer
    status, closed = call(base, finance, "POST", f"/api/v1/accruals/{MONTHS[0]}/close", {})
    assert status == 200 and closed["closed"] is True, closed
    status, answer = call(base, finance, "POST", f"/api/v1/accruals/{MONTHS[0]}/close", {})
    assert status == 409, answer  # a closed month's accrual never changes
    status, answer = upload(
        base, finance, "/api/v1/invoices", csv_of([INVOICE_HEADER, *LATE_INVOICES]), filename="late.csv"
    )
    assert status == 201 and answer["unmatched"] == [], answer
    return closed


def get(scenario: dict[str, Any], path: str) -> Any:
    status, body = call(scenario["base"], scenario["finance"], "GET", path)
    assert status == 200, body
    return body


# --- the API -------------------------------------------------------------------------------------------------


def next_year_planned(by: str, period: str) -> dict[tuple[str, str], int]:
    """Next year's planned spend by `by` and period, each line's each month at next year's plan rate, to the cent."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for lines in NEXT_PLANS.values():
        for ln in lines:
            for j, m in enumerate(MONTHS):
                label = {"month": m, "quarter": f"Q{j // 3 + 1}", "year": f"FY{NEXT}"}[period]
                out[ln.get(by) or "", label] += half_up(
                    Fraction(cents(ln.get(m))) * Fraction(NEXT_RATES[ln["currency"]])
                )
    return dict(out)


@pytest.mark.parametrize("period", ["month", "quarter", "year"])
@pytest.mark.parametrize("by", ["region", "channel", "currency"])
def test_api_rollup_of_next_year_equals_the_oracle_and_this_years_is_untouched(
    scenario: dict[str, Any], by: str, period: str
) -> None:
    body = get(scenario, f"/api/v1/rollup?by={by}&period={period}&year={NEXT}")
    got = {(r[by], r["period"]): r["cents"] for r in body["rows"] if r["cents"]}
    assert got == {k: v for k, v in next_year_planned(by, period).items() if v}
    this_year = get(scenario, f"/api/v1/rollup?by={by}&period={period}")
    assert {(r[by], r["period"]): r["cents"] for r in this_year["rows"] if r["cents"]} == {
        k: v for k, v in EXPECTED.planned(by, period).items() if v
    }


def expected_year_over_year(period: str) -> dict[tuple[str, str], dict[str, int | None]]:
    """Next year's plan against this year's plan, actual and latest estimate, by region and period."""
    plan = next_year_planned("region", period)
    this_year = expected_budget(period)  # this year's plan, actual and latest estimate by region
    label = {SCHEMA.calendar.label: f"FY{NEXT}"}  # a year's period is matched to the other year's in its place
    want: dict[tuple[str, str], dict[str, int | None]] = {}
    for (region, when), figures in this_year.items():
        key = (region, label.get(when, when))
        want[key] = {"plan": plan.get(key, 0), "last_plan": figures["plan"], "last_actual": figures["actual"],
                     "last_estimate": figures["estimate"]}  # fmt: skip
    for key, cents_ in plan.items():
        want.setdefault(key, {"plan": cents_, "last_plan": 0, "last_actual": 0, "last_estimate": 0})
    return want


def year_over_year_rows(rows: list[list[Any]]) -> dict[str, list[int | None]]:
    """{region: [plan, last plan, last actual, last estimate] in cents} of a Year over year table's rows."""
    return {
        str(row[0]): [None if v in (None, "") else money_cell(v) for v in row[1:5]]
        for row in rows
        if row and row[0] in CFG.regions
    }


def expected_year_over_year_rows() -> dict[str, list[int | None]]:
    keys = ("plan", "last_plan", "last_actual", "last_estimate")
    return {region: [f[k] for k in keys] for (region, _), f in expected_year_over_year("year").items()}


@pytest.mark.parametrize("period", ["quarter", "year"])
def test_api_year_over_year_equals_the_oracle_of_both_years(scenario: dict[str, Any], period: str) -> None:
    body = get(scenario, f"/api/v1/year-over-year?year={NEXT}&by=region&period={period}")
    assert (body["year"], body["against"]) == (f"FY{NEXT}", SCHEMA.calendar.label)
    assert {(r["region"], r["period"]): r["cents"] for r in body["rows"]} == expected_year_over_year(period)


@pytest.mark.libreoffice
def test_next_years_master_workbook_equals_the_oracle_as_written_and_recalculated(
    scenario: dict[str, Any], soffice: str
) -> None:
    path = download(scenario, f"/api/v1/master?format=xlsx&year={NEXT}", "master-next.xlsx")
    planned = next_year_planned("region", "quarter")
    done = recalculate(path, scenario["folder"] / "recalculated-next")
    assert cached_differences(path, done) == []
    for book in (path, done):  # as written (what a preview reads) and after LibreOffice recalculates
        rows = variance_sheet(book)
        for region in CFG.regions:
            row = rows[region]
            assert [money_cell(v) for v in row[1:5]] == [next_allocation(region, q) for q in QUARTER_MONTHS], region
            assert [money_cell(v) for v in row[5:9]] == [planned.get((region, q), 0) for q in QUARTER_MONTHS], region
        assert year_over_year_rows(sheet_values(book, "Year over year")) == expected_year_over_year_rows(), book.name


def test_next_years_dashboard_pages_equal_the_oracle(scenario: dict[str, Any]) -> None:
    client = dashboard(scenario)
    page = client.get(f"/master?year={NEXT}").get_data(as_text=True)
    planned = next_year_planned("region", "quarter")
    for region in CFG.regions:
        row = re.search(rf'<tr data-region="{region}">(.*?)</tr>', page, re.S).group(1)
        values = [int(v) if v else None for v in re.findall(r'data-cents="(-?\d*)"', row)]  # exact, as shown
        assert values[0::2][:4] == [planned.get((region, q), 0) for q in QUARTER_MONTHS], region
        assert values[1::2][:4] == [next_allocation(region, q) or None for q in QUARTER_MONTHS], region
    page = client.get(f"/year-over-year?year={NEXT}&by=region").get_data(as_text=True)
    shown = {}
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.S).group(1)  # the regions; the totals row is in <tfoot>
    for region, cells in re.findall(r'<tr data-key="([^"]+)">(.*?)</tr>', body, re.S):
        values = re.findall(r'data-cents="(-?\d*)"', cells)
        shown[region] = [int(v) if v else None for v in values[0:4]]
    assert shown == expected_year_over_year_rows()


def test_next_years_google_master_push_equals_the_oracle(scenario: dict[str, Any]) -> None:
    def push(year: int | None) -> None:
        path = "/api/v1/gsheets/master/push" + (f"?year={year}" if year else "")
        status, body = call(scenario["base"], scenario["finance"], "POST", path, {}, wait=30)
        assert status == 200 and body["status"] == "succeeded", body

    push(NEXT)
    try:
        book = scenario["gc"].open_by_key(scenario["master_sheet"])
        unformatted = gspread.utils.ValueRenderOption.unformatted
        got: dict[tuple[str, str], int] = defaultdict(int)
        for r in book.worksheet("Rollup").get_all_records(value_render_option=unformatted):
            got[r["region"], r["period"]] += money_cell(r["amount"])
        assert {k: v for k, v in got.items() if v} == {
            k: v for k, v in next_year_planned("region", "quarter").items() if v
        }
        grid = book.worksheet("Year over year").get_all_values(value_render_option=unformatted)
        assert year_over_year_rows(grid) == expected_year_over_year_rows()
    finally:
        push(None)  # the master sheet shows this year again for the other tests


@pytest.mark.parametrize("period", ["month", "quarter", "year"])
@pytest.mark.parametrize("by", ["region", "business_unit", "channel", "currency", "team"])
def test_api_rollup_equals_the_oracle(scenario: dict[str, Any], by: str, period: str) -> None:
    body = get(scenario, f"/api/v1/rollup?by={by}&period={period}")
    got = {(r[by], r["period"]): r["cents"] for r in body["rows"] if r["cents"]}
    assert got == {k: v for k, v in EXPECTED.planned(by, period).items() if v}


def test_api_master_lines_carry_the_imported_actuals(scenario: dict[str, Any]) -> None:
    body = get(scenario, "/api/v1/master")
    assert {ln["line_id"] for ln in body["lines"]} == set(EXPECTED.by_id)  # the rows inserted in LibreOffice too
    assert {ln["line_id"]: ln["actual"] for ln in body["lines"]} == EXPECTED.actual_line
    # POs are imported: each line's committed spend is its open PO balance (line currency), not what its plan typed.
    assert {ln["line_id"]: ln["committed"] for ln in body["lines"]} == EXPECTED.open_line


def test_api_variance_and_allocations_equal_the_oracle(scenario: dict[str, Any]) -> None:
    body = get(scenario, f"/api/v1/variance?by=region&as_of={AS_OF}")
    rows = {r["region"]: r for r in body["rows"]}
    for region in rows:
        assert cents(rows[region]["planned_to_date"]) == EXPECTED.to_date(region), region
        assert cents(rows[region]["actual"]) == EXPECTED.region_sum(EXPECTED.actual, region), region
        year = sum(EXPECTED.alloc[region, q] for q in QUARTER_MONTHS)
        assert cents(rows[region]["allocation"]) == year, region
        committed = EXPECTED.region_sum(EXPECTED.committed, region)
        assert cents(rows[region]["committed"]) == committed, region
        left = year - committed - EXPECTED.region_sum(EXPECTED.actual, region)
        assert cents(rows[region]["remaining"]) == left, region
    committed = get(scenario, "/api/v1/rollup?by=region&measure=committed&period=year")
    got = defaultdict(int)
    for r in committed["rows"]:
        got[r["region"]] += r["cents"]
    assert {k: v for k, v in got.items() if v} == {
        r: c for r in CFG.regions if (c := EXPECTED.region_sum(EXPECTED.committed, r))
    }
    allocations = {
        (a["region"], a["quarter"], a["channel"]): a["cents"]
        for a in get(scenario, "/api/v1/allocations")["allocations"]
    }
    assert allocations["EMEA", "Q1", "*"] == 12_345_678
    assert allocations["EMEA", "Q2", "Events"] == 500_055


BASELINE = {"EMEA-ENTERPRISE": FINAL["EMEA-ENTERPRISE"], "EMEA-SMB": EMEA_SMB, "NA-ENTERPRISE": NA_V1}


def expected_budget(period: str) -> dict[tuple[str, str], dict[str, int | None]]:
    """By (region, period): budget, plan, actual, and the allocation then and now, in reporting cents."""
    budget: dict[tuple[str, str], int] = defaultdict(int)
    for lines in BASELINE.values():
        for ln in lines:
            for j, m in enumerate(MONTHS):
                label = f"Q{j // 3 + 1}" if period == "quarter" else "FY2027"
                budget[ln["region"], label] += to_reporting(cents(ln.get(m)), ln["currency"])
    actual: dict[tuple[str, str], int] = defaultdict(int)
    for line_id in EXPECTED.by_id:
        for j, value in enumerate(EXPECTED.actual_months(line_id)):
            label = f"Q{j // 3 + 1}" if period == "quarter" else "FY2027"
            actual[EXPECTED.by_id[line_id]["region"], label] += value
    plan = EXPECTED.planned("region", period)
    estimate: dict[tuple[str, str], int] = defaultdict(int)
    for line_id in EXPECTED.by_id:
        for j, value in enumerate(EXPECTED.estimate(line_id)):
            label = f"Q{j // 3 + 1}" if period == "quarter" else "FY2027"
            estimate[EXPECTED.by_id[line_id]["region"], label] += value
    set_cells = {(a["region"], a["quarter"]) for a in ALLOCATIONS}
    out: dict[tuple[str, str], dict[str, int | None]] = {}
    for key in set(budget) | set(plan):
        region, label = key
        quarters = [label] if period == "quarter" else list(QUARTER_MONTHS)
        org = SCHEMA.config.allocations.get(region, {})
        out[key] = {
            "budget": budget.get(key, 0),
            "plan": plan.get(key, 0),
            "estimate": estimate[key],
            "actual": actual[key],
            "budget_allocation": sum(int(org[q] * 100) for q in quarters) if all(q in org for q in quarters) else None,
            "allocation": sum(EXPECTED.alloc[region, q] for q in quarters)
            if any((region, q) in set_cells for q in quarters)
            else None,  # no allocation set is not an allocation of zero
        }
    return out


@pytest.mark.parametrize("period", ["quarter", "year"])
def test_api_budget_against_plan_and_actual_equals_the_oracle(scenario: dict[str, Any], period: str) -> None:
    """The baseline locked after NA's first plan keeps that budget; the plan, allocations and actuals are today's."""
    body = get(scenario, f"/api/v1/budget?by=region&period={period}")
    assert body["baseline"]["name"] == "FY2027 budget" and body["actual_spend_by_month"]
    assert body["closed_months"] == MONTHS[:REFORECAST_THROUGH]
    want = expected_budget(period)
    rows = {(r["region"], r["period"]): r for r in body["rows"]}
    assert set(rows) == set(want)
    for key, row in rows.items():
        w = want[key]
        assert row["cents"] == {k: w[k] for k in ("budget", "plan", "estimate", "actual")}, key
        assert (cents(row["budget_allocation"]) if row["budget_allocation"] else None) == w["budget_allocation"], key
        assert (cents(row["allocation"]) if row["allocation"] else None) == w["allocation"], key


@pytest.mark.libreoffice
@pytest.mark.parametrize("read", ["as written", "recalculated"])
def test_the_master_workbook_budget_sheet_equals_the_oracle(scenario: dict[str, Any], soffice: str, read: str) -> None:
    grid = sheet_values(master_books(scenario)[read], "Budget")
    start = next(i for i, r in enumerate(grid) if r and r[0] == "By region") + 1
    header = list(grid[start])
    got = {}
    for row in grid[start + 1 :]:
        if not row or row[0] in ("", None):
            break
        got[row[0], row[1]] = dict(zip(header, row, strict=False))
    want = {**expected_budget("quarter"), **expected_budget("year")}
    assert set(got) == set(want)
    for key, w in want.items():
        for label, name in (
            ("Budget", "budget"),
            ("Plan", "plan"),
            ("Latest estimate", "estimate"),
            ("Actual", "actual"),
            ("Allocation then", "budget_allocation"),
            ("Allocation now", "allocation"),
        ):
            assert from_units(got[key][label], "money") == w[name], (key, label)
        assert from_units(got[key]["Plan vs budget"], "money") == w["plan"] - w["budget"], key
        assert from_units(got[key]["Estimate vs budget"], "money") == w["estimate"] - w["budget"], key


# --- workbooks, recalculated by LibreOffice -------------------------------------------------------------------


def download(scenario: dict[str, Any], path: str, name: str) -> Path:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        scenario["base"] + path, headers={"Authorization": f"Bearer {scenario['finance']}"}
    )
    try:
        answer = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{path} answered {exc.code}: {exc.read()[:500]!r}") from None
    with answer:
        target = scenario["folder"] / "downloads" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(answer.read())
    return target


def master_books(scenario: dict[str, Any]) -> dict[str, Path]:
    """The service's master workbook as written and recalculated by LibreOffice, once for the tests of its sheets."""
    if "master_books" not in scenario:
        path = download(scenario, "/api/v1/master?format=xlsx", "master-sheets.xlsx")
        done = recalculate(path, scenario["folder"] / "recalculated-sheets")
        scenario["master_books"] = {"as written": path, "recalculated": done}
    return scenario["master_books"]


def money_cell(value: Any) -> int:
    assert isinstance(value, int | float), value
    return round(value * 100)


def variance_sheet(path: Path) -> dict[str, list[Any]]:
    return {row[0]: row for row in sheet_values(path, "Variance")[3:] if row and row[0] in CFG.regions}


@pytest.mark.libreoffice
def test_the_service_master_workbook_equals_the_oracle(scenario: dict[str, Any], soffice: str) -> None:
    path = download(scenario, f"/api/v1/master?format=xlsx&as_of={AS_OF}", "master.xlsx")
    done = recalculate(path, scenario["folder"] / "recalculated")
    assert cached_differences(path, done) == []
    planned = EXPECTED.planned("region", "quarter")
    for book in (path, done):  # as written (what a preview reads) and after LibreOffice recalculates
        rows = variance_sheet(book)
        for region in CFG.regions:
            row = rows[region]
            assert [money_cell(v) for v in row[1:5]] == [EXPECTED.alloc[region, q] for q in QUARTER_MONTHS], region
            assert [money_cell(v) for v in row[5:9]] == [planned.get((region, q), 0) for q in QUARTER_MONTHS], region
            assert money_cell(row[13]) == EXPECTED.to_date(region), region
            assert money_cell(row[14]) == EXPECTED.region_sum(EXPECTED.committed, region), region
            assert money_cell(row[15]) == EXPECTED.region_sum(EXPECTED.actual, region), region
        totals = next(r for r in sheet_values(book, "Variance") if r and r[0] == "Total")
        assert [money_cell(v) for v in totals[5:9]] == [
            sum(planned.get((region, q), 0) for region in CFG.regions) for q in QUARTER_MONTHS
        ], book.name


@pytest.mark.libreoffice
def test_plansheet_consolidate_of_the_same_plans_gives_the_same_planned_figures(
    scenario: dict[str, Any], soffice: str, tmp_path: Path
) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "plan-EMEA-ENTERPRISE.xlsx").write_bytes(scenario["plan_xlsx"].read_bytes())
    for team, lines in FINAL.items():
        if team != "EMEA-ENTERPRISE":
            build_template(SCHEMA, lines[0]["region"], plans / f"plan-{team}.xlsx", lines=lines, spare_rows=0)
    out = tmp_path / "master.xlsx"
    done = subprocess.run(
        [str(Path(__import__("sys").executable).parent / "plansheet"), "consolidate", str(plans), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    done = recalculate(out, tmp_path / "recalculated")
    assert cached_differences(out, done) == []
    planned = EXPECTED.planned("region", "quarter")
    for book in (out, done):
        rows = variance_sheet(book)
        for region in CFG.regions:
            assert [money_cell(v) for v in rows[region][5:9]] == [planned.get((region, q), 0) for q in QUARTER_MONTHS]


@pytest.mark.libreoffice
def test_each_team_template_summary_equals_the_oracle(scenario: dict[str, Any], soffice: str) -> None:
    for team, lines in FINAL.items():
        region = lines[0]["region"]
        path = download(scenario, f"/api/v1/templates/{team}.xlsx", f"plan-{team}.xlsx")
        done = recalculate(path, scenario["folder"] / "templates")
        assert cached_differences(path, done) == [], team
        for book in (path, done):  # as written (what a preview reads) and after LibreOffice recalculates
            summary = {row[0]: row[1:6] for row in sheet_values(book, "Summary") if row and row[0]}
            # A cycle is open: the template is the team's reforecast, whose Summary is its latest estimate.
            assert [money_cell(v) for v in summary["Total planned"][:4]] == EXPECTED.team_estimate_quarters(team), (
                team,
                book.name,
            )
            assert [money_cell(v) for v in summary["Allocation"][:4]] == [
                EXPECTED.alloc[region, q] for q in QUARTER_MONTHS
            ], team


# --- the dashboard -----------------------------------------------------------------------------------------------


def dashboard(scenario: dict[str, Any]) -> Any:
    app = create_app({"DATABASE_URL": f"sqlite:///{scenario['database']}", "TESTING": True, "SECRET_KEY": "oracle"})
    client = app.test_client()
    with app.extensions[STORE].transaction() as session:
        user = session.query(User).filter_by(name="fiona").one()
        user_id = user.id
        sid = f"oracle-{time.monotonic_ns()}"
        session.add(WebSession(id=sid, user_id=user_id))  # the record a login writes
    with client.session_transaction() as sess:
        sess["user_id"], sess["at"], sess["sid"] = user_id, int(time.time()), sid
        sess["pw"] = __import__("hashlib").sha256(b"").hexdigest()[:16]
    return client


def amount_cells(html: str, pattern: str) -> list[int]:
    return [cents(v.replace(",", "")) for v in re.findall(pattern, html)]


def test_the_dashboard_pages_equal_the_oracle(scenario: dict[str, Any]) -> None:
    client = dashboard(scenario)
    page = client.get("/master").get_data(as_text=True)
    planned = EXPECTED.planned("region", "quarter")
    for region in CFG.regions:
        row = re.search(rf'<tr data-region="{region}">(.*?)</tr>', page, re.S).group(1)
        values = [int(v) if v else None for v in re.findall(r'data-cents="(-?\d*)"', row)]  # exact, as shown
        assert values[0::2][:4] == [planned.get((region, q), 0) for q in QUARTER_MONTHS], region
        assert values[1::2][:4] == [EXPECTED.alloc[region, q] or None for q in QUARTER_MONTHS], region
    for team in FINAL:
        page = client.get(f"/teams/{team}").get_data(as_text=True)
        foot = re.search(r"<tfoot>(.*?)</tfoot>", page, re.S).group(1)
        planned_total, actual_total = (int(v) for v in re.findall(r'data-cents="(-?\d+)"', foot))
        ids = [ln["line_id"] for ln in FINAL[team]]
        assert planned_total == sum(sum(EXPECTED.month[i]) for i in ids), team
        assert actual_total == sum(EXPECTED.actual[i] for i in ids), team
    page = client.get("/actuals?by=region").get_data(as_text=True)
    closed = sum(1 for end in MONTH_ENDS if end < dt.date.today())  # the page is as of today
    for region in CFG.regions:
        row = re.search(rf'<tr data-key="{region}">(.*?)</tr>', page, re.S)
        assert row, region
        to_date, actual = (int(v) for v in re.findall(r'data-cents="(-?\d+)"', row.group(1))[:2])
        assert to_date == EXPECTED.to_date(region, closed), region
        assert actual == EXPECTED.region_sum(EXPECTED.actual, region), region


# --- Google Sheets ----------------------------------------------------------------------------------------------


def test_the_google_master_sheet_equals_the_oracle(scenario: dict[str, Any]) -> None:
    status, body = call(scenario["base"], scenario["finance"], "POST", "/api/v1/gsheets/master/push", {}, wait=30)
    assert status == 200 and body["status"] == "succeeded", body
    book = scenario["gc"].open_by_key(scenario["master_sheet"])
    rollup = book.worksheet("Rollup").get_all_records(value_render_option=gspread.utils.ValueRenderOption.unformatted)
    got: dict[tuple[str, str], int] = defaultdict(int)
    for r in rollup:
        got[r["region"], r["period"]] += money_cell(r["amount"])
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in EXPECTED.planned("region", "quarter").items() if v}
    header, *master = book.worksheet("Master").get_all_values(
        value_render_option=gspread.utils.ValueRenderOption.unformatted
    )
    line_id, actual_spend = header.index("Line ID"), header.index("Actual spend")
    assert {r[line_id]: money_cell(r[actual_spend] or 0) for r in master} == EXPECTED.actual_line
    committed_spend = header.index("Committed spend")
    assert {r[line_id]: money_cell(r[committed_spend] or 0) for r in master} == EXPECTED.open_line
    variance = book.worksheet("Variance").get_all_records(
        value_render_option=gspread.utils.ValueRenderOption.unformatted
    )
    actual: dict[str, int] = defaultdict(int)
    committed: dict[str, int] = defaultdict(int)
    for r in variance:
        actual[r["region"]] += money_cell(r["actual"])
        committed[r["region"]] += money_cell(r["committed"])
    assert dict(actual) == {r: EXPECTED.region_sum(EXPECTED.actual, r) for r in actual}
    assert dict(committed) == {r: EXPECTED.region_sum(EXPECTED.committed, r) for r in committed}
    assert set(actual) == {ln["region"] for _, ln in EXPECTED.lines}


# --- live functions in every host ----------------------------------------------------------------------------------


def live_calls() -> list[tuple[str, list[Any], int]]:
    """(function, arguments, expected cents) for every region."""
    out = []
    planned = EXPECTED.planned("region", "quarter")
    for region in CFG.regions:
        year = sum(v for (r, _), v in planned.items() if r == region)
        out.append(("PS_PLANNED", [region], year))
        out += [("PS_PLANNED", [region, q], planned.get((region, q), 0)) for q in QUARTER_MONTHS]
        out.append(("PS_ACTUAL", [region], EXPECTED.region_sum(EXPECTED.actual, region)))
        if EXPECTED.alloc[region, "Q1"]:
            out.append(("PS_BUDGET", [region, "Q1"], EXPECTED.alloc[region, "Q1"]))
        variance = EXPECTED.to_date(region) - EXPECTED.region_sum(EXPECTED.actual, region)
        out.append(("PS_LIVE_VARIANCE", [region, AS_OF.isoformat()], variance))
        if all(EXPECTED.alloc[region, q] for q in QUARTER_MONTHS):
            left = sum(EXPECTED.alloc[region, q] for q in QUARTER_MONTHS)
            left -= EXPECTED.region_sum(EXPECTED.committed, region) + EXPECTED.region_sum(EXPECTED.actual, region)
            out.append(("PS_REMAINING_LIVE", [region], left))
    # What the spend bought: results, unit costs and ROI against the plan and the targets (where there are any).
    for period, arg in (("Q1", "Q1"), ("FY2027", "FY")):
        figures = EXPECTED.performance("region", period)
        for region, f in figures.items():
            for measure in ("leads", "pipeline", "cost_per_lead", "pipeline_roi", "roi"):
                for name, j in (("PS_RESULT", 0), ("PS_EXPECTED", 1), ("PS_TARGET", 2)):
                    value = f[measure][j]
                    if value is not None:
                        cell = round(float(value) * 100) if KINDS[measure] == "ratio" else value
                        out.append((name, [measure, region, arg], cell))
    # The latest estimate and the budget baseline.
    baseline: dict[str, list[int]] = defaultdict(lambda: [0] * 12)
    for lines in BASELINE.values():
        for ln in lines:
            for j, m in enumerate(MONTHS):
                baseline[ln["region"]][j] += to_reporting(cents(ln.get(m)), ln["currency"])
    for region in CFG.regions:
        out.append(("PS_ESTIMATE", [region], EXPECTED.region_estimate(region, list(range(12)))))
        out.append(("PS_ESTIMATE", [region, "Q1"], EXPECTED.region_estimate(region, [0, 1, 2])))
        out.append(("PS_ESTIMATE", [region, "m02"], EXPECTED.region_estimate(region, [1])))
        out.append(("PS_BASELINE", [region], sum(baseline[region])))
        out.append(("PS_BASELINE", [region, "Q2"], sum(baseline[region][3:6])))
    # Spend control: the open PO balance, what was invoiced, the month-end accrual (no month: the one being closed).
    now, closed = EXPECTED.spend_by("region", ACCRUAL_CLOSED), EXPECTED.spend_by("region", 0)
    now |= EXPECTED.spend_by("team", ACCRUAL_CLOSED)
    closed |= EXPECTED.spend_by("team", 0)
    for scope in (*CFG.regions, *FINAL):
        out.append(("PS_COMMITTED", [scope], now[scope]["committed"]))
        out.append(("PS_INVOICED", [scope], now[scope]["invoiced"]))
        out.append(("PS_ACCRUED", [scope], now[scope]["accrued"]))
        out.append(("PS_ACCRUED", [scope, MONTHS[ACCRUAL_CLOSED]], now[scope]["accrued"]))
        out.append(("PS_ACCRUED", [scope, MONTHS[0]], closed[scope]["accrued"]))
    events = [i for i, ln in EXPECTED.by_id.items() if (ln["region"], ln["channel"]) == ("EMEA", "Events")]
    out.append(("PS_COMMITTED", ["EMEA", "Events"], sum(EXPECTED.spend(i, 0)["committed"] for i in events)))
    out.append(("PS_ACCRUED", ["EMEA", MONTHS[0], "Events"], sum(EXPECTED.spend(i, 0)["accrued"] for i in events)))
    out.append(("PS_INVOICED", ["EMEA-ENTERPRISE", "Content", "EE3-CODE"], EXPECTED.spend("EE-3", 0)["invoiced"]))
    team = "EMEA-SMB"  # a team's own results, the shared campaign code's share
    mine = EXPECTED.performance("region", "Q1", teams={team})["EMEA"]
    out.append(("PS_RESULT", ["leads", team, "Q1"], mine["leads"][0]))
    # Next year, named by the cell's year argument (as a number, and as FY2028), beside this year's in one batch.
    next_planned = next_year_planned("region", "quarter")
    for region in CFG.regions:
        year = sum(v for (r, _), v in next_planned.items() if r == region)
        out.append(("PS_PLANNED", [region, "FY", None, None, NEXT], year))
        out.append(("PS_PLANNED", [region, "Q1", None, None, f"FY{NEXT}"], next_planned.get((region, "Q1"), 0)))
        out.append(("PS_BUDGET", [region, "Q2", None, NEXT], next_allocation(region, "Q2")))
    return out


def test_live_functions_over_http_equal_the_oracle(scenario: dict[str, Any]) -> None:
    calls = live_calls()
    body = {"calls": [{"name": n, "args": [[[a]] for a in args]} for n, args, _ in calls]}
    status, answer = call(scenario["base"], scenario["finance"], "POST", "/api/v1/functions:batch", body)
    assert status == 200, answer
    assert [money_cell(r["result"][0][0]) for r in answer["results"]] == [c for _, _, c in calls]
    # No results cover Q2 for won deals: no data is #N/A, never 0.
    body = {"calls": [{"name": "PS_RESULT", "args": [[["won"]], [["EMEA"]], [["Q2"]]]}]}
    status, answer = call(scenario["base"], scenario["finance"], "POST", "/api/v1/functions:batch", body)
    assert status == 200 and "result" not in answer["results"][0], answer
    assert "#N/A" in json.dumps(answer["results"][0]), answer


def test_live_functions_through_xlwings_equal_the_oracle(
    scenario: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    xlwings_windows: Any,  # noqa: F811
) -> None:
    monkeypatch.setenv("PLANSHEET_SERVICE_URL", scenario["base"])
    monkeypatch.setenv("PLANSHEET_TOKEN", scenario["finance"])
    bound = udfs()
    answers = []
    for name, args, _ in live_calls():
        spec = bound[name].__xlfunc__["args"]
        answer = call_like_excel(bound[name], *args, *[MISSING] * (len(spec) - len(args)))
        answers.append(answer[0][0] if isinstance(answer, list) else answer)  # a 1x1 array, as Excel shows it
    assert [money_cell(a) for a in answers] == [c for _, _, c in live_calls()]


@pytest.mark.node
@pytest.mark.parametrize("harness", ["officejs_harness.mjs", "apps_script_harness.js"])
def test_live_functions_in_office_js_and_apps_script_equal_the_oracle(scenario: dict[str, Any], harness: str) -> None:
    calls = [{"name": n, "args": args} for n, args, _ in live_calls()]
    done = subprocess.run(
        ["node", str(HOSTS / harness)],
        input=json.dumps({"url": scenario["base"], "token": scenario["finance"], "calls": calls}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    cells = [a if not isinstance(a, list) else a[0][0] for a in answers]
    assert [money_cell(c) for c in cells] == [c for _, _, c in live_calls()]


# --- performance: results from the CRM against spend, plan and targets ------------------------------------------

KINDS = {
    "spend": "cents",
    "leads": "count",
    "mqls": "count",
    "sals": "count",
    "opportunities": "count",
    "won": "count",
    "pipeline": "cents",
    "revenue": "cents",
    "cost_per_lead": "cents",
    "pipeline_roi": "ratio",
    "roi": "ratio",
    "crm_cost": "cents",
    "cost_difference": "cents",
    "opportunity_to_won": "ratio",
}
WHICH = ("actual", "expected", "target")
PERIODS = ("Q1", "Q2", "FY2027")
# The Performance sheet's columns, as a reader of the workbook or the Google sheet knows them.
SHEET_COLUMNS = {
    "Actual spend": ("spend", "actual"),
    "Planned spend": ("spend", "expected"),
    "Allocation": ("spend", "target"),
    "Leads": ("leads", "actual"),
    "Expected leads": ("leads", "expected"),
    "Target leads": ("leads", "target"),
    "Opportunities": ("opportunities", "actual"),
    "Won": ("won", "actual"),
    "Pipeline": ("pipeline", "actual"),
    "Expected pipeline": ("pipeline", "expected"),
    "Target pipeline": ("pipeline", "target"),
    "Revenue": ("revenue", "actual"),
    "Cost per lead": ("cost_per_lead", "actual"),
    "Expected cost per lead": ("cost_per_lead", "expected"),
    "Target cost per lead": ("cost_per_lead", "target"),
    "Pipeline per unit of spend": ("pipeline_roi", "actual"),
    "Expected pipeline per unit of spend": ("pipeline_roi", "expected"),
    "ROI (revenue less spend, over spend)": ("roi", "actual"),
    "Expected ROI": ("roi", "expected"),
    "Opportunity to won": ("opportunity_to_won", "actual"),
}


def check(got: Any, want: Any, kind: str, where: str) -> None:
    """`got` (cents, hundredths or a float ratio; None for no data) is the oracle's `want`."""
    if want is None or got is None:
        assert got is None and want is None, f"{where}: {got!r} != {want!r}"
    elif kind == "ratio":
        assert got == pytest.approx(float(want), abs=1e-6), where
    else:
        assert got == want, where


def from_units(value: Any, kind: str) -> Any:
    """A cell's value (units, a ratio or blank) in the oracle's terms."""
    if value in ("", None):
        return None
    assert isinstance(value, int | float), value
    return float(value) if kind == "ratio" else round(value * 100)


def test_the_oracle_scenario_has_results_zeros_and_no_data() -> None:
    q1 = EXPECTED.performance("region", "Q1")
    assert q1["EMEA"]["leads"][0] > 0 and q1["NA"]["leads"][0] > 0
    assert q1["LATAM"]["pipeline"][0] == 0  # results imported for LATAM: zero pipeline
    assert EXPECTED.performance("region", "Q2")["EMEA"]["won"][0] is None  # no results cover Q2: no data
    assert q1["EMEA"]["cost_per_lead"][0] is not None and q1["EMEA"]["leads"][2] is not None


def test_api_performance_equals_the_oracle(scenario: dict[str, Any]) -> None:
    for by in ("region", "channel"):
        for kind in ("quarter", "year"):
            body = get(scenario, f"/api/v1/performance?by={by}&period={kind}")
            rows = {(r[by], r["period"]): r["measures"] for r in body["rows"]}
            for period in (p for p in PERIODS if (kind == "year") == p.startswith("FY")):
                want = EXPECTED.performance(by, period)
                assert {k for k, p in rows if p == period} == set(want), (by, period)
                for key, figures in want.items():
                    got = rows[key, period]
                    for measure, kind_of in KINDS.items():
                        for j, which in enumerate(WHICH):
                            value = got[measure]["cents"][which] if kind_of == "cents" else got[measure][which]
                            value = round(value * 100) if kind_of == "count" and value is not None else value
                            check(value, figures[measure][j], kind_of, f"{by}={key} {period} {measure} {which}")
    assert body["actual_spend_by_month"] is True
    # A marketer's view is their team's results, against their region's targets.
    status, mine = call(scenario["base"], scenario["marketers"]["EMEA-SMB"], "GET", "/api/v1/performance?period=year")
    assert status == 200, mine
    want = EXPECTED.performance("region", "FY2027", teams={"EMEA-SMB"})
    assert {r["region"] for r in mine["rows"]} == set(want) == {"EMEA"}
    for measure, kind_of in KINDS.items():
        got = mine["rows"][0]["measures"][measure]
        value = got["cents"]["actual"] if kind_of == "cents" else got["actual"]
        value = round(value * 100) if kind_of == "count" and value is not None else value
        check(value, want["EMEA"][measure][0], kind_of, f"EMEA-SMB {measure}")


def performance_table(grid: list[list[Any]], title: str | None) -> dict[tuple[str, str], dict[str, Any]]:
    """The rows of a Performance table (after `title` when the sheet holds several) by (group, period)."""
    start = 0 if title is None else next(i for i, r in enumerate(grid) if r and r[0] == title) + 1
    header = list(grid[start])
    assert set(SHEET_COLUMNS) <= set(header), header
    out = {}
    for row in grid[start + 1 :]:
        if not row or row[0] in ("", None):
            break
        out[row[0], row[1]] = dict(zip(header, row, strict=False))
    return out


def check_performance_table(table: dict[tuple[str, str], dict[str, Any]], by: str, where: str) -> None:
    for period in PERIODS:
        want = EXPECTED.performance(by, period)
        assert {k for k, p in table if p == period} == set(want), (where, period)
        for key, figures in want.items():
            for label, (measure, which) in SHEET_COLUMNS.items():
                got = from_units(table[key, period][label], KINDS[measure])
                check(got, figures[measure][WHICH.index(which)], KINDS[measure], f"{where} {key} {period} {label}")


@pytest.mark.libreoffice
@pytest.mark.parametrize("read", ["as written", "recalculated"])
def test_the_master_workbook_performance_sheet_equals_the_oracle(
    scenario: dict[str, Any], soffice: str, read: str
) -> None:
    grid = sheet_values(master_books(scenario)[read], "Performance")
    check_performance_table(performance_table(grid, "By region"), "region", "workbook by region")
    check_performance_table(performance_table(grid, "By channel"), "channel", "workbook by channel")


def test_the_google_performance_sheets_equal_the_oracle(scenario: dict[str, Any]) -> None:
    status, body = call(scenario["base"], scenario["finance"], "POST", "/api/v1/gsheets/master/push", {}, wait=30)
    assert status == 200 and body["status"] == "succeeded", body
    book = scenario["gc"].open_by_key(scenario["master_sheet"])
    unformatted = gspread.utils.ValueRenderOption.unformatted
    for name, by in (("Performance", "region"), ("Performance by channel", "channel")):
        grid = book.worksheet(name).get_all_values(value_render_option=unformatted)
        check_performance_table(performance_table(grid, None), by, f"Google {name}")


def test_the_dashboard_performance_page_equals_the_oracle(scenario: dict[str, Any]) -> None:
    client = dashboard(scenario)
    for period, query in (("Q1", "Q1"), ("Q2", "Q2"), ("FY2027", "FY")):
        page = client.get(f"/performance?period={query}").get_data(as_text=True)
        for by in ("region", "channel"):
            table = re.search(rf'<table id="performance-{by}"[^>]*>(.*?)</table>', page, re.S).group(1)
            body = re.search(r"<tbody>(.*?)</tbody>", table, re.S).group(1)  # the groups; the totals row is in <tfoot>
            want = EXPECTED.performance(by, period)
            assert set(re.findall(r'<tr data-key="([^"]+)">', body)) == set(want), (by, period)
            for key, figures in want.items():
                row = re.search(rf'<tr data-key="{re.escape(key)}">(.*?)</tr>', body, re.S).group(1)
                # each cell's data-value: the figure exactly (cents, hundredths of a unit, the ratio); its text is
                # the same figure formatted for people (whole counts, two decimals)
                cells = re.findall(r'<td[^>]*? data-measure="([^"]+)" data-value="([^"]*)"', row)
                assert len(cells) >= 12, (by, key, period)
                for name, raw in cells:
                    measure, _, which = name.partition("-")
                    j = WHICH.index(which or "actual")
                    kind, value = KINDS[measure], figures[measure][j]
                    got = None if raw == "" else float(raw) if kind == "ratio" else int(raw)
                    check(got, value, kind, f"dashboard {by}={key} {period} {name}")


# --- the budget against the latest estimate on every other surface ----------------------------------------------


def test_the_google_budget_sheet_equals_the_oracle(scenario: dict[str, Any]) -> None:
    status, body = call(scenario["base"], scenario["finance"], "POST", "/api/v1/gsheets/master/push", {}, wait=30)
    assert status == 200 and body["status"] == "succeeded", body
    book = scenario["gc"].open_by_key(scenario["master_sheet"])
    header, *grid = book.worksheet("Budget").get_all_values(
        value_render_option=gspread.utils.ValueRenderOption.unformatted
    )
    got = {(r[0], r[1]): dict(zip(header, r, strict=False)) for r in grid if r and r[0]}
    want = {**expected_budget("quarter"), **expected_budget("year")}
    assert set(got) == set(want)
    for key, w in want.items():
        for label, name in (
            ("Budget", "budget"),
            ("Plan", "plan"),
            ("Latest estimate", "estimate"),
            ("Actual", "actual"),
        ):
            assert from_units(got[key][label], "money") == w[name], (key, label)


def test_the_dashboard_budget_page_equals_the_oracle(scenario: dict[str, Any]) -> None:
    page = dashboard(scenario).get("/budget?by=region&period=quarter").get_data(as_text=True)
    assert f"Q1 reforecast: due {Formats().date(DEADLINE)}" in page
    for (region, quarter), w in expected_budget("quarter").items():
        cells = re.search(rf'<tr data-key="{region}\|{quarter}">(.*?)</tr>', page, re.S).group(1)
        shown = [int(v) for v in re.findall(r'data-cents="(-?\d+)"', cells)]
        assert shown == [w["budget"], w["plan"], w["estimate"], w["actual"]], (region, quarter)


def test_a_scenario_of_the_master_starts_as_the_master_to_the_cent(scenario: dict[str, Any]) -> None:
    name = f"oracle what-if {time.monotonic_ns()}"
    status, made = call(scenario["base"], scenario["finance"], "POST", "/api/v1/scenarios", {"name": name})
    assert status == 201, made
    path = f"/api/v1/scenarios/{made['id']}"
    body = get(scenario, f"{path}/compare?by=region&period=quarter")
    want = EXPECTED.planned("region", "quarter")
    got = {(r["region"], r["period"]): r["cents"] for r in body["rows"]}
    assert {k: v["origin"] for k, v in got.items() if v["origin"]} == {k: v for k, v in want.items() if v}
    assert all(v["origin"] == v["scenario"] for v in got.values())
    assert call(scenario["base"], scenario["finance"], "POST", f"{path}/discard", {})[0] == 200


# --- spend control: purchase orders, invoices and the month-end accrual, on every surface ------------------------

ACCOUNTING = tomllib.loads((Path(__file__).parents[1] / "sheet_templates" / "default_org.toml").read_text())[
    "accounting"
]
SPEND_LABELS = {"Planned": "plan", "Committed (open PO)": "committed", "Invoiced": "invoiced", "Remaining": "remaining"}


def spend_label(label: str) -> str | None:
    """The measure a Spend table's column shows (the accrual's names the month), None for others."""
    return "accrued" if label.startswith("Accrued (end of ") else SPEND_LABELS.get(label)


def test_the_oracle_scenario_closes_a_month_with_every_kind_of_po() -> None:
    lines = {po[0]: EXPECTED.po_line(po) for po in PURCHASE_ORDERS}
    assert any(po[3] != EXPECTED.by_id[lines[po[0]]]["currency"] for po in PURCHASE_ORDERS if lines[po[0]])
    assert {EXPECTED.team_of[i] for i in lines.values() if i} == set(FINAL)  # every team, so every region
    assert len({po[3] for po in PURCHASE_ORDERS}) >= 4 and [n for n, i in lines.items() if i is None] == [
        "PO-X1",
        "PO-X2",
    ]
    assert {po[8] for po in PURCHASE_ORDERS} == {"Open", "Cancelled"} and any(po[9] == "plan" for po in PURCHASE_ORDERS)
    assert [po[0] for po in PURCHASE_ORDERS if EXPECTED.po_invoiced(po, INVOICES) > cents(po[2])] == ["PO-N1"]
    # The late invoice moves m02's accrual, never the closed m01's; the typed committed spend is replaced.
    late = next(po for po in PURCHASE_ORDERS if po[0] == LATE_INVOICES[0][1])
    assert EXPECTED.accrual(late, 0) == cents(late[2]) > EXPECTED.accrual(late, 1)
    for region in ("EMEA", "NA"):
        assert EXPECTED.region_sum(EXPECTED.committed, region) != EXPECTED.region_sum(EXPECTED.typed_committed, region)
    assert all(EXPECTED.spend_by("region", 0)[r]["accrued"] for r in CFG.regions)


@pytest.mark.parametrize("by", ["line", "team", "region"])
def test_api_spend_equals_the_oracle(scenario: dict[str, Any], by: str) -> None:
    for month in range(ACCRUAL_CLOSED + 1):
        body = get(scenario, f"/api/v1/spend?by={by}&month={MONTHS[month]}")
        assert body["purchase_orders_tracked"] is True and body["accrual_closed"] == MONTHS[:ACCRUAL_CLOSED]
        assert body["month_end"] == MONTH_ENDS[month].isoformat()
        want = EXPECTED.spend_by(by, month)
        key = "line_id" if by == "line" else by
        got = {r[key]: {n: cents(r[n].replace(",", "")) for n in SPEND_MEASURES} for r in body["rows"]}
        assert got == want, (by, month)
        totals = {n: cents(v.replace(",", "")) for n, v in body["totals"].items()}
        assert totals == {n: sum(w[n] for w in want.values()) for n in SPEND_MEASURES}, (by, month)
    assert [p["po_number"] for p in body["unmatched_purchase_orders"]] == ["PO-X1", "PO-X2"]
    assert [i["invoice_number"] for i in body["unmatched_invoices"]] == ["INV-Z1"]
    over = body["over_po"]
    assert [(p["po_number"], cents(p["over_by"])) for p in over] == [("PO-N1", cents("2600") - cents("2500"))]


def expected_accrual_report(month: int) -> dict[str, Any]:
    """The /accruals report's cents: totals by team and region (lines only), off the lines, and the whole."""
    teams = {k: v["accrued"] for k, v in EXPECTED.spend_by("team", month).items() if v["accrued"]}
    regions = {k: v["accrued"] for k, v in EXPECTED.spend_by("region", month).items() if v["accrued"]}
    off = EXPECTED.accrued_off_lines(month)
    return {"total": sum(teams.values()) + off, "by_team": teams, "by_region": regions, "not_on_a_line": off}


def test_api_accruals_equal_the_oracle(scenario: dict[str, Any]) -> None:
    status = get(scenario, "/api/v1/accruals")
    assert status["month"] == MONTHS[ACCRUAL_CLOSED] and [c["month"] for c in status["closed"]] == ["m01"]
    for month in range(ACCRUAL_CLOSED + 1):
        body = get(scenario, f"/api/v1/accruals/{MONTHS[month]}")
        assert body["closed"] is (month < ACCRUAL_CLOSED), month
        assert body["month_end"] == MONTH_ENDS[month].isoformat()
        assert {e["po_number"]: cents(e["accrued"].replace(",", "")) for e in body["entries"]} == EXPECTED.accruals(
            month
        )
        want = expected_accrual_report(month)
        assert body["cents"] == want, month
        assert cents(body["total"].replace(",", "")) == want["total"]
    # The close answered the month's report as it closed, before the late invoice came in.
    assert scenario["closed"]["cents"] == expected_accrual_report(0)


def test_the_accrual_journal_equals_the_oracle(scenario: dict[str, Any]) -> None:
    by_number = {po[0]: po for po in PURCHASE_ORDERS}
    for month in range(ACCRUAL_CLOSED + 1):
        path = download(scenario, f"/api/v1/accruals/{MONTHS[month]}/journal.csv", f"journal-{MONTHS[month]}.csv")
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
        name = f"ACCR-FY2027-{MONTHS[month].upper()}"
        want = EXPECTED.accruals(month)
        for journal, day, reverse in (
            (name, MONTH_ENDS[month], False),
            (f"{name}-REV", MONTH_ENDS[month] + dt.timedelta(days=1), True),
        ):
            part = [r for r in rows if r["Journal"] == journal]
            assert {r["Date"] for r in part} == {day.isoformat()}, journal
            assert len(part) == 2 * len(want), journal  # one debit and one credit per PO
            for currency in {r["Currency"] for r in part}:  # each journal balances in each currency
                mine = [r for r in part if r["Currency"] == currency]
                assert sum(cents(r["Debit"] or 0) for r in mine) == sum(cents(r["Credit"] or 0) for r in mine)
            for number, accrued in want.items():
                po = by_number[number]
                line_id = EXPECTED.po_line(po)
                ln = EXPECTED.by_id.get(line_id or "", {})
                expense = ACCOUNTING["expense_accounts"].get(ln.get("channel"), ACCOUNTING["expense_account"])
                centre = ACCOUNTING["cost_centres"].get(ln.get("region"), ACCOUNTING["cost_centre"])
                mine = [r for r in part if r["Reference"] == number]
                debit = next(r for r in mine if r["Debit"])
                credit = next(r for r in mine if r["Credit"])
                cost, liability = (credit, debit) if reverse else (debit, credit)
                assert (cost["Account"], cost["Cost centre"]) == (expense, centre), (journal, number)
                assert (liability["Account"], liability["Cost centre"]) == (ACCOUNTING["accrual_account"], "")
                assert cents(debit["Debit"]) == cents(credit["Credit"]) == accrued, (journal, number)
                assert {r["Currency"] for r in mine} == {po[3]}, (journal, number)
                team = EXPECTED.team_of[line_id] if line_id else ""
                assert {(r["Team"], r["Line ID"]) for r in mine} == {(team, line_id or "")}, (journal, number)


def spend_rows(header: list[Any], rows: list[list[Any]], name: int) -> dict[str, dict[str, int | None]]:
    """A Spend table's rows by the name in column `name`: {name: {measure: cents}}, the columns found by header."""
    columns = {j: m for j, h in enumerate(header) if (m := spend_label(str(h)))}
    assert sorted(columns.values()) == sorted(SPEND_MEASURES), header
    return {row[name]: {m: from_units(row[j], "money") for j, m in columns.items()} for row in rows}


@pytest.mark.libreoffice
@pytest.mark.parametrize("read", ["as written", "recalculated"])
def test_the_master_workbook_spend_sheet_equals_the_oracle(scenario: dict[str, Any], soffice: str, read: str) -> None:
    """The Spend sheet shows the month being closed (m02): m01 is closed."""
    grid = sheet_values(master_books(scenario)[read], "Spend")
    for title, by in (("By region", "region"), ("By team", "team")):
        start = next(i for i, r in enumerate(grid) if r and r[0] == title) + 1
        rows = []
        for row in grid[start + 1 :]:
            if not row or row[0] in ("", None):
                break
            rows.append(row)
        assert spend_rows(grid[start], rows, 0) == EXPECTED.spend_by(by, ACCRUAL_CLOSED), title


def test_the_google_spend_sheet_equals_the_oracle(scenario: dict[str, Any]) -> None:
    status, body = call(scenario["base"], scenario["finance"], "POST", "/api/v1/gsheets/master/push", {}, wait=30)
    assert status == 200 and body["status"] == "succeeded", body
    book = scenario["gc"].open_by_key(scenario["master_sheet"])
    header, *grid = book.worksheet("Spend").get_all_values(
        value_render_option=gspread.utils.ValueRenderOption.unformatted
    )
    assert header[:2] == ["By", "Name"], header
    for label, by in (("Region", "region"), ("Team", "team")):
        table = spend_rows(header, [r for r in grid if r and r[0] == label], 1)
        assert table == EXPECTED.spend_by(by, ACCRUAL_CLOSED), label


def test_the_dashboard_spend_page_equals_the_oracle(scenario: dict[str, Any]) -> None:
    client = dashboard(scenario)
    for by, month in (("team", 0), ("region", ACCRUAL_CLOSED), ("line", 0), ("region", None)):
        query = f"/spend?by={by}" + (f"&month={MONTHS[month]}" if month is not None else "")
        page = client.get(query).get_data(as_text=True)
        month = ACCRUAL_CLOSED if month is None else month  # no month: the month being closed
        table = re.search(r'<table id="spend"[^>]*>(.*?)</table>', page, re.S).group(1)
        want = EXPECTED.spend_by(by, month)
        rows = dict(re.findall(r'<tr data-key="([^"]+)">(.*?)</tr>', table.split("<tfoot>")[0], re.S))
        got = {
            (k.split("|")[1] if by == "line" else k): dict(
                zip(SPEND_MEASURES, map(int, re.findall(r'data-cents="(-?\d+)"', v)), strict=True)
            )
            for k, v in rows.items()
        }
        assert got == want, query
        foot = re.search(r'<tr data-key="total">(.*?)</tr>', table.split("<tfoot>")[1], re.S).group(1)
        totals = [int(v) for v in re.findall(r'data-cents="(-?\d+)"', foot)]
        assert totals == [sum(w[n] for w in want.values()) for n in SPEND_MEASURES], query
        # The month's accrual: by team, by region, off the lines and in all, and whether it is closed.
        report = expected_accrual_report(month)
        section = re.search(r'<section id="accrual">(.*?)</section>', page, re.S).group(1)
        for name in ("team", "region"):
            part = re.search(rf'<table id="accrual-by-{name}"[^>]*>(.*?)</table>', section, re.S).group(1)
            body = re.search(r"<tbody>(.*?)</tbody>", part, re.S).group(1)  # the totals rows are in <tfoot>
            shown = re.findall(r'<tr data-key="([^"]+)"><td>[^<]*</td><td class="num" data-cents="(-?\d+)"', body)
            assert {k: int(v) for k, v in shown} == report[f"by_{name}"], (query, name)
        footer = r'<tr data-key="([^"]+)"><th[^>]*>[^<]*</th><td class="num" data-cents="(-?\d+)"'
        foot = dict(re.findall(footer, section))
        assert (int(foot["not-on-a-line"]), int(foot["total"])) == (report["not_on_a_line"], report["total"]), query
        state = re.search(r'<p id="accrual-state">(.*?)</p>', section, re.S).group(1)
        assert ("is closed" in state) is (month < ACCRUAL_CLOSED) and ("is open" in state) is (month >= ACCRUAL_CLOSED)
