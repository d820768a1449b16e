"""Benchmark a master of 100,000 lines against one of 10,000, in the same run, on SQLite and PostgreSQL.

For each database, two services are filled: an organisation of 500 teams (the bundled organisation
file with 125 business units per region, its allocations scaled to match) whose master holds an
approved plan of 200 sample lines per team (100,000 lines), 20,000 purchase orders and 60,000
invoices; and the baseline, an organisation of 52 teams of which 50 have approved plans (10,000
lines), with the POs and invoices scaled the same (2,000 and 6,000).

Filling: each plan is read and typed by the reader a JSON submission goes through
(`plan_from_rows`, `workflow.stored_lines`, the quarter x channel totals) and stored in bulk with
the rows an approved submission has (submission, lines and totals, approval chain and step,
decision, master version, audit events); no HTTP. The first team's plan goes through the API
(`POST /api/v1/submissions`, then its approval) and the script stops unless its stored rows equal
what the bulk path makes of the same plan. A budget baseline is locked (`baselines.lock_baseline`).
The POs and invoices go through the real imports (`spend.orders.import_purchase_orders` and
`import_invoices`, one export each, as `benchmarks/spend.py` makes them), timed and shown.

Each master is filled and measured in a process of its own (the baseline first, then the big one),
so neither's loaded masters and caches weigh on the other's figures. On each, the median of --repeat:
  1. the first API answer after an approval: a team's revised plan is submitted and approved
     over the API (the Flask test client), and the first `GET /api/v1/rollup?by=region&period=quarter`
     after it is timed (the new master version is loaded: that is the cost); the approval request
     and a second answer are shown beside it;
  2. the dashboard's master, spend and budget pages as finance, signed in through the login form,
     warm (the first request, which loads what the page reads, is shown beside);
  3. an import of 1,000 new POs (`import_purchase_orders`), and the same file again;
  4. a month close (`accruals.close`) of m01, m02 and m03 in turn;
  5. a submission's server time (the service's own `Server-Timing`): 12 different 1,000-line
     JSON plans of one team, the median of the last 10.
Then the standing targets with their same-run baselines: worker scaling (`benchmarks/service.py`
run twice on PostgreSQL, `--workers 1` and `--workers 2`: 8 clients' rate with two gunicorn
workers against one), and consolidation (`benchmarks/consolidate.py`'s own functions: `plansheet
consolidate` of 40 plans of 2,000 lines against the pandas loop and a bare calamine parse, on
both kinds of file).

A full run takes about 13 minutes on the 2-core VM (filling a 100,000-line master about 45 s, half
of it the two real imports), 6 more the first time, when `consolidate.py` makes its 80 plan files
(cached under build/bench); the big master's process peaks at about 5.4 GB.

    python benchmarks/scale.py [--db sqlite|postgres|both] [--teams 500] [--lines 200] [--pos 20000]
        [--invoices 60000] [--baseline-teams 50] [--repeat 3] [--no-standing] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select

from addin.reader import plan_from_rows
from benchmarks import consolidate
from benchmarks.service import as_json, cpu_model, database, write_org_config
from benchmarks.spend import invoices_csv, purchase_orders_csv
from sheet_templates.config import load_config
from sheet_templates.samples import sample_lines
from sheet_templates.schema import PlanSchema
from sync_service.access import approvals
from sync_service.access.auth import create_token
from sync_service.access.passwords import set_password
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.budget import allocations, baselines
from sync_service.planning import workflow
from sync_service.platform.context import SCHEMA, STORE
from sync_service.platform.migrate import upgrade
from sync_service.platform.storage import (
    ApprovalChain,
    ApprovalStep,
    AuditEvent,
    Decision,
    MasterVersion,
    Store,
    Submission,
    SubmissionLine,
    SubmissionTotal,
    User,
    add_submission_lines,
)
from sync_service.spend import accruals
from sync_service.spend import orders as po_imports

PASSWORD = "scale benchmark password"
ROLLUP = "/api/v1/rollup?by=region&period=quarter"
PAGES = ("/master", "/spend", "/budget")
CLOSED = ("m01", "m02", "m03")
BUNDLED_UNITS = 3  # business units per region in the bundled organisation file


# --- the organisation and its plans ------------------------------------------------------------------


def organisation(folder: Path, teams: int) -> tuple[Path, list[str]]:
    """`benchmarks/service.py`'s organisation file of `teams` teams, each region's allocation grown with its teams.

    The bundled allocations fit three business units per region; a region of 125 teams plans 42
    times as much, so its allocation is scaled by the same factor and the master stays within it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path, order = write_org_config(folder, teams)
    factor = math.ceil(teams / len(load_config(path).regions)) / BUNDLED_UNITS
    text = re.sub(
        r'^(Q[1-4]) = "(\d+)"$',
        lambda m: f'{m.group(1)} = "{round(int(m.group(2)) * factor)}"',
        path.read_text(encoding="utf-8"),
        flags=re.M,
    )
    path.write_text(text, encoding="utf-8")
    return path, order


@dataclass
class Plan:
    """A team's plan as a JSON client sends it, and what the service stores of it."""

    team: str
    region: str
    body: bytes
    stored: list[dict[str, Any]]
    rows: list[int]
    totals: dict[tuple[str, str], int]
    issues: list[dict[str, Any]]


def plan_lines(schema: PlanSchema, team: str, lines: int, seed: int, per_region: int) -> list[dict[str, Any]]:
    """A team's sample plan as JSON lines; the teams of a region together fill about 97% of its allocation."""
    region = team.split("-")[0]
    prefix = team.replace("-", "")[:12]
    made = sample_lines(schema, region, lines, seed=seed, id_prefix=prefix, fill=0.97 / per_region)
    return [as_json(x) for x in made]


def read_plan(schema: PlanSchema, team: str, json_lines: list[dict[str, Any]]) -> Plan:
    """What a team's first JSON submission of `json_lines` becomes: the API's grid, the reader, the lines and totals."""
    region = team.split("-")[0]
    body = {"team": team, "lines": json_lines}
    names = [c.name for c in schema.input_columns]
    grid = [names, *([line.get(n) for n in names] for line in json_lines)]  # as the API's _grid makes it
    read = plan_from_rows(grid, schema, sheet="lines", region=region)
    if not read.ok:
        raise SystemExit(f"a generated plan of {team} is not valid: {[i.to_dict() for i in read.errors][:3]}")
    return Plan(
        team,
        region,
        json.dumps(body).encode(),
        workflow.stored_lines(read.table),
        read.table["_row"].tolist(),
        allocations.plan_totals(read.table, schema),
        [i.to_dict() for i in read.issues],
    )


def store_approved(
    store: Store, schema: PlanSchema, plans: list[Plan], submitter: User, approver: User
) -> dict[str, int]:
    """Store each plan as a submission approved into its own master version, in bulk; {team: submission}.

    The rows are those `workflow.submit` and `workflow.decide` write (the notices they stage aside).
    """
    year = schema.calendar.year
    chains = schema.config.approvals
    current: dict[str, int] = {}
    for start in range(0, len(plans), 50):
        with store.transaction() as session:
            for plan in plans[start : start + 50]:
                submission = Submission(
                    fiscal_year=year,
                    team_id=plan.team,
                    user_id=submitter.id,
                    source="json",
                    filename=None,
                    raw=plan.body,
                    raw_sha256=hashlib.sha256(plan.body).hexdigest(),
                    valid=True,
                    line_count=len(plan.stored),
                    report=plan.issues,
                    based_on_submission=None,
                    base=None,
                    cycle_id=None,
                )
                session.add(submission)
                session.flush()
                add_submission_lines(session, submission.id, plan.stored, plan.rows, plan.totals)
                change = approvals.plan_change(session, None, plan.totals)
                approvals.record_chain(session, chains, submission.id, plan.region, change)
                detail = {"team": plan.team, "lines": len(plan.stored), "source": "json", "based_on": None}
                session.add(
                    AuditEvent(
                        user_id=submitter.id,
                        action="submission.create",
                        target=f"submission:{submission.id}",
                        detail=detail,
                    )
                )
                for position, step in enumerate(approvals.chain_for(chains, plan.region, change)):
                    session.add(
                        ApprovalStep(
                            submission_id=submission.id,
                            position=position,
                            step=step["step"],
                            user_id=approver.id,
                            action="approved",
                            comment="",
                        )
                    )
                session.add(Decision(submission_id=submission.id, user_id=approver.id, action="approved", comment=""))
                version = MasterVersion(
                    fiscal_year=year, user_id=approver.id, team_id=plan.team, submission_id=submission.id
                )
                session.add(version)
                session.flush()
                session.add(
                    AuditEvent(
                        user_id=approver.id,
                        action="submission.approve",
                        target=f"submission:{submission.id}",
                        detail={"team": plan.team, "comment": "", "version": version.id, "over_allocation": []},
                    )
                )
                current[plan.team] = submission.id
    return current


def stored_rows(store: Store, submission: int) -> Any:
    """A submission's lines, totals and approval chain as stored (JSON-normalised, to compare)."""
    with store.reading() as session:
        lines = session.execute(
            select(SubmissionLine.line_id, SubmissionLine.row, SubmissionLine.values)
            .where(SubmissionLine.submission_id == submission)
            .order_by(SubmissionLine.position)
        ).all()
        totals = session.execute(
            select(SubmissionTotal.quarter, SubmissionTotal.channel, SubmissionTotal.cents).where(
                SubmissionTotal.submission_id == submission
            )
        ).all()
        chain = session.get(ApprovalChain, submission)
        return _normal([[tuple(x) for x in lines], sorted(tuple(x) for x in totals), [chain.steps, chain.change_cents]])


def expected_rows(store: Store, schema: PlanSchema, plan: Plan) -> Any:
    """What `stored_rows` should read back for `plan`, had it been submitted (no earlier plan) and approved."""
    with store.reading() as session:
        change = approvals.plan_change(session, None, plan.totals)
    chain = approvals.chain_for(schema.config.approvals, plan.region, change)
    lines = [(line["line_id"], row, line) for line, row in zip(plan.stored, plan.rows, strict=True)]
    totals = sorted((q, c, cents) for (q, c), cents in plan.totals.items())
    return _normal([lines, totals, [chain, change]])


def _normal(value: Any) -> Any:
    return json.loads(json.dumps(value))


# --- a filled service --------------------------------------------------------------------------------


@dataclass
class Site:
    """One filled service: its app, clients and users, and what it holds."""

    app: Any
    store: Store
    schema: PlanSchema
    teams: list[str]
    per_region: int
    lines: int
    current: dict[str, int]
    tokens: dict[str, str]
    finance: User
    web: Any = None
    po_lines: list[dict[str, Any]] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)

    @property
    def master_lines(self) -> int:
        return len(self.current) * self.lines

    def api(self, method: str, path: str, token: str = "fiona", **kwargs: Any) -> Any:
        client = self.app.test_client()
        return client.open(path, method=method, headers={"Authorization": f"Bearer {self.tokens[token]}"}, **kwargs)


def expect(response: Any, status: int, what: str) -> Any:
    if response.status_code != status:
        raise SystemExit(f"{what}: HTTP {response.status_code}, not {status}: {response.get_data(as_text=True)[:2000]}")
    return response.get_json(silent=True)


def build(url: str, folder: Path, teams: int, lines: int, pos: int, invoices: int, log: Any) -> Site:
    """A service on `url` whose master holds `teams` approved plans of `lines` lines, `pos` POs and `invoices`."""
    config, order = organisation(folder, teams)
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "ORG_CONFIG": str(config), "TESTING": True, "SECRET_KEY": "scale-bench"})
    store: Store = app.extensions[STORE]
    schema = app.extensions[SCHEMA]
    per_region = math.ceil(teams / len(schema.config.regions))
    with store.transaction() as session:
        sync_teams(session, schema)
        tokens = {
            "sally": create_token(session, "sally", "finance"),
            "fiona": create_token(session, "fiona", "finance"),
        }
        set_password(session, "fiona", PASSWORD)
    with store.reading() as session:
        users = {u.name: u for u in session.scalars(select(User))}
    site = Site(app, store, schema, order, per_region, lines, {}, tokens, users["fiona"])

    started = time.perf_counter()
    plans = [read_plan(schema, team, plan_lines(schema, team, lines, n, per_region)) for n, team in enumerate(order)]
    made = time.perf_counter() - started
    # The first plan through the API, the rest in bulk: the bulk rows must be the API's.
    first = plans[0]
    answer = expect(
        site.api("POST", "/api/v1/submissions", "sally", data=first.body, content_type="application/json"),
        201,
        "submission",
    )
    expect(site.api("POST", f"/api/v1/submissions/{answer['id']}/approve", json={"comment": "ok"}), 200, "approval")
    site.current[first.team] = answer["id"]
    started = time.perf_counter()
    bulk = store_approved(store, schema, plans[1:], users["sally"], users["fiona"])
    stored = time.perf_counter() - started
    site.current.update(bulk)
    if stored_rows(store, answer["id"]) != expected_rows(store, schema, first):
        raise SystemExit("the API stored other lines, totals or chain than read_plan expects; fix read_plan")
    if stored_rows(store, bulk[plans[1].team]) != expected_rows(store, schema, plans[1]):
        raise SystemExit("the bulk fill stored other lines, totals or chain than the API would; fix store_approved")
    site.setup.append(
        f"{len(site.current)} approved plans of {lines} lines ({site.master_lines:,} lines): read and typed in "
        f"{made:.1f} s, stored in {stored:.1f} s (the first through the API: the same rows)"
    )
    baselines.lock_baseline(store, schema, site.finance, "Budget", "the year's budget")

    # POs over every fifth line (spread over all the teams), three invoices each: the real imports.
    every = max(1, site.master_lines // pos) if pos else 1
    chosen = [line for plan in plans for line in plan.stored][::every]
    site.po_lines = [export_view(line) for line in chosen]
    po_raw, orders = purchase_orders_csv(site.po_lines, pos)
    invoice_raw = invoices_csv(orders, invoices)
    started = time.perf_counter()
    status, report = po_imports.import_purchase_orders(store, schema, site.finance, po_raw, "purchase-orders.csv")
    assert status == 201 and report["new"] == pos, report
    imported = time.perf_counter() - started
    started = time.perf_counter()
    status, report = po_imports.import_invoices(store, schema, site.finance, invoice_raw, "invoices.csv")
    assert status == 201 and report["new"] == invoices, report
    site.setup.append(
        f"{pos:,} POs imported in {imported:.1f} s, {invoices:,} invoices in {time.perf_counter() - started:.1f} s "
        "(the real imports)"
    )
    site.web = app.test_client()
    page = site.web.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    signed = site.web.post("/login", data={"name": "fiona", "password": PASSWORD, "csrf_token": csrf})
    if signed.status_code != 302:
        raise SystemExit(f"signing in as fiona: HTTP {signed.status_code}")
    log(f"built: {'; '.join(site.setup)}")
    return site


def export_view(line: dict[str, Any]) -> dict[str, Any]:
    """A stored line (money in cents) as `purchase_orders_csv` reads a line: its ids, currency and months in units."""
    months = {f"m{k:02d}": (line.get(f"m{k:02d}") or 0) / 100 for k in range(1, 13)}
    return {"line_id": line["line_id"], "campaign_code": line["campaign_code"], "currency": line["currency"], **months}


# --- the measurements --------------------------------------------------------------------------------


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


@dataclass
class Figure:
    """One operation's seconds over the repeats, and what is worth saying beside them."""

    seconds: list[float]
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def after_approval(site: Site, repeat: int) -> dict[str, Figure]:
    """Approve a team's revised plan over the API, then time the first rollup answer (the new master's load)."""
    teams = sorted(site.current)
    approve, first, again = [], [], []
    for r in range(repeat):
        team = teams[(r * 97 + len(teams) // 3) % len(teams)]
        body = {
            "team": team,
            "lines": plan_lines(site.schema, team, site.lines, 10_000 + r, site.per_region),
            "based_on": {"submission": site.current[team]},
        }
        submitted = expect(site.api("POST", "/api/v1/submissions", "sally", json=body), 201, "revised plan")
        path = f"/api/v1/submissions/{submitted['id']}/approve"
        seconds, response = timed(lambda: site.api("POST", path, json={"comment": "ok"}))  # noqa: B023
        version = expect(response, 200, "approval")["master_version"]
        site.current[team] = submitted["id"]
        approve.append(seconds)
        seconds, response = timed(lambda: site.api("GET", ROLLUP))
        answer = expect(response, 200, "rollup")
        if answer["master_version"] != version:
            raise SystemExit(
                f"the rollup after approving version {version} answered version {answer['master_version']}"
            )
        first.append(seconds)
        again.append(timed(lambda: expect(site.api("GET", ROLLUP), 200, "rollup"))[0])
    return {"first": Figure(first), "approve": Figure(approve), "again": Figure(again)}


def pages(site: Site, repeat: int) -> dict[str, Figure]:
    """Each dashboard page as finance: one request first (shown), then `repeat` warm ones."""
    out = {}
    for page in PAGES:
        cold, response = timed(lambda: site.web.get(page))  # noqa: B023
        if response.status_code != 200:
            raise SystemExit(f"{page}: HTTP {response.status_code}")
        warm = [timed(lambda: site.web.get(page))[0] for _ in range(repeat)]  # noqa: B023
        out[page] = Figure(warm, f"first {milliseconds(cold)}; {len(response.get_data()) / 1024:,.0f} KiB")
    return out


def po_import(site: Site, rows: int, repeat: int) -> dict[str, Figure]:
    """Import `rows` new POs (`import_purchase_orders`, which loads the read model as it commits), then again."""
    new, again = [], []
    stored = 0
    for r in range(repeat):
        step = max(1, len(site.po_lines) // rows)
        raw, _ = purchase_orders_csv(site.po_lines[r % step :: step], rows, seed=100 + r)
        raw = raw.replace(b"\nPO-", f"\nPO-S{r}-".encode())  # numbers no earlier import used: every PO is new

        def run() -> tuple[int, dict[str, Any]]:
            return po_imports.import_purchase_orders(site.store, site.schema, site.finance, raw, "new-orders.csv")  # noqa: B023

        seconds, (status, report) = timed(run)
        assert status == 201 and report["new"] == rows, report
        new.append(seconds)
        stored = report["new"]
        seconds, (status, report) = timed(run)
        assert status == 200 and report["unchanged"] == rows, report
        again.append(seconds)
    return {"import": Figure(new, f"{stored:,} stored each time"), "import_again": Figure(again, "nothing stored")}


def month_close(site: Site) -> dict[str, Figure]:
    """Close m01, m02 and m03 in turn (`accruals.close`)."""
    seconds, entries = [], []
    for month in CLOSED:
        spent, answer = timed(lambda: accruals.close(site.store, site.schema, site.finance, month))  # noqa: B023
        seconds.append(spent)
        entries.append(len(answer["entries"]))
    words = ", ".join(
        f"{m} {milliseconds(s)} ({n:,} entries)" for m, s, n in zip(CLOSED, seconds, entries, strict=True)
    )
    return {"close": Figure(seconds, words)}


def server_time(site: Site, plans: int, lines: int) -> dict[str, Figure]:
    """The service's own time (`Server-Timing`) for `plans` different `lines`-line JSON plans of one team."""
    team = sorted(site.current)[-1]
    spent = []
    for r in range(plans):
        body = {
            "team": team,
            "lines": plan_lines(site.schema, team, lines, 20_000 + r, site.per_region),
            "based_on": {"submission": site.current[team]},
        }
        response = site.api("POST", "/api/v1/submissions", "sally", json=body)
        expect(response, 201, "submission")
        spent.append(float(re.search(r"dur=([\d.]+)", response.headers["Server-Timing"]).group(1)) / 1000)
    kept = spent[2:] or spent  # the first two warm the caches
    return {"server": Figure(kept, f"median of the last {len(kept)} of {plans}")}


@dataclass
class Measured:
    """One master's set-up and figures, as its process hands them back."""

    setup: list[str]
    teams: int
    lines: int
    figures: dict[str, Figure]


def measure_one(
    kind: str, label: str, teams: int, pos: int, invoices: int, args: argparse.Namespace, started: float
) -> Measured | None:
    """In a process of its own: fill a service of `kind` and time every operation on it (None: no database).

    Each master is measured in a fresh process, so neither one's loaded masters and caches weigh on
    the other's figures (the collector walks every object a process holds).
    """

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {kind} {label}: {message}", file=sys.stderr, flush=True)

    steps: list[tuple[str, Callable[[Site], dict[str, Figure]]]] = [
        ("the first answer after an approval", lambda s: after_approval(s, args.repeat)),
        ("the dashboard's pages", lambda s: pages(s, args.repeat)),
        (f"importing {args.import_rows:,} POs", lambda s: po_import(s, args.import_rows, args.repeat)),
        ("closing m01-m03", month_close),
        ("submissions' server time", lambda s: server_time(s, args.server_plans, args.server_lines)),
    ]
    with tempfile.TemporaryDirectory(prefix=f"plansheet-scale-{kind}-") as tmp, database(kind, Path(tmp)) as url:
        if url is None:
            return None
        log(f"filling ({teams} teams x {args.lines} lines)")
        site = build(url, Path(tmp), teams, args.lines, pos, invoices, log)
        figures: dict[str, Figure] = {}
        try:
            for what, step in steps:
                log(what)
                figures.update(step(site))
        finally:
            site.store.dispose()
    return Measured(site.setup, len(site.current), site.master_lines, figures)


# --- the standing targets ----------------------------------------------------------------------------


RATE = re.compile(
    r"^\s+(1 client \(baseline\)|\d+ clients)\s+(\d+) plans in\s+([\d.]+) s\s+([\d.]+) plans/s\s+"
    r"p50\s+([\d,]+) ms\s+p99\s+([\d,]+) ms",
    re.M,
)


def worker_scaling(args: argparse.Namespace, log: Callable[[str], None]) -> dict[int, dict[str, tuple]] | str:
    """`benchmarks/service.py --database postgres --teams 10` with one worker and with two: {workers: {who: rates}}."""
    if not shutil.which("redis-server"):
        return "not measured: two workers share a Redis, and redis-server is not installed"
    out = {}
    for workers in (1, 2):
        log(f"worker scaling: benchmarks/service.py --workers {workers}")
        command = [sys.executable, str(ROOT / "benchmarks" / "service.py"), "--database", "postgres"]
        command += ["--workers", str(workers), "--teams", "10", *(["--quick"] if args.quick else [])]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        found = {
            m[0]: (float(m[3]), int(m[4].replace(",", "")), int(m[5].replace(",", "")))
            for m in RATE.findall(done.stdout)
        }
        if done.returncode != 0 or len(found) != 2:
            failed = f"benchmarks/service.py --workers {workers} failed ({done.returncode})"
            return f"not measured: {failed}: {done.stderr[-500:]}"
        out[workers] = found
    return out


def consolidation(args: argparse.Namespace, log: Callable[[str], None]) -> list[tuple[str, float, float, float]]:
    """`benchmarks/consolidate.py`'s measurements on both kinds of file: (kind, parse, consolidate, pandas loop)."""
    folder = consolidate.generate(args.files, args.file_lines)
    cores = os.cpu_count() or 1
    out = []
    for kind, where in (("builder's files", folder), ("saved again by openpyxl", consolidate.resaved(folder))):
        log(f"consolidation: {kind}")
        parse = min(consolidate.parse_only(where) for _ in range(args.repeat))
        command = min(consolidate.consolidate_cli(where, cores) for _ in range(args.repeat))
        out.append((kind, parse, command, consolidate.naive_baseline(where)))
    return out


# --- output ------------------------------------------------------------------------------------------


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 0.1 else f"{seconds * 1000:,.0f} ms"


# (key, what, its short name, target in seconds or None, the most the big figure may be of the baseline's)
ROWS: tuple[tuple[str, str, str, float | None, float | None], ...] = (
    ("first", "first API answer after an approval (GET rollup)", "first answer", 0.300, 1.5),
    ("approve", "  the approval request itself", "approval", None, None),
    ("again", "  the answer after it (warm)", "next answer", None, None),
    ("/master", "dashboard: master budget page (warm)", "/master", 0.500, None),
    ("/spend", "dashboard: spend control page (warm)", "/spend", 0.500, None),
    ("/budget", "dashboard: budget page (warm)", "/budget", 0.500, None),
    ("import", "import of {import_rows:,} new POs", "PO import", 1.0, None),
    ("import_again", "  the same file again", "again", 1.0, None),
    ("close", "month close (median of m01, m02, m03)", "close", 5.0, None),
    ("server", "submission server time, {server_lines:,}-line JSON plan", "server time", 0.030, None),
)


def verdict(value: float, target: float | None, ratio: float, most: float | None) -> str:
    if target is None:
        return ""
    return "met" if value <= target and (most is None or ratio <= most) else "NOT met"


def database_table(kind: str, small: Measured, big: Measured, args: argparse.Namespace) -> None:
    head_small, head_big = f"{small.lines:,} lines", f"{big.lines:,} lines"
    figures = {key: (small.figures[key], big.figures[key]) for key in small.figures}
    print(f"\n{kind}: a master of {head_big} ({big.teams} teams) against one of {head_small} "
          f"({small.teams} teams), median of {args.repeat}")  # fmt: skip
    for line in small.setup + big.setup:
        print(f"  set-up: {line}")
    print(f"  {'operation':<52} {head_small:>14} {head_big:>15} {'ratio':>7}   {'target':<18} verdict")
    for key, what, _, target, most in ROWS:
        if key not in figures:
            continue
        one, other = figures[key]
        ratio = other.median / one.median if one.median else float("inf")
        goal = "" if target is None else milliseconds(target) + (f", <= {most}x" if most else "")
        print(
            f"  {what.format(**vars(args)):<52} {milliseconds(one.median):>14} {milliseconds(other.median):>15} "
            f"{ratio:>6.2f}x   {goal:<18} {verdict(other.median, target, ratio, most)}"
        )
    for key, _, short, _, _ in ROWS:
        if key in figures and (figures[key][0].note or figures[key][1].note):
            one, other = figures[key]
            print(f"  {short}: {head_small}: {one.note or '-'}; {head_big}: {other.note or '-'}")


def standing_table(scaling: dict | str | None, merged: list | None) -> None:
    def row(what: str, figure: str, baseline: str, ratio: float, target: str, met: bool) -> None:
        verdict = "met" if met else "NOT met"
        print(f"  {what:<64} {figure:>10} {baseline:>10} {ratio:>6.2f}x   {target:<9} {verdict}")

    print("\nstanding targets, each against its same-run baseline")
    print(f"  {'measure':<64} {'figure':>10} {'baseline':>10} {'ratio':>7}   {'target':<9} verdict")
    if isinstance(scaling, str):
        print(f"  worker scaling: {scaling}")
    elif scaling:
        one, two = scaling[1], scaling[2]
        many = next(k for k in two if k.endswith("clients"))
        ratio = two[many][0] / one[many][0]
        what = f"PostgreSQL, {many}: plans/s of 2 gunicorn workers / 1 process"
        row(what, f"{two[many][0]:.2f}/s", f"{one[many][0]:.2f}/s", ratio, ">= 1.6x", ratio >= 1.6)
        for workers, found in sorted(scaling.items()):
            single = found["1 client (baseline)"]
            print(
                f"    --workers {workers}: 1 client {single[0]:.2f} plans/s, {many} {found[many][0]:.2f} plans/s "
                f"({found[many][0] / single[0]:.2f}x the 1-client rate), "
                f"p50 {found[many][1]:,} ms, p99 {found[many][2]:,} ms"
            )
    for kind, parse, command, loop in merged or []:
        kind = "openpyxl-saved" if "openpyxl" in kind else kind
        what = f"consolidate (all cores) / a bare calamine parse, {kind}"
        row(what, f"{command:.2f} s", f"{parse:.2f} s", command / parse, "<= 1.3x", command <= 1.3 * parse)
        what = f"the pandas loop / consolidate (all cores), {kind}"
        row(what, f"{command:.2f} s", f"{loop:.2f} s", loop / command, ">= 10x", loop >= 10 * command)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--teams", type=int, default=500, help="teams with an approved plan in the big master")
    p.add_argument("--lines", type=int, default=200, help="lines per team plan")
    p.add_argument("--pos", type=int, default=20_000, help="purchase orders in the big master")
    p.add_argument("--invoices", type=int, default=60_000, help="invoices in the big master")
    p.add_argument("--baseline-teams", type=int, default=50, help="teams of the baseline master (POs scaled alike)")
    p.add_argument("--import-rows", type=int, default=1_000, help="rows of the timed PO import")
    p.add_argument("--server-plans", type=int, default=12, help="plans whose server time is taken (the first 2 warm)")
    p.add_argument("--server-lines", type=int, default=1_000, help="lines of those plans")
    p.add_argument("--repeat", type=int, default=3, help="repeats of each measurement (the median is shown)")
    p.add_argument("--files", type=int, default=40, help="consolidation: plans")
    p.add_argument("--file-lines", type=int, default=2_000, help="consolidation: lines per plan")
    p.add_argument("--no-standing", action="store_true", help="skip the standing targets (workers, consolidation)")
    p.add_argument("--quick", action="store_true", help="a small smoke run")
    args = p.parse_args()
    if args.quick:
        args.teams, args.lines, args.pos, args.invoices, args.baseline_teams = 24, 50, 240, 720, 8
        args.import_rows, args.server_plans, args.server_lines, args.repeat = 40, 4, 200, 2
        args.files, args.file_lines = 4, 200
    if not 0 < args.baseline_teams < args.teams:
        p.error("--baseline-teams must be positive and fewer than --teams")
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # drop the scratch databases on `kill` too
    started = time.perf_counter()
    load_before = os.getloadavg()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"{platform.system()}; load average {', '.join(f'{x:.2f}' for x in load_before)} at the start",
        flush=True,
    )
    share = args.baseline_teams / args.teams
    spawn = multiprocessing.get_context("spawn")
    for kind in kinds:
        begun = time.perf_counter()
        measured = []
        for label, teams, pos, invoices in (
            ("baseline", args.baseline_teams, round(args.pos * share), round(args.invoices * share)),
            ("big", args.teams, args.pos, args.invoices),
        ):
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                one = pool.submit(measure_one, kind, label, teams, pos, invoices, args, started).result()
            if one is None:
                break
            measured.append(one)
        if len(measured) == 2:
            database_table(kind, *measured, args)
            print(f"  ({kind}: {time.perf_counter() - begun:.0f} s, filling included)", flush=True)
    if not args.no_standing:
        scaling = (
            worker_scaling(args, log)
            if "postgres" in kinds
            else "not measured: several workers need PostgreSQL (--db postgres or both)"
        )
        standing_table(scaling, consolidation(args, log))
    print(
        f"\nload average {', '.join(f'{x:.2f}' for x in os.getloadavg())} at the end; "
        f"the run took {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
