"""Benchmark spend control: importing purchase orders and invoices, and what they cost every master load.

A SQLite file gets the bundled organisation's 12 teams, each with an approved plan of L sample
lines (default 1,000: 12,000 lines; `build_master` of `benchmarks/actuals_import.py`). Then, in
the same run:
  1. import P purchase orders (default 12,000: one per line, for 30-95% of its planned spend;
     80% in the line's currency, the rest in USD, EUR or GBP; 5% naming their line by campaign
     code, 2% a line the master does not have; some closed or cancelled; the three accrual
     methods) with `spend.import_purchase_orders`, and I invoices (default 36,000: three per
     PO, dated across the service period and after it) with `spend.import_invoices`; then the
     same two files again, which store nothing;
  2. load the master read model (`master._load`, the uncached path every new master version
     takes): the baseline is the same master before any PO was imported, measured first; then
     with the POs and invoices; then after closing three months' accruals (`accruals.close`).
     `spend.book` and the three reads it needs are also timed on their own;
  3. `accruals.report` and `accruals.journal_csv` of a closed month and of an open one.

    python benchmarks/spend.py [--lines 1000] [--pos 12000] [--invoices 36000] [--repeat 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import os
import platform
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select

from benchmarks.actuals_import import build_master
from sync_service.master import model as master
from sync_service.master import spend
from sync_service.platform.exports import collector_paused
from sync_service.platform.storage import Store, User
from sync_service.spend import accruals
from sync_service.spend import orders as po_imports

PO_HEADER = "PO number,Vendor,Amount,Currency,Service start,Service end,Line ID,Campaign code,Status,Accrual method\n"
INVOICE_HEADER = "Invoice number,PO number,Amount,Currency,Invoice date\n"
FIRST_MONTH = dt.date(2026, 2, 1)  # the bundled fiscal year's first day (m01 is February)
MONTHS = [f"m{k:02d}" for k in range(1, 13)]


def _month_start(k: int) -> dt.date:
    year, month = divmod(FIRST_MONTH.month - 1 + k, 12)
    return dt.date(FIRST_MONTH.year + year, month + 1, 1)


def purchase_orders_csv(lines: list[dict[str, Any]], count: int, seed: int = 11) -> tuple[bytes, list[tuple]]:
    """A PO export of `count` rows over `lines` (see the module docstring); each PO (number, cents, start, end)."""
    rng = random.Random(seed)
    unique_codes = {c for c, n in Counter(x["campaign_code"] for x in lines).items() if n == 1 and c}
    out = io.StringIO()
    out.write(PO_HEADER)
    orders = []
    for n in range(count):
        line = lines[n % len(lines)]
        line_id, code = line["line_id"], ""
        pick = rng.random()
        if pick < 0.05 and line["campaign_code"] in unique_codes:
            line_id, code = "", line["campaign_code"]
        elif 0.05 <= pick < 0.07:
            line_id = f"GONE-{n}"
        first = rng.randint(0, 9)
        start = _month_start(first) + dt.timedelta(days=rng.choice((0, 0, 14)))
        end = _month_start(first + rng.randint(1, 3)) - dt.timedelta(days=1)
        planned = int(sum(line.get(m) or 0 for m in MONTHS) * 100)  # the line's year, in its currency
        cents = round(planned * rng.uniform(0.3, 0.95)) if planned else rng.randint(50_000, 500_000)
        status = rng.choices(("Open", "Closed", "Cancelled"), (90, 7, 3))[0]
        method = rng.choices(("", "plan", "invoice"), (70, 20, 10))[0]
        currency = line["currency"] if rng.random() < 0.8 else rng.choice(("USD", "EUR", "GBP"))
        number = f"PO-{100000 + n}"
        out.write(
            f"{number},Vendor {n % 400},{cents / 100:.2f},{currency},{start},{end},{line_id},{code},{status},{method}\n"
        )
        orders.append((number, cents, start, end))
    return out.getvalue().encode(), orders


def invoices_csv(orders: list[tuple], count: int, seed: int = 13) -> bytes:
    """An invoice export of `count` rows, spread over `orders` in turn (three per PO at the defaults)."""
    rng = random.Random(seed)
    out = io.StringIO()
    out.write(INVOICE_HEADER)
    for n in range(count):
        number, cents, start, end = orders[n % len(orders)]
        days = (end - start).days + 45  # some invoices come after the service period
        day = start + dt.timedelta(days=rng.randint(0, days))
        amount = cents // 3 + rng.randint(-cents // 20, cents // 20)
        currency = rng.choice(("", "", "USD", "EUR"))  # blank: the PO's currency
        out.write(f"INV-{n},{number},{amount / 100:.2f},{currency},{day}\n")
    return out.getvalue().encode()


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def load_seconds(store: Store, schema: Any, repeat: int) -> tuple[float, master.Master]:
    """Median seconds of `repeat` uncached loads of the current master read model (`master._load`)."""
    version = master.current_key(store, schema.calendar.year)["master_version"]
    times, view = [], None
    for _ in range(repeat):
        with store.reading() as session:
            seconds, view = timed(lambda: master._load(session, schema, version))
        times.append(seconds)
    return statistics.median(times), view


def book_seconds(store: Store, schema: Any, repeat: int) -> tuple[float, float]:
    """Median seconds of the reads `spend.book` needs (POs, invoices, closes in force) and of `book` itself."""
    reads, books = [], []
    for _ in range(repeat):
        with store.reading() as session, collector_paused():  # as `master._load` runs them
            lines = master.master_lines(session, master.current_submissions(session, schema.calendar.year))
            started = time.perf_counter()
            inputs = (
                spend.purchase_orders_in_force(session),
                spend.invoices_in_force(session),
                spend.closed_accruals(session, schema.calendar.year),
            )
            reads.append(time.perf_counter() - started)
            seconds, _ = timed(lambda: spend.book(schema, lines, *inputs))  # noqa: B023
            books.append(seconds)
    return statistics.median(reads), statistics.median(books)


def profile_load(store: Store, schema: Any, top: int = 18) -> None:
    version = master.current_key(store, schema.calendar.year)["master_version"]
    profiler = cProfile.Profile()
    with store.reading() as session:
        profiler.runcall(master._load, session, schema, version)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    print(out.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000, help="lines per team plan (12 teams)")
    parser.add_argument("--pos", type=int, default=12_000, help="purchase orders (default: one per master line)")
    parser.add_argument("--invoices", type=int, default=36_000, help="invoices (default: three per PO)")
    parser.add_argument("--repeat", type=int, default=5, help="loads per measurement (the median is shown)")
    parser.add_argument("--profile", action="store_true", help="profile one load with the POs and invoices")
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}")
    print(f"load average at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="plansheet-spend-bench-") as tmp:
        started = time.perf_counter()
        store, schema, lines = build_master(Path(tmp), args.lines)
        print(f"master: {len(lines):,} lines in 12 approved plans ({time.perf_counter() - started:.1f} s to build)")
        with store.reading() as session:
            user = session.scalars(select(User).where(User.name == "fiona")).one()
        po_raw, orders = purchase_orders_csv(lines, args.pos)
        invoice_raw = invoices_csv(orders, args.invoices)
        print(f"exports: {args.pos:,} POs ({len(po_raw) / 2**20:.1f} MiB), {args.invoices:,} invoices "
              f"({len(invoice_raw) / 2**20:.1f} MiB)")  # fmt: skip

        table: list[tuple[str, float, str]] = []
        base, _ = load_seconds(store, schema, args.repeat)
        table.append(("load the master, no POs (baseline)", base, "1.00x"))

        def import_pos() -> tuple[int, dict[str, Any]]:
            return po_imports.import_purchase_orders(store, schema, user, po_raw, "purchase-orders.csv")

        def import_invoices() -> tuple[int, dict[str, Any]]:
            return po_imports.import_invoices(store, schema, user, invoice_raw, "invoices.csv")

        seconds, (status, report) = timed(import_pos)
        assert status == 201 and report["new"] == args.pos, report
        table.append(("import the POs", seconds, f"{report['new']:,} stored"))
        print(
            f"PO import: {report['matched']:,} matched, {len(report['unmatched']):,} unmatched, "
            f"{len(report['ambiguous']):,} ambiguous, {len(report['over_plan']):,} lines over plan"
        )
        pos_only, _ = load_seconds(store, schema, args.repeat)
        table.append(("load the master with the POs, no invoices", pos_only, f"{pos_only / base:.2f}x"))
        seconds, (status, report) = timed(import_invoices)
        assert status == 201 and report["new"] == args.invoices, report
        table.append(("import the invoices", seconds, f"{report['new']:,} stored"))
        print(f"invoice import: {report['matched']:,} matched, {len(report['over_po']):,} POs invoiced beyond")
        seconds, (status, report) = timed(import_pos)
        assert status == 200 and report["unchanged"] == args.pos, report
        table.append(("the same POs again", seconds, "nothing stored"))
        seconds, (status, report) = timed(import_invoices)
        assert status == 200 and report["unchanged"] == args.invoices, report
        table.append(("the same invoices again", seconds, "nothing stored"))

        with_pos, view = load_seconds(store, schema, args.repeat)
        table.append(
            (
                "load the master with POs and invoices",
                with_pos,
                f"{with_pos / base:.2f}x; {with_pos / pos_only:.2f}x POs only",
            )
        )
        matches = Counter(o["match"] for o in view.purchase_orders)
        print("POs in the read model by match: " + ", ".join(f"{k} {v:,}" for k, v in sorted(matches.items())))
        reads, booking = book_seconds(store, schema, args.repeat)
        table.append(("  of it: reading POs, invoices, closes", reads, f"{len(view.purchase_orders):,} POs"))
        table.append(("  of it: spend.book", booking, f"{booking / with_pos:.0%} of the load"))
        if args.profile:
            profile_load(store, schema)

        master.CACHE.clear()
        for month in ("m01", "m02", "m03"):
            seconds, closed = timed(lambda: accruals.close(store, schema, user, month))  # noqa: B023
            table.append((f"close the accrual of {month}", seconds, f"{len(closed['entries']):,} entries"))
        after_close, view = load_seconds(store, schema, args.repeat)
        table.append(("load the master, 3 months closed", after_close, f"{after_close / base:.2f}x"))
        reads, booking = book_seconds(store, schema, args.repeat)
        table.append(("  of it: reading POs, invoices, closes", reads, ""))
        table.append(("  of it: spend.book", booking, f"{booking / after_close:.0%} of the load"))

        master.CACHE.clear()
        view = master.load(store, schema)
        for month, state in (("m03", "closed"), ("m04", "open")):
            seconds, answer = timed(lambda: accruals.report(store, view, month))  # noqa: B023
            table.append((f"accruals.report {month} ({state})", seconds, f"{len(answer['entries']):,} entries"))
            seconds, text = timed(lambda: accruals.journal_csv(store, view, month))  # noqa: B023
            rows = text.count("\r\n") - 1
            table.append((f"accruals.journal_csv {month} ({state})", seconds, f"{rows:,} journal lines"))

        print(f"\n{'what':<42} {'seconds':>8}  ")
        for name, value, note in table:
            print(f"{name:<42} {value:>8.3f}  {note}")
        print(f"\nspend.book adds {with_pos - base:.3f} s to every master load ({with_pos / base:.2f}x the baseline)")
        print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
        store.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
