"""The service half of the demo: a real `plansheet serve` process on 127.0.0.1 and what each user does with it.

Marketers upload their regional plans (one is refused with its report, then fixed and sent
again), finance approves them, imports the finance system's actuals and reads the rollup and
the variance — all over HTTP, as any client would.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from sheet_templates.cells import column_letter
from sheet_templates.excel_template import template_filename
from sheet_templates.schema import ColumnType, PlanSchema
from sync_service.access.auth import create_token
from sync_service.access.passwords import set_password
from sync_service.access.teams import sync_teams, team_id
from sync_service.integrations.google import client as gsheets
from sync_service.platform.migrate import upgrade
from sync_service.platform.storage import Store


class Client:
    """A tiny HTTP client for the API, with one user's token."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def send(
        self, method: str, path: str, body: bytes | None = None, content_type: str = "", wait: float = 0
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if wait:  # RFC 7240: answer once the job this starts has finished, within `wait` seconds
            headers["Prefer"] = f"wait={wait:g}"
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(f"{self.base}{path}", data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.load(error)

    def download(self, path: str) -> bytes:
        """A file the API answers (a CSV or xlsx), as bytes."""
        request = urllib.request.Request(f"{self.base}{path}", headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.read()

    def json(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        return self.send(method, path, data, "application/json")

    def upload(self, path: str, file: Path, **fields: str) -> tuple[int, Any]:
        boundary = uuid.uuid4().hex
        out = io.BytesIO()
        for name, value in fields.items():
            out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        out.write(file.read_bytes())
        out.write(f"\r\n--{boundary}--\r\n".encode())
        return self.send("POST", path, out.getvalue(), f"multipart/form-data; boundary={boundary}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(database_url: str, schema: PlanSchema, extra: dict[str, str] | None = None) -> Iterator[str]:
    """`plansheet serve` as its own process on a free loopback port, stopped on exit."""
    env = {**os.environ, "PLANSHEET_DATABASE_URL": database_url, **(extra or {})}
    if schema.config.source != "<default>":
        env["PLANSHEET_CONFIG"] = schema.config.source
    else:
        env.pop("PLANSHEET_CONFIG", None)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sync_service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the demo service did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def actuals_csv(master: dict[str, Any], schema: PlanSchema, closed: int, seed: int = 7) -> bytes:
    """A finance system's export: spend per posting month by line ID or campaign code, and rows it can't place."""
    rng = random.Random(seed)
    months = list(schema.calendar.months)[:closed]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Posting date", "Line ID", "Campaign code", "Amount", "Currency"])
    for n, line in enumerate(master["lines"]):
        if sum(line.get(m.name) or 0 for m in months) <= 0:
            continue
        drift = rng.uniform(0.75, 1.2)
        by_code = n % 5 == 0 and line.get("campaign_code")
        for m in months:
            planned = line.get(m.name) or 0
            if planned <= 0:
                continue
            cents = int(planned * drift * rng.uniform(0.9, 1.1))
            writer.writerow(
                [
                    dt.date(m.year, m.month, 28).isoformat(),
                    "" if by_code else line["line_id"],
                    line.get("campaign_code") or "" if by_code else "",
                    f"{cents / 100:.2f}",
                    line["currency"],
                ]
            )
    last = months[-1] if months else schema.calendar.months[0]
    day = dt.date(last.year, last.month, 28).isoformat()
    writer.writerow([day, "", "UNKNOWN-CODE-1", "1250.00", schema.config.reporting_currency])
    writer.writerow([day, "XX-9999", "", "310.40", schema.config.reporting_currency])
    return out.getvalue().encode()


def purchase_orders_csv(master: dict[str, Any], schema: PlanSchema, seed: int = 13) -> bytes:
    """A procurement system's PO export: a PO for every fourth line with spend, over its planned months."""
    rng = random.Random(seed)
    months = schema.calendar.months
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["PO number", "Vendor", "Amount", "Currency", "Service start", "Service end", "Line ID", "Status"])
    for n, line in enumerate(master["lines"][::4]):
        planned = [m for m in months if (line.get(m.name) or 0) > 0]
        if not planned:
            continue
        total = sum(line.get(m.name) or 0 for m in planned)
        amount = int(total * rng.uniform(0.5, 0.9))
        writer.writerow(
            [
                f"PO-{4500 + n}",
                rng.choice(["Hall & Stand Ltd", "Northwind Media", "Contoso Events", "Fabrikam Digital"]),
                f"{amount / 100:.2f}",
                line["currency"],
                planned[0].first_day.isoformat(),
                planned[-1].last_day.isoformat(),
                line["line_id"],
                "Open",
            ]
        )
    writer.writerow(["PO-9001", "Unplanned Agency", "4800.00", schema.config.reporting_currency, months[0].first_day,
                     months[2].last_day, "XX-0001", "Open"])  # fmt: skip
    return out.getvalue().encode()


def invoices_csv(orders: list[dict[str, Any]], schema: PlanSchema, seed: int = 17) -> bytes:
    """The vendors' invoices: about a third of each early PO, in its first month, and one for no known PO."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Invoice number", "PO number", "Amount", "Invoice date"])
    for n, po in enumerate(orders):
        if n % 2:
            continue
        start = dt.date.fromisoformat(po["service_start"])
        amount = float(po["amount"]) * rng.uniform(0.2, 0.45)
        writer.writerow(
            [f"INV-{7000 + n}", po["po_number"], f"{amount:.2f}", (start + dt.timedelta(days=20)).isoformat()]
        )
    writer.writerow(["INV-7999", "PO-0000", "120.00", schema.calendar.months[0].last_day.isoformat()])
    return out.getvalue().encode()


def _spend_story(schema: PlanSchema, out: Path, finance: Client, master: dict[str, Any], p: Any) -> None:
    """Month-end close: POs and invoices imported against plan lines, the accrual, its journal, the month closed."""
    export = purchase_orders_csv(master, schema)
    (out / "purchase-orders.csv").write_bytes(export)
    status, report = finance.send("POST", "/api/v1/purchase-orders?filename=purchase-orders.csv", export, "text/csv")
    if status != 201:
        raise RuntimeError(f"the PO import failed: {report}")
    p(
        f"\nFinance imported {out / 'purchase-orders.csv'}: {report['rows']} POs, {report['matched']} matched to "
        f"plan lines, {len(report['unmatched'])} unmatched, {len(report['over_plan'])} line(s) over plan"
    )
    for row in report["unmatched"]:
        p(f"  row {row['row']}: PO {row['po_number']} names no plan line ({row['line_id'] or row['campaign_code']})")
    status, again = finance.send("POST", "/api/v1/purchase-orders?filename=purchase-orders.csv", export, "text/csv")
    p(f"  the same file sent again: {status}, {again['new']} new, {again['unchanged']} unchanged")
    _, orders = finance.json("GET", "/api/v1/purchase-orders")
    bills = invoices_csv(orders["purchase_orders"], schema)
    (out / "invoices.csv").write_bytes(bills)
    status, report = finance.send("POST", "/api/v1/invoices?filename=invoices.csv", bills, "text/csv")
    if status != 201:
        raise RuntimeError(f"the invoice import failed: {report}")
    p(
        f"Finance imported {out / 'invoices.csv'}: {report['rows']} invoices, {report['matched']} matched by PO "
        f"number, {len(report['unmatched'])} unmatched, {len(report['over_po'])} beyond their PO"
    )
    month = schema.calendar.months[0]
    cur = schema.config.reporting_currency
    _, view = finance.json("GET", f"/api/v1/spend?by=region&month={month.name}")
    p(f"\nGET /api/v1/spend?by=region&month={month.name} ({cur}; at the end of {month.label}):")
    p(f"  {'region':<6} {'planned':>14} {'committed':>14} {'invoiced':>12} {'accrued':>12} {'remaining':>14}")
    for row in view["rows"]:
        p(
            f"  {row['region']:<6} {_amount(row['plan']):>14} {_amount(row['committed']):>14} "
            f"{_amount(row['invoiced']):>12} {_amount(row['accrued']):>12} {_amount(row['remaining']):>14}"
        )
    (out / f"accrual-{month.name}.csv").write_bytes(finance.download(f"/api/v1/accruals/{month.name}/journal.csv"))
    status, closed = finance.json("POST", f"/api/v1/accruals/{month.name}/close")
    if status != 200:
        raise RuntimeError(f"closing the accrual failed: {closed}")
    journal = out / f"accrual-{month.name}.csv"
    p(
        f"Finance closed {month.label}'s accrual: {len(closed['entries'])} PO(s), {_amount(closed['total'])} {cur}; "
        f"the journal (with its reversal on {schema.calendar.months[1].first_day}) is {journal}"
    )


# How far each channel's results in the demo's CRM export run from what its plans expected.
CHANNEL_YIELD = {
    "Events": 0.7,
    "Paid Search": 1.15,
    "Paid Social": 0.8,
    "Content": 1.0,
    "Webinars": 1.35,
    "Partners": 1.05,
    "Email": 1.2,
    "ABM": 0.9,
}
_SYMBOL = {"USD": "$", "EUR": "€", "GBP": "£"}


def crm_export(master: dict[str, Any], schema: PlanSchema, closed: int, seed: int = 11) -> bytes:
    """A Salesforce campaign report by month, with the mess a real one has, for the demo's plans.

    One row per campaign and closed month, as the CRM keys results by campaign: a title above
    the header, money with currency symbols and thousands separators, a blank row, a grand
    total, and a campaign the plans do not have. Each channel's results run from its plans'
    expectations by CHANNEL_YIELD, with noise, so the channels differ as they do in life.
    """
    rng = random.Random(seed)
    months = list(schema.calendar.months)[:closed]
    campaigns: dict[str, dict[str, Any]] = {}
    for line in master["lines"]:
        code = line.get("campaign_code")
        total = sum(line.get(m.name) or 0 for m in schema.calendar.months)
        if not code or total <= 0:
            continue
        c = campaigns.setdefault(
            code, {"name": line.get("campaign") or code, "currency": line["currency"], "by_month": {}}
        )
        factor = CHANNEL_YIELD.get(line["channel"], 1.0)
        for m in months:
            share = (line.get(m.name) or 0) / total
            if share <= 0:
                continue
            got = c["by_month"].setdefault(m.label, [0.0] * 4)
            got[0] += (line.get("leads") or 0) * share * factor
            got[1] += (line.get("mqls") or 0) * share * factor
            got[2] += (line.get("pipeline") or 0) * share * factor  # cents in the line's currency
            got[3] += (line.get("revenue") or 0) * share * factor

    def money(cents: float, currency: str) -> str:
        return f"{_SYMBOL.get(currency, '')}{cents / 100:,.2f}"

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f"Campaign ROI by month - {schema.config.org_name} - {schema.calendar.label}"])
    writer.writerow([])
    writer.writerow(
        [
            "Campaign Name",
            "Campaign ID",
            "Month",
            "Campaign Currency",
            "Leads in Campaign",
            "MQLs in Campaign",
            "Converted Leads in Campaign",
            "Opportunities in Campaign",
            "Won Opportunities in Campaign",
            "Value Opportunities in Campaign",
            "Value Won Opportunities in Campaign",
        ]
    )
    total_leads = 0
    for code, c in sorted(campaigns.items()):
        for label, (leads, mqls, pipeline, revenue) in c["by_month"].items():
            noise = rng.uniform(0.85, 1.15)
            n_leads = round(leads * noise)
            n_mqls = min(n_leads, round(mqls * noise))
            sals = round(n_mqls * rng.uniform(0.5, 0.7))
            opportunities = round(sals * rng.uniform(0.4, 0.6))
            won = round(opportunities * rng.uniform(0.15, 0.35))
            total_leads += n_leads
            writer.writerow(
                [
                    c["name"],
                    code,
                    label,
                    c["currency"],
                    f"{n_leads:,}",
                    f"{n_mqls:,}",
                    f"{sals:,}",
                    f"{opportunities:,}",
                    f"{won:,}",
                    money(pipeline * noise, c["currency"]),
                    money(revenue * noise * rng.uniform(0.6, 1.0), c["currency"]),
                ]
            )
    if months:
        writer.writerow(["Partner summit (not planned)", "NOPLAN-01", months[-1].label, "USD", "40", "12", "", "", ""])
    writer.writerow([])
    writer.writerow(["Grand Total", "", "", "", f"{total_leads:,}"])
    return out.getvalue().encode()


def run_service_demo(
    schema: PlanSchema, out: Path, plans: Path, fixed: Path, bad_region: str, closed: int, as_of: str, stdout: TextIO
) -> int:
    """Start the service on a fresh SQLite file and tell the day of a marketer and of finance through its API."""
    database = out / "service.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    upgrade(url, schema.config.fiscal_year)
    store = Store(url)
    regions = schema.config.regions
    bu = schema.config.business_units[0]
    teams = {region: team_id(region, bu) for region in regions}
    with store.transaction() as session:
        sync_teams(session, schema)
        tokens = {
            region: create_token(session, f"marketer-{region.lower()}", "marketer", [teams[region]])
            for region in regions
        }
        tokens["finance"] = create_token(session, "finance", "finance")
        set_password(session, "finance", DEMO_PASSWORD)  # the dashboard's demo logins
        set_password(session, f"marketer-{regions[1].lower()}", DEMO_PASSWORD)
        google_team = team_id(regions[0], schema.config.business_units[-1])  # a team that plans in Google Sheets
        tokens[google_team] = create_token(session, "planner-google", "marketer", [google_team])
    store.dispose()
    (out / "tokens.json").write_text(json.dumps(tokens, indent=2) + "\n")
    p = lambda *a: print(*a, file=stdout)  # noqa: E731
    p(f"\nThe sync service: {url} (teams and demo tokens in {out / 'tokens.json'})")
    with contextlib.ExitStack() as stack:
        fake = _google_fake(stack, p)
        google = _google_env(fake, schema) if fake else None
        base = stack.enter_context(serving(url, schema, google.env if google else None))
        _service_story(schema, out, base, tokens, teams, plans, fixed, bad_region, closed, as_of, p)
        if google is not None:
            _google_story(schema, base, tokens, google_team, google, p)
        region = "EMEA" if "EMEA" in regions else regions[0]
        _reforecast_story(schema, out, base, tokens, region, teams[region], closed, as_of, p)
        if schema.calendar.year + 1 in schema.config.years:
            _next_year_story(schema, base, tokens, teams, p)
    p(
        f"\nServe it yourself: PLANSHEET_DATABASE_URL={url} plansheet serve   "
        f"(tokens in {out / 'tokens.json'}; try GET /api/v1/master)"
    )
    return 0


def _service_story(
    schema: PlanSchema,
    out: Path,
    base: str,
    tokens: dict[str, str],
    teams: dict[str, str],
    plans: Path,
    fixed: Path,
    bad_region: str,
    closed: int,
    as_of: str,
    p: Any,
) -> None:
    regions = schema.config.regions
    p(f"Started `plansheet serve` on {base}")
    finance = Client(base, tokens["finance"])
    submitted = {}
    for region in regions:
        client = Client(base, tokens[region])
        status, body = client.upload("/api/v1/submissions", plans / template_filename(region), team=teams[region])
        if status == 201:
            submitted[region] = body["id"]
            p(f"  {teams[region]:<18} submitted {body['lines']} lines: submission {body['id']}")
            continue
        p(f"  {teams[region]:<18} refused ({status}): {body['detail']}")
        for issue in body.get("issues", [])[:8]:
            where = f"{issue.get('sheet')}!{issue.get('cell')}" if issue.get("cell") else issue.get("sheet") or ""
            p(f"      {where:<12} {issue['rule']:<22} {issue['message']}")
    if bad_region in regions and bad_region not in submitted:
        client = Client(base, tokens[bad_region])
        status, body = client.upload("/api/v1/submissions", fixed, team=teams[bad_region])
        if status != 201:
            raise RuntimeError(f"the corrected plan was refused: {body}")
        submitted[bad_region] = body["id"]
        p(f"  {teams[bad_region]:<18} corrected and sent again: submission {body['id']} accepted")
    for region, sid in submitted.items():
        status, body = finance.json("POST", f"/api/v1/submissions/{sid}/approve", {"comment": "demo: approved"})
        if status != 200:
            raise RuntimeError(f"approving submission {sid} failed: {body}")
        over = f", over allocation in {len(body['over_allocation'])} place(s)" if body["over_allocation"] else ""
        p(f"  finance approved submission {sid} ({teams[region]}): master version {body['master_version']}{over}")

    _, master = finance.json("GET", "/api/v1/master")
    export = actuals_csv(master, schema, closed)
    (out / "actuals.csv").write_bytes(export)
    status, report = finance.send("POST", "/api/v1/actuals?filename=actuals.csv", export, "text/csv")
    if status != 201:
        raise RuntimeError(f"the actuals import failed: {report}")
    p(
        f"\nFinance imported {out / 'actuals.csv'}: {report['rows']} rows, {report['matched']} matched, "
        f"{len(report['unmatched'])} unmatched, {len(report['spread'])} spread over several lines by campaign code"
    )
    for row in report["unmatched"]:
        p(f"  row {row['row']}: no plan line {row['line_id'] or row['campaign_code']} ({row['amount']})")

    _crm_story(schema, out, finance, master, closed, p)
    region = "EMEA" if "EMEA" in regions else regions[0]
    _budget_story(schema, finance, Client(base, tokens[region]), region, p)

    cur = schema.config.reporting_currency
    _, rollup = finance.json("GET", "/api/v1/rollup?by=region&period=quarter")
    p(f"\nGET /api/v1/rollup?by=region&period=quarter ({cur}; planned / allocation):")
    by_region: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rollup["rows"]:
        by_region.setdefault(row["region"], {})[row["period"]] = row
    for region, quarters in by_region.items():
        cells = "  ".join(
            f"{q} {_amount(r['amount']):>12} / {_amount(r.get('allocation', '0')):>12}" for q, r in quarters.items()
        )
        p(f"  {region:<6} {cells}")
    _, variance = finance.json("GET", f"/api/v1/variance?by=region&as_of={as_of}")
    p(f"\nGET /api/v1/variance?by=region&as_of={as_of} ({variance['closed_months']} fiscal months closed):")
    p(f"  {'region':<6} {'plan to date':>14} {'actual':>14} {'variance':>14}  flag")
    for row in variance["rows"]:
        p(
            f"  {row['region']:<6} {_amount(row['planned_to_date']):>14} {_amount(row['actual']):>14} "
            f"{_amount(row['variance']):>14}  {row['flag']}"
        )
    _spend_story(schema, out, finance, master, p)


TRANSFER = "25000.00"  # above the default TRANSFER_FINANCE_LIMIT: the giving side and finance approve


def _budget_story(schema: PlanSchema, finance: Client, marketer: Client, region: str, p: Any) -> None:
    """The approved master locked as the budget; budget moved from Q1 to Q2 by a transfer; budget against plan."""
    name = f"{schema.calendar.label} budget"
    status, baseline = finance.json("POST", "/api/v1/baselines", {"name": name, "comment": "demo: the agreed plans"})
    if status != 201:
        raise RuntimeError(f"locking the budget failed: {baseline}")
    p(
        f"\nFinance locked the master as the budget: baseline {baseline['id']} {name!r} "
        f"(master version {baseline['master_version']}, allocation revision {baseline['allocation_revision']})"
    )
    body = {
        "from": {"region": region, "quarter": "Q1", "channel": "*"},
        "to": {"region": region, "quarter": "Q2", "channel": "*"},
        "amount": TRANSFER,
        "reason": "demo: the spring summit moved to April",
    }
    status, transfer = marketer.json("POST", "/api/v1/transfers", body)
    if status != 201:
        raise RuntimeError(f"asking for the transfer failed: {transfer}")
    p(
        f"  {region}'s marketer asked to move {_amount(TRANSFER)} from {region} Q1 to Q2 (transfer {transfer['id']}): "
        f"their consent given, waiting for {' and '.join(transfer['waiting_for'])}"
    )
    status, transfer = finance.json("POST", f"/api/v1/transfers/{transfer['id']}/approve", {"comment": "demo: fine"})
    if status != 200:
        raise RuntimeError(f"approving the transfer failed: {transfer}")
    p(f"  finance approved it: allocation revision {transfer['allocation_revision']}")
    for message in transfer["over_allocation"]:
        p(f"  flagged: {message}")
    _, view = finance.json("GET", "/api/v1/budget?by=region&period=quarter")
    cur = schema.config.reporting_currency
    p(f"\nGET /api/v1/budget?by=region&period=quarter ({cur}; {region}):")
    p(f"  {'quarter':<7} {'budget':>14} {'plan':>14} {'allocation then':>16} {'allocation now':>15}")
    for row in view["rows"]:
        if row["region"] == region:
            p(
                f"  {row['period']:<7} {_amount(row['budget']):>14} {_amount(row['plan']):>14} "
                f"{_amount(row.get('budget_allocation') or '0'):>16} {_amount(row.get('allocation') or '0'):>15}"
            )


def _reforecast_story(
    schema: PlanSchema,
    out: Path,
    base: str,
    tokens: dict[str, str],
    region: str,
    team: str,
    closed: int,
    as_of: str,
    p: Any,
) -> None:
    """Finance opens a reforecast; a team reforecasts in its template; budget against the latest estimate; a what-if."""
    from openpyxl import load_workbook

    finance, marketer = Client(base, tokens["finance"]), Client(base, tokens[region])
    months = list(schema.month_columns)
    closed = min(max(closed, 1), len(months) - 1)  # a reforecast has a closed month and an open one
    last = months[closed - 1]
    deadline = (dt.date.fromisoformat(as_of) + dt.timedelta(days=10)).isoformat()
    body = {"name": f"{last.label} reforecast", "through": last.name, "deadline": deadline,
            "comment": "demo: forecast what is left of the year"}  # fmt: skip
    status, cycle = finance.json("POST", "/api/v1/cycles", body)
    if status != 201:
        raise RuntimeError(f"opening the reforecast failed: {cycle}")
    p(
        f"\nThe reforecast: finance opened {cycle['name']!r} (cycle {cycle['id']}), due {cycle['deadline']}: "
        f"{months[0].label} to {last.label} are closed and locked"
    )
    request = urllib.request.Request(
        f"{base}/api/v1/templates/{team}.xlsx", headers={"Authorization": f"Bearer {tokens[region]}"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        path = out / f"reforecast-{team}.xlsx"
        path.write_bytes(response.read())
    book = load_workbook(path)
    sheet = book["Plan"]
    target = months[closed]  # the first open month
    cell = sheet.cell(2, target.index)
    before = float(cell.value or 0)
    cell.value = before + 5000
    book.save(path)
    p(
        f"  {team}'s marketer downloaded {path.name} (the closed months show the spend booked, locked) and raised "
        f"line {sheet.cell(2, 1).value}'s {target.label} from {before:,.2f} to {before + 5000:,.2f}"
    )
    status, sent = marketer.upload("/api/v1/submissions", path, team=team)
    if status != 201:
        raise RuntimeError(f"the reforecast was refused: {sent}")
    status, approved = finance.json("POST", f"/api/v1/submissions/{sent['id']}/approve", {"comment": "demo: ok"})
    if status != 200:
        raise RuntimeError(f"approving the reforecast failed: {approved}")
    p(
        f"  reforecast submission {sent['id']} (cycle {sent['cycle']}) approved: "
        f"master version {approved['master_version']}"
    )
    _, state = finance.json("GET", f"/api/v1/cycles/{cycle['id']}")
    waiting = [t["team"] for t in state["teams"] if t["status"] in ("not submitted", "rejected", "stale")]
    p(f"  the cycle waits for {len(waiting)} more team(s); `plansheet remind` tells them as the deadline nears")
    _, view = finance.json("GET", "/api/v1/budget?by=region&period=quarter")
    cur = schema.config.reporting_currency
    p(f"\nBudget against the latest estimate, GET /api/v1/budget?by=region&period=quarter ({cur}; {region}):")
    p(f"  {'quarter':<7} {'budget':>14} {'plan':>14} {'estimate':>14} {'actual':>14}")
    for row in view["rows"]:
        if row["region"] == region:
            p(
                f"  {row['period']:<7} {_amount(row['budget']):>14} {_amount(row['plan']):>14} "
                f"{_amount(row['estimate'] or '0'):>14} {_amount(row['actual'] or '0'):>14}"
            )
    body = {"name": "Events down a tenth in Q4", "from": "estimate"}
    status, scenario = finance.json("POST", "/api/v1/scenarios", body)
    if status != 201:
        raise RuntimeError(f"making the scenario failed: {scenario}")
    changes = [{"op": "scale", "channel": "Events", "period": "Q4", "factor": "0.9"}]
    status, changed = finance.json("POST", f"/api/v1/scenarios/{scenario['id']}/changes", {"changes": changes})
    if status != 200:
        raise RuntimeError(f"changing the scenario failed: {changed}")
    _, compared = finance.json("GET", f"/api/v1/scenarios/{scenario['id']}/compare?by=channel&period=year")
    total = compared["total"]
    p(
        f"\nA what-if: scenario {scenario['id']} {body['name']!r} from the latest estimate, Events scaled by 0.9 "
        f"in Q4: {_amount(total['origin'])} -> {_amount(total['scenario'])} ({_amount(total['change'])}); "
        f"{len(compared['lines']['changed'])} line(s) changed, the master untouched until it is promoted"
    )


def _crm_story(schema: PlanSchema, out: Path, finance: Client, master: dict[str, Any], closed: int, p: Any) -> None:
    """Results from the CRM: a Salesforce campaign report imported, then what each channel's spend bought."""
    export = crm_export(master, schema, closed)
    (out / "crm-campaigns.csv").write_bytes(export)
    query = "preset=salesforce&source=salesforce&filename=crm-campaigns.csv"
    status, report = finance.send("POST", f"/api/v1/outcomes?{query}", export, "text/csv")
    if status != 201:
        raise RuntimeError(f"the CRM import failed: {report}")
    p(
        f"\nFinance imported the CRM's campaign report {out / 'crm-campaigns.csv'} (Salesforce preset): "
        f"{report['rows']} rows for {len(report['months'])} months, {report['lines']} plan lines matched, "
        f"{report['unmatched_rows']} row(s) unmatched"
    )
    for row in report["skipped"][:3]:
        p(f"  row {row['row']}: skipped, {row['reason']}")
    for row in report["unmatched"][:3]:
        named = row.get("crm_campaign_id") or row.get("campaign_code") or row.get("campaign")
        p(f"  row {row['row']}: no plan line or campaign {named}")
    status, again = finance.send("POST", f"/api/v1/outcomes?{query}", export, "text/csv")
    p(f"  the same file sent again: {status}, {'unchanged' if again.get('unchanged') else 'imported again'}")

    cur = schema.config.reporting_currency
    _, perf = finance.json("GET", "/api/v1/performance?by=channel&period=year")
    p(f"\nGET /api/v1/performance?by=channel&period=year ({cur}; results against the plan's expectation):")
    p(f"  {'channel':<12} {'spend':>14} {'pipeline':>15} {'per 1 spent':>11} {'expected':>9} {'cost/lead':>10}")
    ranked = []
    for row in perf["rows"]:
        m = row["measures"]
        roi = m["pipeline_roi"]
        if roi["actual"] is not None:
            ranked.append((roi["actual"], row["channel"]))
        p(
            f"  {row['channel']:<12} {_amount(m['spend']['actual'] or '0'):>14} "
            f"{_amount(m['pipeline']['actual'] or '0'):>15} {_ratio(roi['actual']):>11} {_ratio(roi['expected']):>9} "
            f"{_amount(m['cost_per_lead']['actual']) if m['cost_per_lead']['actual'] else 'no data':>10}"
        )
    if ranked:
        best, channel = max(ranked)
        p(f"  {channel} buys pipeline cheapest: {best:,.2f} of pipeline for every 1 spent ({1 / best:,.4f} a unit)")


def _ratio(value: float | None) -> str:
    return "no data" if value is None else f"{value:,.2f}"


@dataclass
class GoogleDemo:
    fake: Any
    env: dict[str, str]
    master_id: str
    settings: Any


def _google_fake(stack: contextlib.ExitStack, p: Any) -> Any:
    """The local Sheets API stand-in, served on 127.0.0.1 for the Google Sheets part of the story; None without it.

    The stand-in is a development package (devtools/sheets_standin, installed by `make`), never part of a
    production install: without it the demo tells the rest of the story and says why Google is left out.
    """
    try:
        from sheets_standin import SheetsFake  # optional: a development package, not a dependency
    except ImportError:
        p(
            "\nGoogle Sheets: left out, the local Sheets API stand-in is not installed "
            "(pip install -e devtools/sheets_standin, or run make demo)"
        )
        return None
    return stack.enter_context(SheetsFake.serve())


def _google_env(fake: Any, schema: PlanSchema) -> GoogleDemo:
    settings = gsheets.GoogleSettings(credentials_info=fake.service_account_info(), api_base=fake.base_url)
    master = gsheets.client(settings).create(f"{schema.config.org_name} marketing master budget")
    env = {
        "PLANSHEET_GOOGLE_CREDENTIALS_JSON": json.dumps(fake.service_account_info()),
        "PLANSHEET_GOOGLE_API_BASE": fake.base_url,
        "PLANSHEET_GOOGLE_MASTER_SPREADSHEET_ID": master.id,
    }
    return GoogleDemo(fake, env, master.id, settings)


def _google_story(schema: PlanSchema, base: str, tokens: dict[str, str], team: str, google: GoogleDemo, p: Any) -> None:
    """A team that plans in Google Sheets: sheet created, filled, pulled, approved; then the master pushed."""
    from sheet_templates.samples import sample_lines

    finance = Client(base, tokens["finance"])
    p(f"\nGoogle Sheets, against a local fake of the Sheets API at {google.fake.base_url} (not Google):")
    status, sheet = finance.json("POST", f"/api/v1/gsheets/teams/{team}", {"editors": ["planner@example.com"]})
    if status != 201:
        raise RuntimeError(f"creating the team sheet failed: {sheet}")
    p(f"  finance created {team}'s plan sheet {sheet['spreadsheet_id']} in {sheet['requests']} API calls")
    gc = gsheets.client(google.settings)
    region = team.split("-")[0]
    lines = sample_lines(schema, region, 40, seed=99, id_prefix=f"{region}G")
    rows = [
        ["" if line.get(c.name) is None else _cell(line.get(c.name)) for c in schema.input_columns] for line in lines
    ]
    last = column_letter(len(schema.input_columns))
    gc.open_by_key(sheet["spreadsheet_id"]).worksheet("Plan").update(
        values=rows, range_name=f"A2:{last}{len(rows) + 1}", value_input_option="USER_ENTERED"
    )
    p(f"  the planner typed {len(lines)} lines into it")
    marketer = Client(base, tokens[team])
    status, submission = marketer.json("POST", f"/api/v1/gsheets/teams/{team}/pull")
    if status != 201:
        raise RuntimeError(f"the pull was refused: {submission}")
    p(f"  pulled in one API call and submitted: submission {submission['id']}, {submission['lines']} lines")
    status, body = finance.json("POST", f"/api/v1/submissions/{submission['id']}/approve", {"comment": "demo"})
    if status != 200:
        raise RuntimeError(f"approving the Google plan failed: {body}")
    status, job = finance.send("POST", "/api/v1/gsheets/master/push", b"{}", "application/json", wait=60)
    if status != 200 or job["status"] != "succeeded":
        raise RuntimeError(f"the push failed: {job}")
    pushed = job["result"]
    _, master = finance.json("GET", "/api/v1/master")
    grid = google.fake.grid(google.master_id, f"Master!A1:B{len(master['lines']) + 5}")
    p(
        f"  pushed master version {pushed['master_version']} to the finance master sheet in {pushed['requests']} API "
        f"calls: {', '.join(f'{k} {v} rows' for k, v in pushed['sheets'].items())}; "
        f"read back: {len(grid) - 1} lines, as in the service's master ({len(master['lines'])})"
    )


NEXT_YEAR_GROWTH = Decimal("1.05")  # the demo's teams plan next year at this year's plan and 5% more


def _next_year_story(schema: PlanSchema, base: str, tokens: dict[str, str], teams: dict[str, str], p: Any) -> None:
    """Next fiscal year planned while this one runs; set against this year's; this year's last month closed."""
    this, following = schema.calendar.year, schema.calendar.year + 1
    finance = Client(base, tokens["finance"])
    _, master = finance.json("GET", "/api/v1/master")
    money_columns = {c.name for c in schema.input_columns if c.type is ColumnType.MONEY}
    date_columns = {c.name for c in schema.input_columns if c.type is ColumnType.DATE}
    p(f"\nFY{following} is planned while FY{this} runs (?year={following} on every route):")
    planners = {teams[r]: tokens[r] for r in teams} | {t: v for t, v in tokens.items() if t not in teams and "-" in t}
    for team, token in sorted(planners.items()):
        lines = []
        for line in (x for x in master["lines"] if x["team_id"] == team):
            values: dict[str, Any] = {}
            for c in schema.input_columns:
                value = line.get(c.name)
                if value in (None, "") or c.name in ("actual", "committed"):
                    continue
                if c.name in money_columns:
                    value = str((Decimal(value) * NEXT_YEAR_GROWTH / 100).quantize(Decimal("0.01")))
                elif c.name in date_columns:
                    day = dt.date.fromisoformat(str(value)[:10])
                    value = day.replace(year=day.year + 1, day=min(day.day, 28)).isoformat()
                values[c.name] = value
            lines.append(values)
        if not lines:
            continue
        marketer = Client(base, token)
        status, body = marketer.json("POST", f"/api/v1/submissions?year={following}", {"team": team, "lines": lines})
        if status != 201:
            raise RuntimeError(f"{team}'s FY{following} plan was refused: {body}")
        status, approved = finance.json(
            "POST", f"/api/v1/submissions/{body['id']}/approve?year={following}", {"comment": f"FY{following} plan"}
        )
        if status != 200:
            raise RuntimeError(f"approving {team}'s FY{following} plan failed: {approved}")
        p(f"  {team:<18} FY{following} plan of {len(lines)} lines approved (submission {body['id']})")
    for by, width in (("region", 6), ("channel", 12)):
        path = f"/api/v1/year-over-year?year={following}&by={by}&period=year"
        _, yoy = finance.json("GET", path)
        p(f"\nGET {path} ({schema.config.reporting_currency}):")
        p(f"  {by:<{width}} {'FY' + str(following) + ' plan':>16} {'FY' + str(this) + ' plan':>16} "
          f"{'FY' + str(this) + ' actual':>16} {'FY' + str(this) + ' estimate':>16}")  # fmt: skip
        for row in yoy["rows"]:
            keys = ("plan", "last_plan", "last_actual", "last_estimate")
            shown = [_amount(row[k]) if row[k] is not None else "-" for k in keys]
            p(f"  {row[by]:<{width}} " + " ".join(f"{v:>16}" for v in shown))
    for month in schema.month_columns:  # the year's accruals, closed in order: the last one reverses next year
        finance.json("POST", f"/api/v1/accruals/{month.name}/close")  # a month closed before answers 409
    _, accrual_months = finance.json("GET", "/api/v1/accruals")
    closed = len(accrual_months["closed"])
    last = schema.month_columns[-1].name
    journal = finance.download(f"/api/v1/accruals/{last}/journal.csv?entries=reversal").decode()
    rows = list(csv.DictReader(io.StringIO(journal)))
    when = sorted({(r["Date"], r["Period"]) for r in rows})
    p(
        f"\nFinance closed FY{this}'s accruals ({closed} of 12 months); {last}'s reversal: {len(rows)} journal "
        "lines on " + (", ".join(f"{d} ({period})" for d, period in when) or "no entries")
    )


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


DEMO_PASSWORD = "plansheet-demo"


def serve_dashboard(schema: PlanSchema, out: Path, stdout: TextIO) -> None:
    """Serve the demo's database with the dashboard on 127.0.0.1:8050 (or $PLANSHEET_PORT) until Ctrl+C."""
    port = os.environ.get("PLANSHEET_PORT", "8050")
    env = {**os.environ, "PLANSHEET_DATABASE_URL": f"sqlite:///{out / 'service.db'}", "PLANSHEET_PORT": port}
    env.setdefault("PLANSHEET_SECRET_KEY", uuid.uuid4().hex)
    if schema.config.source != "<default>":
        env["PLANSHEET_CONFIG"] = schema.config.source
    marketer = f"marketer-{schema.config.regions[1].lower()}"
    print(
        f"\nThe dashboard: http://127.0.0.1:{port}/\n"
        f"  finance login:  finance / {DEMO_PASSWORD}\n"
        f"  marketer login: {marketer} / {DEMO_PASSWORD}\n"
        "Ctrl+C stops it.",
        file=stdout,
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is how the demo ends
        subprocess.run(
            [sys.executable, "-m", "sync_service.cli", "serve", "--host", "127.0.0.1", "--port", port], env=env
        )


def _amount(text: str) -> str:
    return f"{float(text):,.2f}"
