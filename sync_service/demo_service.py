"""The service half of the demo: a real `plansheet serve` process on 127.0.0.1 and what each user does with it.

Marketers upload their regional plans (one is refused with its report, then fixed and sent
again), finance approves them, imports the finance system's actuals and reads the rollup and
the variance — all over HTTP, as any client would. The plans take most of each region's
allocation, quarter by quarter, their results are priced in the reporting currency, and the
budget moved and the what-if tried touch open months only, as in a company mid-year; every
figure printed goes through the one formatting module (`sheet_templates.formatting`).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import random
import shutil
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

from openpyxl import load_workbook

from sheet_templates.calendar import QUARTERS
from sheet_templates.cells import column_letter
from sheet_templates.excel_template import template_filename
from sheet_templates.formatting import Formats
from sheet_templates.money import to_cents
from sheet_templates.samples import sample_lines
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
        f"\nFinance imported {out / 'purchase-orders.csv'}: {_count(report['rows'])} POs, {_count(report['matched'])} "
        f"matched to plan lines, {_count(len(report['unmatched']))} unmatched, "
        f"{_count(len(report['over_plan']))} line(s) over plan"
    )
    for row in report["unmatched"]:
        p(f"  row {row['row']}: PO {row['po_number']} names no plan line ({row['line_id'] or row['campaign_code']})")
    status, again = finance.send("POST", "/api/v1/purchase-orders?filename=purchase-orders.csv", export, "text/csv")
    p(f"  the same file sent again: {status}, {_count(again['new'])} new, {_count(again['unchanged'])} unchanged")
    _, orders = finance.json("GET", "/api/v1/purchase-orders")
    bills = invoices_csv(orders["purchase_orders"], schema)
    (out / "invoices.csv").write_bytes(bills)
    status, report = finance.send("POST", "/api/v1/invoices?filename=invoices.csv", bills, "text/csv")
    if status != 201:
        raise RuntimeError(f"the invoice import failed: {report}")
    p(
        f"Finance imported {out / 'invoices.csv'}: {_count(report['rows'])} invoices, {_count(report['matched'])} "
        f"matched by PO number, {_count(len(report['unmatched']))} unmatched, "
        f"{_count(len(report['over_po']))} beyond their PO"
    )
    month = schema.calendar.months[0]
    cur = schema.config.reporting_currency
    _, view = finance.json("GET", f"/api/v1/spend?by=region&month={month.name}")
    p(f"\nGET /api/v1/spend?by=region&month={month.name} ({cur}; at the end of {FORMATS.month(month)}):")
    p(f"  {'region':<6} {'planned':>14} {'committed':>14} {'invoiced':>12} {'accrued':>12} {'remaining':>14}")
    for row in view["rows"]:
        cells = [_amount(row[k], cur) for k in ("plan", "committed", "invoiced", "accrued", "remaining")]
        p(f"  {row['region']:<6} {cells[0]:>14} {cells[1]:>14} {cells[2]:>12} {cells[3]:>12} {cells[4]:>14}")
    (out / f"accrual-{month.name}.csv").write_bytes(finance.download(f"/api/v1/accruals/{month.name}/journal.csv"))
    status, closed = finance.json("POST", f"/api/v1/accruals/{month.name}/close")
    if status != 200:
        raise RuntimeError(f"closing the accrual failed: {closed}")
    journal = out / f"accrual-{month.name}.csv"
    p(
        f"Finance closed {FORMATS.month(month)}'s accrual: {_count(len(closed['entries']))} PO(s), "
        f"{_money(closed['total'], cur)}; the journal (with its reversal on "
        f"{FORMATS.date(schema.calendar.months[1].first_day)}) is {journal}"
    )
    _pack_story(out, finance, closed.get("pack"), FORMATS.month(month), p)


def _pack_story(out: Path, finance: Client, queued: dict[str, Any] | None, month: str, p: Any) -> None:
    """The month's management pack, built in the background when the month closed: kept beside the demo's files."""
    if not queued:
        return
    deadline = time.monotonic() + PACK_WAIT_SECONDS
    job: dict[str, Any] = {"status": "queued"}
    while job["status"] not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
        _, job = finance.json("GET", queued["href"])
    if job["status"] != "succeeded" or not job["result"].get("packs"):
        p(f"{month}'s management pack is still being built; it will be on the Management packs page")
        return
    _, pack = finance.json("GET", f"/api/v1/packs/{job['result']['packs'][0]}")
    workbook = out / f"management-pack-{pack['month']}.xlsx"
    workbook.write_bytes(finance.download(pack["workbook"]))
    if pack["pdf"]:
        pdf = workbook.with_suffix(".pdf")
        pdf.write_bytes(finance.download(pack["pdf"]))
        p(f"{month}'s management pack built itself: {workbook} and {pdf}")
    else:
        p(f"{month}'s management pack built itself: {workbook} (no PDF: {pack['pdf_note']})")


PACK_WAIT_SECONDS = 180  # a 2-core machine renders the PDF in seconds; LibreOffice starting cold takes longer

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


# How much of its allocation each region's demo plans take, and the share of it the team planning in Google has.
PLAN_FILL = 0.93
GOOGLE_FILL = 0.2
GOOGLE_LINES = 40


def google_team(schema: PlanSchema) -> str:
    """The demo's team that plans in Google Sheets: the first region's last business unit."""
    return team_id(schema.config.regions[0], schema.config.business_units[-1])


def plan_fill(schema: PlanSchema, region: str) -> float:
    """The share of `region`'s allocation its uploaded demo plan takes (less where a Google team plans too)."""
    return PLAN_FILL - (GOOGLE_FILL if region == schema.config.regions[0] else 0)


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
    google = google_team(schema)
    with store.transaction() as session:
        sync_teams(session, schema)
        tokens = {
            region: create_token(session, f"marketer-{region.lower()}", "marketer", [teams[region]])
            for region in regions
        }
        tokens["finance"] = create_token(session, "finance", "finance")
        set_password(session, "finance", DEMO_PASSWORD)  # the dashboard's demo logins
        set_password(session, f"marketer-{regions[1].lower()}", DEMO_PASSWORD)
        tokens[google] = create_token(session, "planner-google", "marketer", [google])
    store.dispose()
    (out / "tokens.json").write_text(json.dumps(tokens, indent=2) + "\n")
    p = lambda *a: print(*a, file=stdout)  # noqa: E731
    p(f"\nThe sync service: {url} (teams and demo tokens in {out / 'tokens.json'})")
    with contextlib.ExitStack() as stack:
        fake = _google_fake(stack, p)
        sheets = _google_env(fake, schema) if fake else None
        base = stack.enter_context(serving(url, schema, sheets.env if sheets else None))
        _plans_story(schema, base, tokens, teams, plans, fixed, bad_region, p)
        if sheets is not None:
            _google_story(schema, base, tokens, google, sheets, dt.date.fromisoformat(as_of), p)
        _finance_story(schema, out, base, tokens, closed, as_of, p)
        region = "EMEA" if "EMEA" in regions else regions[0]
        _reforecast_story(schema, out, base, tokens, region, teams[region], closed, as_of, p)
        if schema.calendar.year + 1 in schema.config.years:
            _next_year_story(schema, base, tokens, teams, p)
    p(
        f"\nServe it yourself: PLANSHEET_DATABASE_URL={url} {_plansheet()} serve   "
        f"(tokens in {out / 'tokens.json'}; try GET /api/v1/master)"
    )
    return 0


def _plansheet() -> str:
    """How to run the `plansheet` command installed beside this Python: .venv/bin/plansheet from a checkout."""
    script = Path(sys.executable).with_name("plansheet")
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return "plansheet" if shutil.which("plansheet") == str(script) else str(script)


def _plans_story(
    schema: PlanSchema,
    base: str,
    tokens: dict[str, str],
    teams: dict[str, str],
    plans: Path,
    fixed: Path,
    bad_region: str,
    p: Any,
) -> None:
    """Each region's marketer uploads the plan; one is refused at its cells, fixed and sent again; finance approves."""
    regions = schema.config.regions
    p(f"Started `plansheet serve` on {base}")
    finance = Client(base, tokens["finance"])
    submitted = {}
    for region in regions:
        client = Client(base, tokens[region])
        status, body = client.upload("/api/v1/submissions", plans / template_filename(region), team=teams[region])
        if status == 201:
            submitted[region] = body["id"]
            p(f"  {teams[region]:<18} submitted {_count(body['lines'])} lines: submission {body['id']}")
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
        over = body["over_allocation"]
        flagged = f", over allocation in {_count(len(over))} place(s)" if over else ""
        p(f"  finance approved submission {sid} ({teams[region]}): master version {body['master_version']}{flagged}")


def _finance_story(
    schema: PlanSchema, out: Path, base: str, tokens: dict[str, str], closed: int, as_of: str, p: Any
) -> None:
    """Finance's side once the plans are in: actuals, the CRM's results, the budget, rollup, variance, month end."""
    regions = schema.config.regions
    finance = Client(base, tokens["finance"])
    _, master = finance.json("GET", "/api/v1/master")
    export = actuals_csv(master, schema, closed)
    (out / "actuals.csv").write_bytes(export)
    status, report = finance.send("POST", "/api/v1/actuals?filename=actuals.csv", export, "text/csv")
    if status != 201:
        raise RuntimeError(f"the actuals import failed: {report}")
    p(
        f"\nFinance imported {out / 'actuals.csv'}: {_count(report['rows'])} rows, {_count(report['matched'])} "
        f"matched, {_count(len(report['unmatched']))} unmatched, {_count(len(report['spread']))} spread over several "
        "lines by campaign code"
    )
    cur = schema.config.reporting_currency
    for row in report["unmatched"]:
        amount = _money(row["amount"], row.get("currency") or cur)
        p(f"  row {row['row']}: no plan line {row['line_id'] or row['campaign_code']} ({amount})")

    _crm_story(schema, out, finance, master, closed, p)
    region = "EMEA" if "EMEA" in regions else regions[0]
    _budget_story(schema, finance, Client(base, tokens[region]), region, closed, p)

    _, rollup = finance.json("GET", "/api/v1/rollup?by=region&period=quarter")
    p(f"\nGET /api/v1/rollup?by=region&period=quarter ({cur}; planned, and the share of the allocation):")
    names = [FORMATS.quarter(q, schema.calendar.year) for q in QUARTERS]
    p(f"  {'region':<6} " + " ".join(f"{n:>13}" for n in names) + f" {'year':>13} {'allocation':>13} {'share':>6}")
    by_region: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rollup["rows"]:
        by_region.setdefault(row["region"], {})[row["period"]] = row
    for region, quarters in by_region.items():
        planned = sum(to_cents(r["amount"]) or 0 for r in quarters.values())
        allocated = sum(to_cents(r.get("allocation") or 0) or 0 for r in quarters.values())
        cells = " ".join(f"{_amount(quarters[q]['amount'] if q in quarters else 0, cur):>13}" for q in QUARTERS)
        share = FORMATS.percent(planned / allocated, 0) if allocated else "-"
        p(f"  {region:<6} {cells} {FORMATS.amount(planned, cur):>13} {FORMATS.amount(allocated, cur):>13} {share:>6}")
    _, variance = finance.json("GET", f"/api/v1/variance?by=region&as_of={as_of}")
    p(
        f"\nGET /api/v1/variance?by=region&as_of={as_of} ({cur}; {_count(variance['closed_months'])} fiscal months "
        "closed):"
    )
    p(f"  {'region':<6} {'plan to date':>14} {'actual':>14} {'variance':>14}  flag")
    for row in variance["rows"]:
        cells = [_amount(row[k], cur) for k in ("planned_to_date", "actual", "variance")]
        p(f"  {row['region']:<6} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14}  {row['flag']}")
    _spend_story(schema, out, finance, master, p)


TRANSFER = "25000.00"  # above the default TRANSFER_FINANCE_LIMIT: the giving side and finance approve


def transfer_cells(schema: PlanSchema, region: str, closed: int) -> tuple[tuple[str, str], tuple[str, str]]:
    """Where the demo's transfer moves budget once `closed` months have closed: ((region, quarter), (region, quarter)).

    From the first quarter with a month still open (never a closed quarter) to the quarter after
    it; from the year's last quarter, to the next region's same quarter.
    """
    open_quarters = [q for q in QUARTERS if int(q[1]) * 3 > closed] or [QUARTERS[-1]]
    giving = open_quarters[0]
    if len(open_quarters) > 1:
        return (region, giving), (region, open_quarters[1])
    regions = list(schema.config.regions)
    return (region, giving), (regions[(regions.index(region) + 1) % len(regions)], giving)


def _budget_story(schema: PlanSchema, finance: Client, marketer: Client, region: str, closed: int, p: Any) -> None:
    """The approved master locked as the budget; budget moved out of an open quarter by a transfer; budget and plan."""
    name = f"{schema.calendar.label} budget"
    status, baseline = finance.json("POST", "/api/v1/baselines", {"name": name, "comment": "demo: the agreed plans"})
    if status != 201:
        raise RuntimeError(f"locking the budget failed: {baseline}")
    p(
        f"\nFinance locked the master as the budget: baseline {baseline['id']} {name!r} "
        f"(master version {baseline['master_version']}, allocation revision {baseline['allocation_revision']})"
    )
    source, target = transfer_cells(schema, region, closed)
    if source[0] == target[0]:
        moved_to = schema.calendar.months[(int(target[1][1]) - 1) * 3]
        reason = f"demo: the {source[1]} summit moved to {FORMATS.month(moved_to)}"
    else:
        reason = f"demo: {target[0]} hosts the joint partner summit in {target[1]}"
    body = {
        "from": {"region": source[0], "quarter": source[1], "channel": "*"},
        "to": {"region": target[0], "quarter": target[1], "channel": "*"},
        "amount": TRANSFER,
        "reason": reason,
    }
    status, transfer = marketer.json("POST", "/api/v1/transfers", body)
    if status != 201:
        raise RuntimeError(f"asking for the transfer failed: {transfer}")
    year, cur = schema.calendar.year, schema.config.reporting_currency
    p(
        f"  {region}'s marketer asked to move {_money(TRANSFER, cur)} from {source[0]} "
        f"{FORMATS.quarter(source[1], year)} to {target[0]} {FORMATS.quarter(target[1], year)} "
        f"(transfer {transfer['id']}): their consent given, waiting for {' and '.join(transfer['waiting_for'])}"
    )
    status, transfer = finance.json("POST", f"/api/v1/transfers/{transfer['id']}/approve", {"comment": "demo: fine"})
    if status != 200:
        raise RuntimeError(f"approving the transfer failed: {transfer}")
    p(f"  finance approved it: allocation revision {transfer['allocation_revision']}")
    for message in transfer["over_allocation"]:
        p(f"  flagged: {message}")
    _, view = finance.json("GET", "/api/v1/budget?by=region&period=quarter")
    shown = sorted({source[0], target[0]}, key=lambda r: r != region)
    p(f"\nGET /api/v1/budget?by=region&period=quarter ({cur}; {' and '.join(shown)}):")
    p(f"  {'region':<6} {'quarter':<9} {'budget':>14} {'plan':>14} {'allocation then':>16} {'allocation now':>15}")
    for row in sorted((r for r in view["rows"] if r["region"] in shown), key=lambda r: shown.index(r["region"])):
        cells = [_amount(row.get(k) or 0, cur) for k in ("budget", "plan", "budget_allocation", "allocation")]
        p(
            f"  {row['region']:<6} {FORMATS.quarter(row['period'], year):<9} {cells[0]:>14} {cells[1]:>14} "
            f"{cells[2]:>16} {cells[3]:>15}"
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
    finance, marketer = Client(base, tokens["finance"]), Client(base, tokens[region])
    months = list(schema.month_columns)
    cal, cur = schema.calendar, schema.config.reporting_currency
    closed = min(max(closed, 1), len(months) - 1)  # a reforecast has a closed month and an open one
    last = months[closed - 1]
    named = {m.name: FORMATS.month(m.name, cal) for m in months}
    day = max(dt.date.fromisoformat(as_of), dt.date.today())  # a deadline is never in the past
    deadline = (day + dt.timedelta(days=10)).isoformat()
    body = {"name": f"{named[last.name]} reforecast", "through": last.name, "deadline": deadline,
            "comment": "demo: forecast what is left of the year"}  # fmt: skip
    status, cycle = finance.json("POST", "/api/v1/cycles", body)
    if status != 201:
        raise RuntimeError(f"opening the reforecast failed: {cycle}")
    p(
        f"\nThe reforecast: finance opened {cycle['name']!r} (cycle {cycle['id']}), due "
        f"{FORMATS.date(cycle['deadline'])}: {named[months[0].name]} to {named[last.name]} are closed and locked"
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
    before = to_cents(cell.value or 0) or 0
    cell.value = (before + RAISE_CENTS) / 100
    book.save(path)
    currency = sheet.cell(2, schema["currency"].index).value
    p(
        f"  {team}'s marketer downloaded {path.name} (the closed months show the spend booked, locked) and raised "
        f"line {sheet.cell(2, 1).value}'s {named[target.name]} from {FORMATS.money(before, currency)} to "
        f"{FORMATS.money(before + RAISE_CENTS, currency)}"
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
    p(f"  the cycle waits for {_count(len(waiting))} more team(s); `plansheet remind` tells them as the deadline nears")
    _, view = finance.json("GET", "/api/v1/budget?by=region&period=quarter")
    p(f"\nBudget against the latest estimate, GET /api/v1/budget?by=region&period=quarter ({cur}; {region}):")
    p(f"  {'quarter':<9} {'budget':>14} {'plan':>14} {'estimate':>14} {'actual':>14}")
    for row in view["rows"]:
        if row["region"] == region:
            cells = [_amount(row[k] or 0, cur) for k in ("budget", "plan", "estimate", "actual")]
            p(
                f"  {FORMATS.quarter(row['period'], cal.year):<9} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14} "
                f"{cells[3]:>14}"
            )
    still_open = months[closed:]  # a scenario changes open months only: the closed ones hold what was booked
    span = named[still_open[0].name] + (f" to {named[still_open[-1].name]}" if len(still_open) > 1 else "")
    body = {"name": f"Events down a tenth from {named[still_open[0].name]}", "from": "estimate"}
    status, scenario = finance.json("POST", "/api/v1/scenarios", body)
    if status != 201:
        raise RuntimeError(f"making the scenario failed: {scenario}")
    changes = [{"op": "scale", "channel": "Events", "period": m.name, "factor": "0.9"} for m in still_open]
    status, changed = finance.json("POST", f"/api/v1/scenarios/{scenario['id']}/changes", {"changes": changes})
    if status != 200:
        raise RuntimeError(f"changing the scenario failed: {changed}")
    _, compared = finance.json("GET", f"/api/v1/scenarios/{scenario['id']}/compare?by=channel&period=year")
    total = compared["total"]
    p(
        f"\nA what-if: scenario {scenario['id']} {body['name']!r} from the latest estimate, Events scaled by 0.9 "
        f"in the open months ({span}): {_money(total['origin'], cur)} -> {_money(total['scenario'], cur)}, a "
        f"change of {_money(total['change'], cur)}; {_count(len(compared['lines']['changed']))} line(s) changed, "
        "the master untouched until it is promoted"
    )


RAISE_CENTS = 500_000  # what the demo's reforecast adds to a line's first open month


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
        f"{_count(report['rows'])} rows for {_count(len(report['months']))} months, {_count(report['lines'])} plan "
        f"lines matched, {_count(report['unmatched_rows'])} row(s) unmatched"
    )
    for row in report["skipped"][:3]:
        p(f"  row {row['row']}: skipped, {row['reason']}")
    for row in report["unmatched"][:3]:
        named = row.get("crm_campaign_id") or row.get("campaign_code") or row.get("campaign")
        p(f"  row {row['row']}: no plan line or campaign {named}")
    status, again = finance.send("POST", f"/api/v1/outcomes?{query}", export, "text/csv")
    p(f"  the same file sent again: {status}, {'unchanged' if again.get('unchanged') else 'imported again'}")

    cur = schema.config.reporting_currency
    for by, width in (("channel", 12), ("region", 6)):
        _, perf = finance.json("GET", f"/api/v1/performance?by={by}&period=year")
        p(f"\nGET /api/v1/performance?by={by}&period=year ({cur}; results against the plan's expectation):")
        p(
            f"  {by:<{width}} {'spend':>14} {'pipeline':>15} {'per 1 spent':>11} {'expected':>9} "
            f"{'leads':>8} {'cost/lead':>10}"
        )
        ranked = []
        for row in perf["rows"]:
            m = row["measures"]
            roi = m["pipeline_roi"]
            if roi["actual"] is not None:
                ranked.append((roi["actual"], row[by]))
            p(
                f"  {row[by]:<{width}} {_amount(m['spend']['actual'], cur):>14} "
                f"{_amount(m['pipeline']['actual'], cur):>15} {_ratio(roi['actual']):>11} "
                f"{_ratio(roi['expected']):>9} {_count(m['leads']['actual']) or '-':>8} "
                f"{_amount(m['cost_per_lead']['actual'], cur) if m['cost_per_lead']['actual'] else 'no data':>10}"
            )
        if ranked and by == "channel":
            best, channel = max(ranked)
            p(
                f"  {channel} buys pipeline cheapest: {FORMATS.ratio(best)} of pipeline for every 1 {cur} spent "
                f"({FORMATS.ratio(1 / best, 4)} {cur} a unit)"
            )


def _ratio(value: float | None) -> str:
    return "no data" if value is None else FORMATS.ratio(value)


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


@contextlib.contextmanager
def _sheets(settings: gsheets.GoogleSettings) -> Iterator[Any]:
    """A gspread client of the service account, its connections closed on exit."""
    gc = gsheets.client(settings)
    try:
        yield gc
    finally:
        gc.http_client.session.close()


def _google_env(fake: Any, schema: PlanSchema) -> GoogleDemo:
    settings = gsheets.GoogleSettings(credentials_info=fake.service_account_info(), api_base=fake.base_url)
    with _sheets(settings) as gc:
        master = gc.create(f"{schema.config.org_name} marketing master budget")
    env = {
        "PLANSHEET_GOOGLE_CREDENTIALS_JSON": json.dumps(fake.service_account_info()),
        "PLANSHEET_GOOGLE_API_BASE": fake.base_url,
        "PLANSHEET_GOOGLE_MASTER_SPREADSHEET_ID": master.id,
    }
    return GoogleDemo(fake, env, master.id, settings)


def _google_story(
    schema: PlanSchema, base: str, tokens: dict[str, str], team: str, google: GoogleDemo, as_of: dt.date, p: Any
) -> None:
    """A team that plans in Google Sheets: sheet created, filled, pulled, approved; then the master pushed."""
    finance = Client(base, tokens["finance"])
    p(f"\nGoogle Sheets, against a local fake of the Sheets API at {google.fake.base_url} (not Google):")
    status, sheet = finance.json("POST", f"/api/v1/gsheets/teams/{team}", {"editors": ["planner@example.com"]})
    if status != 201:
        raise RuntimeError(f"creating the team sheet failed: {sheet}")
    p(f"  finance created {team}'s plan sheet {sheet['spreadsheet_id']} in {_count(sheet['requests'])} API calls")
    region = team.split("-")[0]
    lines = sample_lines(
        schema,
        region,
        GOOGLE_LINES,
        seed=99,
        today=as_of,
        id_prefix=f"{region}G",
        fill=GOOGLE_FILL,
        results_at_plan_rates=True,
        phased_to_allocation=True,
    )
    rows = [
        ["" if line.get(c.name) is None else _cell(line.get(c.name)) for c in schema.input_columns] for line in lines
    ]
    last = column_letter(len(schema.input_columns))
    with _sheets(google.settings) as gc:
        gc.open_by_key(sheet["spreadsheet_id"]).worksheet("Plan").update(
            values=rows, range_name=f"A2:{last}{len(rows) + 1}", value_input_option="USER_ENTERED"
        )
    p(f"  the planner typed {_count(len(lines))} lines into it")
    marketer = Client(base, tokens[team])
    status, submission = marketer.json("POST", f"/api/v1/gsheets/teams/{team}/pull")
    if status != 201:
        raise RuntimeError(f"the pull was refused: {submission}")
    p(f"  pulled in one API call and submitted: submission {submission['id']}, {_count(submission['lines'])} lines")
    status, body = finance.json("POST", f"/api/v1/submissions/{submission['id']}/approve", {"comment": "demo"})
    if status != 200:
        raise RuntimeError(f"approving the Google plan failed: {body}")
    status, job = finance.send("POST", "/api/v1/gsheets/master/push", b"{}", "application/json", wait=60)
    if status != 200 or job["status"] != "succeeded":
        raise RuntimeError(f"the push failed: {job}")
    pushed = job["result"]
    sheets = pushed["sheets"].items()
    _, master = finance.json("GET", "/api/v1/master")
    grid = google.fake.grid(google.master_id, f"Master!A1:B{len(master['lines']) + 5}")
    p(
        f"  pushed master version {pushed['master_version']} to the finance master sheet in "
        f"{_count(pushed['requests'])} API calls: {', '.join(f'{k} {_count(n)} rows' for k, n in sheets)}; "
        f"read back: {_count(len(grid) - 1)} lines, as in the service's master ({_count(len(master['lines']))})"
    )


NEXT_YEAR_GROWTH = Decimal("1.05")  # the demo's teams plan next year at this year's plan and 5% more


def _next_year_story(schema: PlanSchema, base: str, tokens: dict[str, str], teams: dict[str, str], p: Any) -> None:
    """Next fiscal year planned while this one runs; set against this year's; this year's last month closed."""
    this, following = schema.calendar.year, schema.calendar.year + 1
    finance = Client(base, tokens["finance"])
    _, master = finance.json("GET", "/api/v1/master")
    money_columns = {c.name for c in schema.input_columns if c.type is ColumnType.MONEY}
    date_columns = {c.name for c in schema.input_columns if c.type is ColumnType.DATE}
    cur = schema.config.reporting_currency
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
        p(f"  {team:<18} FY{following} plan of {_count(len(lines))} lines approved (submission {body['id']})")
    for by, width in (("region", 6), ("channel", 12)):
        path = f"/api/v1/year-over-year?year={following}&by={by}&period=year"
        _, yoy = finance.json("GET", path)
        p(f"\nGET {path} ({cur}):")
        p(f"  {by:<{width}} {'FY' + str(following) + ' plan':>16} {'FY' + str(this) + ' plan':>16} "
          f"{'FY' + str(this) + ' actual':>16} {'FY' + str(this) + ' estimate':>16}")  # fmt: skip
        for row in yoy["rows"]:
            keys = ("plan", "last_plan", "last_actual", "last_estimate")
            shown = [_amount(row[k], cur) for k in keys]
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
        f"\nFinance closed FY{this}'s accruals ({_count(closed)} of {_count(len(schema.month_columns))} months); "
        f"{FORMATS.month(last, schema.calendar)}'s reversal: {_count(len(rows))} journal lines on "
        + (", ".join(f"{FORMATS.date(d)} ({period})" for d, period in when) or "no entries")
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


FORMATS = Formats()  # the demo has no app at hand, so the default locale


def _amount(value: Any, currency: str) -> str:
    """An amount the API answers (a decimal in `currency`) for a table whose header names the currency; '-' for none."""
    cents = None if value in (None, "") else to_cents(value)
    return "-" if cents is None else FORMATS.amount(cents, currency)


def _money(value: Any, currency: str) -> str:
    """An amount the API answers (a decimal in `currency`) in a sentence: "$25,000.00"."""
    return FORMATS.money(to_cents(value), currency)


def _count(value: Any) -> str:
    return FORMATS.count(value)
