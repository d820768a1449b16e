"""Benchmark an actuals import: a finance export of 400,000 rows (about 19 MiB of CSV) against a real master.

A SQLite file gets the bundled organisation's 12 teams, each with an approved plan of L sample
lines (default 1,000). The export's rows name a master line by line ID (most), by campaign code
(some, a few of them codes shared by several lines), or nothing the master knows (2%), in the
reporting currency or another plan currency. Then, in the same run:
  1. parse: `parse_actuals` alone (reading the CSV, typing every amount), outside any transaction;
  2. import: `import_actuals` as the API calls it: parse, match, the write transaction;
  3. baseline: the import as it was before the bulk path (`sync_service/actuals.py` at
     --baseline-commit, loaded from git): every row matched and converted one at a time, with the
     write lock held for all of it.
While each import runs, a probe writer on its own connection takes SQLite's write lock every few
milliseconds (BEGIN IMMEDIATE; COMMIT) and records its longest wait: how long the import kept
other writers out. Both imports must store the same amounts.

    python benchmarks/actuals_import.py [--rows 400000] [--lines 1000] [--no-baseline]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select

from sheet_templates.samples import sample_lines
from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.platform.context import SCHEMA, STORE
from sync_service.platform.migrate import upgrade
from sync_service.platform.storage import ActualAmount, Store, Team, User
from sync_service.results import actuals

BASELINE_COMMIT = "2245eed"  # main before the bulk import


def build_master(folder: Path, lines: int) -> tuple[Store, Any, list[dict[str, Any]]]:
    """A SQLite service whose master holds every bundled team's approved plan of `lines` sample lines."""
    url = f"sqlite:///{folder / 'plansheet.db'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True})
    store: Store = app.extensions[STORE]
    schema = app.extensions[SCHEMA]
    with store.transaction() as session:
        sync_teams(session, schema)
        teams = list(session.scalars(select(Team.id).order_by(Team.id)))
        submitter = create_token(session, "sally", "finance")
        approver = create_token(session, "fiona", "finance")
    client = app.test_client()
    master: list[dict[str, Any]] = []
    for n, team in enumerate(teams):
        plan = sample_lines(schema, team.split("-")[0], lines, seed=n, id_prefix=team.replace("-", "")[:10])
        body = {"team": team, "lines": [_as_json(x) for x in plan]}
        response = client.post("/api/v1/submissions", headers=_auth(submitter), json=body)
        assert response.status_code == 201, response.get_data(as_text=True)[:2000]
        sid = response.get_json()["id"]
        decided = client.post(f"/api/v1/submissions/{sid}/approve", headers=_auth(approver), json={})
        assert decided.status_code == 200, decided.get_data(as_text=True)[:2000]
        master += [{"team": team, **x} for x in plan]
    return store, schema, master


def _as_json(line: dict[str, Any]) -> dict[str, Any]:
    return {
        k: float(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, dt.date) else v
        for k, v in line.items()
    }


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def export_csv(master: list[dict[str, Any]], rows: int, seed: int = 7) -> bytes:
    """A finance export of `rows` rows against `master` (see the module docstring for the mix)."""
    rng = random.Random(seed)
    out = io.StringIO()
    out.write("Posting date,Line ID,Campaign code,Amount,Currency,Text\n")
    for n in range(rows):
        line = rng.choice(master)
        pick = rng.random()
        line_id, code = line["line_id"], ""
        if pick < 0.10:
            line_id, code = "", line["campaign_code"]
        elif pick < 0.12:
            line_id, code = f"GONE-{n}", ""
        amount = f"{rng.randint(-5_000, 250_000) / 100:.2f}"
        currency = rng.choice(("USD", "USD", "USD", "EUR", "GBP"))
        out.write(f"2026-{rng.randint(2, 12):02d}-15,{line_id},{code},{amount},{currency},GL posting {n}\n")
    return out.getvalue().encode()


class LockProbe:
    """A writer on its own connection that takes the write lock over and over and keeps its longest wait."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.longest = 0.0
        self.commits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=600, isolation_level=None)
        try:
            while not self._stop.is_set():
                started = time.perf_counter()
                connection.execute("BEGIN IMMEDIATE")
                connection.execute("COMMIT")
                self.longest = max(self.longest, time.perf_counter() - started)
                self.commits += 1
                time.sleep(0.002)
        finally:
            connection.close()

    def __enter__(self) -> LockProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def before_bulk(commit: str) -> types.ModuleType | None:
    """`sync_service/actuals.py` as it was at `commit`, as a module; None when git cannot give it."""
    try:
        source = subprocess.run(
            ["git", "show", f"{commit}:sync_service/actuals.py"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"(no baseline: {exc})")
        return None
    module = types.ModuleType("actuals_before_bulk")
    sys.modules[module.__name__] = module  # its dataclasses look their module up there
    exec(compile(source, f"actuals.py@{commit}", "exec"), module.__dict__)
    return module


def time_transactions(store: Store) -> list[float]:
    """Record how long each write transaction of `store` lasts (BEGIN IMMEDIATE to COMMIT: the write lock)."""
    spans: list[float] = []
    begin = store.transaction

    @contextmanager
    def transaction() -> Iterator[Any]:
        started = time.perf_counter()
        try:
            with begin() as session:
                yield session
        finally:
            spans.append(time.perf_counter() - started)

    store.transaction = transaction  # type: ignore[method-assign]
    return spans


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def stored_amounts(store: Store, import_id: int) -> dict[tuple[str, str], int]:
    with store.reading() as session:
        rows = session.execute(
            select(ActualAmount.team_id, ActualAmount.line_id, ActualAmount.cents).where(
                ActualAmount.import_id == import_id
            )
        )
        return {(t, lid): c for t, lid, c in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--lines", type=int, default=1_000, help="lines per team plan (12 teams)")
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}")
    with tempfile.TemporaryDirectory(prefix="plansheet-actuals-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        store, schema, master = build_master(folder, args.lines)
        print(f"master: {len(master):,} lines in 12 approved plans ({time.perf_counter() - started:.1f} s to build)")
        raw = export_csv(master, args.rows)
        print(f"export: {args.rows:,} rows, {len(raw) / 2**20:.1f} MiB of CSV")
        with store.reading() as session:
            user = session.scalars(select(User).where(User.name == "fiona")).one()
        db_path = str(folder / "plansheet.db")

        parse_s, parsed = timed(lambda: actuals.parse_actuals(raw, "export.csv", schema))
        print(f"\nparse only: {parse_s:.2f} s ({len(parsed):,} rows)")

        results: dict[str, tuple[float, float, int, dict[str, Any]]] = {}
        spans = time_transactions(store)
        with LockProbe(db_path) as probe:
            seconds, report = timed(lambda: actuals.import_actuals(store, schema, user, raw, "export.csv"))
        results["bulk"] = (seconds, probe.longest, probe.commits, report)
        print(f"bulk import: its write transaction(s) lasted {', '.join(f'{s * 1000:.0f} ms' for s in spans)}")
        spans.clear()
        module = None if args.no_baseline else before_bulk(args.baseline_commit)
        if module is not None:
            with LockProbe(db_path) as probe:
                seconds, report = timed(lambda: module.import_actuals(store, schema, user, raw, "export.csv"))
            results["row by row"] = (seconds, probe.longest, probe.commits, report)
            print(f"row by row: its write transaction lasted {', '.join(f'{s:.1f} s' for s in spans)}")
            same = stored_amounts(store, results["bulk"][3]["id"]) == stored_amounts(store, report["id"])
            fields = ("rows", "matched", "unmatched", "ambiguous", "spread", "lines", "total")
            same = same and all(results["bulk"][3][f] == report[f] for f in fields)
            print(f"the two imports stored the same amounts and report: {'yes' if same else 'NO'}")
            if not same:
                return 1
        bulk = results["bulk"][3]
        print(
            f"report: {bulk['rows']:,} rows, {bulk['matched']:,} matched, {len(bulk['unmatched']):,} unmatched, "
            f"{len(bulk['spread']):,} spread, {bulk['lines']:,} lines, total {bulk['total']} {bulk['currency']}"
        )
        print(f"\n{'import':<11} {'seconds':>8} {'x parse':>8} {'longest writer wait':>20} {'probe commits':>14}")
        for name, (seconds, longest, commits, _) in results.items():
            print(f"{name:<11} {seconds:>8.2f} {seconds / parse_s:>7.1f}x {longest * 1000:>17.0f} ms {commits:>14,}")
        if "row by row" in results:
            print(f"\nbulk import is {results['row by row'][0] / results['bulk'][0]:.1f}x faster than row by row")
        longest = results["bulk"][1]
        print(f"Target: the write lock held well under a second: {'met' if longest < 0.5 else 'NOT met'}")
        store.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
